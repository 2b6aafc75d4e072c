/**
 * Answers agents: hello (presence + desired state), desired (desired state) and
 * heartbeat (presence + per-capture reports). Replicas share the work through a
 * queue group. Ids come from the subject (NATS permissions guarantee an agent
 * can only use its own), never from the payload.
 */
import { agentHeartbeatSchema, agentHelloSchema, NATS_SUBJECTS, parseAgentSubject, type DesiredState } from "@hdrcap/api";
import type { Db } from "@hdrcap/db";
import type { Msg, NatsConnection, Subscription } from "@nats-io/transport-node";
import type { Logger } from "../logger.ts";
import type { Metrics } from "../metrics.ts";
import { markAgentSeen } from "../services/agents.ts";
import { applyAgentReports, desiredCapturesFor } from "../services/captures.ts";

const QUEUE = "hdrcap-control-plane";

export function startAgentResponders(nc: NatsConnection, db: Db, logger: Logger, metrics: Metrics): () => Promise<void> {
  const subs: Subscription[] = [];
  const pending = new Set<Promise<void>>();

  const handle = (subject: string, fn: (msg: Msg, ids: { tenantId: string; agentId: string }) => Promise<void>) => {
    subs.push(
      nc.subscribe(subject, {
        queue: QUEUE,
        callback: (err, msg) => {
          if (err) return logger.warn({ err, subject }, "agent subscription error");
          const ids = parseAgentSubject(msg.subject);
          if (!ids) return;
          const p = fn(msg, ids)
            .catch((e: unknown) => {
              metrics.agentMessages.inc({ kind: ids.verb, result: "error" });
              logger.error({ err: e, subject: msg.subject }, "agent message failed");
            })
            .finally(() => pending.delete(p));
          pending.add(p);
        },
      }),
    );
  };

  const desired = async (tenantId: string, agentId: string): Promise<DesiredState> => ({ v: 1, captures: await desiredCapturesFor(db, tenantId, agentId) });
  const parseJson = (msg: Msg): unknown => {
    try {
      return msg.json();
    } catch {
      return undefined;
    }
  };

  handle(NATS_SUBJECTS.allAgentHello, async (msg, { tenantId, agentId }) => {
    const hello = agentHelloSchema.safeParse(parseJson(msg));
    if (!hello.success) {
      metrics.agentMessages.inc({ kind: "hello", result: "invalid" });
      return void msg.respond(JSON.stringify({ error: "invalid hello", issues: hello.error.issues.slice(0, 5) }));
    }
    const known = await markAgentSeen(db, tenantId, agentId, hello.data.facts);
    metrics.agentMessages.inc({ kind: "hello", result: known ? "ok" : "unknown-agent" });
    msg.respond(JSON.stringify(known ? await desired(tenantId, agentId) : { v: 1, captures: [] }));
  });

  handle(NATS_SUBJECTS.allAgentDesired, async (msg, { tenantId, agentId }) => {
    const known = await markAgentSeen(db, tenantId, agentId);
    metrics.agentMessages.inc({ kind: "desired", result: known ? "ok" : "unknown-agent" });
    msg.respond(JSON.stringify(known ? await desired(tenantId, agentId) : { v: 1, captures: [] }));
  });

  handle(NATS_SUBJECTS.allAgentHeartbeat, async (msg, { tenantId, agentId }) => {
    const hb = agentHeartbeatSchema.safeParse(parseJson(msg));
    if (!hb.success) {
      metrics.agentMessages.inc({ kind: "heartbeat", result: "invalid" });
      return;
    }
    if (!(await markAgentSeen(db, tenantId, agentId))) {
      metrics.agentMessages.inc({ kind: "heartbeat", result: "unknown-agent" });
      return;
    }
    await applyAgentReports(db, tenantId, agentId, hb.data.captures);
    metrics.agentMessages.inc({ kind: "heartbeat", result: "ok" });
  });

  return async () => {
    for (const s of subs) s.unsubscribe();
    await Promise.allSettled([...pending]);
  };
}
