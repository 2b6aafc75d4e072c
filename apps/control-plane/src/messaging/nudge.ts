/**
 * Command an agent to reconcile now: request/reply with a timeout (agents answer
 * after reconciling, within ~2 s); no responder is reported, not skipped.
 */
import { agentCommandReplySchema, NATS_SUBJECTS, type AgentCommand } from "@hdrcap/api";
import type { Db } from "@hdrcap/db";
import { NoRespondersError, RequestError, TimeoutError, type NatsConnection } from "@nats-io/transport-node";
import { applyAgentReports, type NudgeAgent } from "../services/captures.ts";

export function createNudger(nc: NatsConnection, db: Db, timeoutMs = 3500): NudgeAgent {
  return async (tenantId, agentId) => {
    const command: AgentCommand = { v: 1, type: "sync" };
    try {
      const reply = await nc.request(NATS_SUBJECTS.agentCommand(tenantId, agentId), JSON.stringify(command), { timeout: timeoutMs });
      const parsed = agentCommandReplySchema.safeParse(reply.json());
      if (parsed.success) await applyAgentReports(db, tenantId, agentId, parsed.data.captures);
      return "ok";
    } catch (err) {
      if (err instanceof NoRespondersError || (err instanceof RequestError && err.isNoResponders())) return "no-responders";
      if (err instanceof TimeoutError || (err instanceof Error && err.name === "TimeoutError")) return "timeout";
      return "error";
    }
  };
}
