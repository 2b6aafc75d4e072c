/**
 * Capture jobs: the control plane is the source of truth. Creating a job records
 * it and the agents it targets; agents converge on their desired state (pulled
 * over NATS) and report back; the scheduler moves jobs to their final state.
 */
import {
  ApiError,
  emptyCompleteness,
  requireScope,
  TERMINAL_CAPTURE_STATUSES,
  type AgentCaptureReport,
  type AuthContext,
  type CaptureSpec,
  type CaptureStatus,
  type CaptureView,
  type Completeness,
  type CreateCaptureInput,
} from "@hdrcap/api";
import type { CaptureAgentRow, CaptureRow, Db } from "@hdrcap/db";
import { randomBytes } from "node:crypto";
import { sql } from "kysely";
import { audit } from "./audit.ts";
import { decodeCursor, pageFrom } from "./cursor.ts";
import { newId } from "./ids.ts";

export type NudgeResult = "ok" | "no-responders" | "timeout" | "error";
/** Asks an agent to reconcile now (request/reply over NATS). */
export type NudgeAgent = (tenantId: string, agentId: string) => Promise<NudgeResult>;

const ACTIVE: CaptureStatus[] = ["pending", "running"];
const TERMINAL_AGENT_STATUSES = ["detached", "error", "unreachable"];

function sumCompleteness(rows: { counters: unknown; stored: string }[]): Completeness {
  const total = emptyCompleteness();
  for (const r of rows) {
    const c = (r.counters ?? {}) as Partial<Completeness>;
    for (const k of Object.keys(total) as (keyof Completeness)[]) if (k !== "stored") total[k] += Number(c[k] ?? 0);
    total.stored += Number(r.stored);
  }
  return total;
}

export function captureView(c: CaptureRow, agents: CaptureAgentRow[]): CaptureView {
  return {
    id: c.id,
    name: c.name,
    protocol: c.protocol as "http",
    status: c.status as CaptureStatus,
    statusReason: c.status_reason,
    agents: c.selector as CaptureView["agents"],
    source: c.source as CaptureView["source"],
    filter: c.filter as CaptureView["filter"],
    headers: c.headers as CaptureView["headers"],
    limits: c.limits as CaptureView["limits"],
    createdAt: c.created_at.toISOString(),
    expiresAt: c.expires_at?.toISOString() ?? null,
    endedAt: c.ended_at?.toISOString() ?? null,
    agentStatuses: agents.map((a) => ({
      agentId: a.agent_id,
      status: a.status as CaptureView["agentStatuses"][number]["status"],
      message: a.message,
      counters: { ...emptyCompleteness(), ...(a.counters as Partial<Completeness>), stored: Number(a.stored) },
      updatedAt: a.updated_at.toISOString(),
    })),
    completeness: sumCompleteness(agents),
  };
}

export function captureSpec(c: CaptureRow): CaptureSpec {
  return {
    captureId: c.id,
    protocol: c.protocol as "http",
    source: c.source as CaptureSpec["source"],
    filter: c.filter as CaptureSpec["filter"],
    headers: c.headers as CaptureSpec["headers"],
    limits: c.limits as CaptureSpec["limits"],
    expiresAt: c.expires_at?.toISOString() ?? null,
    hashKey: c.hash_key,
  };
}

/** The agents of a tenant matching a selector (ids and labels both constrain; empty = all). */
async function selectAgentIds(db: Db, tenantId: string, selector: CreateCaptureInput["agents"]): Promise<string[]> {
  let q = db.selectFrom("agents").select("id").where("tenant_id", "=", tenantId);
  if (selector.ids?.length) q = q.where("id", "in", selector.ids);
  if (selector.labels && Object.keys(selector.labels).length) q = q.where(sql<boolean>`labels @> ${selector.labels}::jsonb`);
  return (await q.execute()).map((r) => r.id);
}

export function createCapturesService(db: Db, nudge: NudgeAgent, onNudgeError: (err: unknown) => void = () => {}) {
  async function load(tenantId: string, id: string) {
    const capture = await db.selectFrom("captures").selectAll().where("tenant_id", "=", tenantId).where("id", "=", id).executeTakeFirst();
    if (!capture) throw new ApiError("NOT_FOUND", `no capture ${id}`);
    const agents = await db.selectFrom("capture_agents").selectAll().where("capture_id", "=", id).orderBy("agent_id").execute();
    return { capture, agents };
  }

  /** Ask each agent to reconcile now; agents without a responder are marked unreachable for this job. */
  function nudgeAll(tenantId: string, captureId: string, agentIds: string[]): Promise<void> {
    return Promise.all(
      agentIds.map(async (agentId) => {
        const result = await nudge(tenantId, agentId);
        if (result === "ok") return;
        await db
          .updateTable("capture_agents")
          .set({ status: "unreachable", message: result === "no-responders" ? "agent not connected (no responders)" : `agent did not answer (${result})`, updated_at: new Date() })
          .where("capture_id", "=", captureId)
          .where("agent_id", "=", agentId)
          .where("status", "=", "assigned")
          .execute();
      }),
    ).then(
      () => {},
      (err) => onNudgeError(err),
    );
  }

  return {
    /** Resolves when the job is recorded; agents are nudged in the background. */
    async create(auth: AuthContext, input: CreateCaptureInput): Promise<CaptureView> {
      requireScope(auth.key.scopes, "captures:write");
      const id = newId("cap");
      const expiresAt = input.limits.durationSeconds ? new Date(Date.now() + input.limits.durationSeconds * 1000) : null;
      const agentIds = await db.transaction().execute(async (tx) => {
        await tx
          .insertInto("captures")
          .values({
            id,
            tenant_id: auth.tenant.id,
            name: input.name,
            protocol: input.protocol,
            selector: input.agents,
            source: input.source,
            filter: input.filter,
            headers: input.headers,
            limits: input.limits,
            hash_key: randomBytes(32).toString("base64"),
            status_reason: null,
            max_records: input.limits.maxRecords !== undefined ? String(input.limits.maxRecords) : null,
            expires_at: expiresAt,
            stop_requested_at: null,
            ended_at: null,
            created_by_key_id: auth.key.id,
          })
          .execute();
        const ids = await selectAgentIds(tx, auth.tenant.id, input.agents);
        if (ids.length) {
          await tx
            .insertInto("capture_agents")
            .values(ids.map((agent_id) => ({ capture_id: id, agent_id, tenant_id: auth.tenant.id, message: null })))
            .execute();
        }
        await audit(tx, auth, "capture.create", { type: "capture", id }, { name: input.name, agents: ids.length });
        return ids;
      });
      void nudgeAll(auth.tenant.id, id, agentIds);
      const { capture, agents } = await load(auth.tenant.id, id);
      return captureView(capture, agents);
    },

    async get(auth: AuthContext, id: string): Promise<CaptureView> {
      requireScope(auth.key.scopes, "captures:read");
      const { capture, agents } = await load(auth.tenant.id, id);
      return captureView(capture, agents);
    },

    async list(auth: AuthContext, page: { limit: number; cursor?: string; status?: CaptureStatus }) {
      requireScope(auth.key.scopes, "captures:read");
      let q = db.selectFrom("captures").selectAll().where("tenant_id", "=", auth.tenant.id).orderBy("id", "desc").limit(page.limit + 1);
      const before = decodeCursor(page.cursor);
      if (before) q = q.where("id", "<", before);
      if (page.status) q = q.where("status", "=", page.status);
      const rows = await q.execute();
      const ids = rows.map((r) => r.id);
      const agents = ids.length ? await db.selectFrom("capture_agents").selectAll().where("capture_id", "in", ids).execute() : [];
      return pageFrom(rows, page.limit, (r) => r.id, (r) => captureView(r, agents.filter((a) => a.capture_id === r.id)));
    },

    /** Stop (agents detach), then delete the job and its records. */
    async remove(auth: AuthContext, id: string): Promise<{ id: string; deletedRecords: number }> {
      requireScope(auth.key.scopes, "captures:write");
      const { agents } = await load(auth.tenant.id, id);
      const deletedRecords = await db.transaction().execute(async (tx) => {
        await tx.updateTable("captures").set({ status: "cancelled", status_reason: "deleted", ended_at: new Date() }).where("id", "=", id).execute();
        const res = await tx.deleteFrom("records").where("capture_id", "=", id).where("tenant_id", "=", auth.tenant.id).executeTakeFirst();
        await tx.deleteFrom("captures").where("id", "=", id).execute();
        await audit(tx, auth, "capture.delete", { type: "capture", id }, { records: Number(res.numDeletedRows) });
        return Number(res.numDeletedRows);
      });
      // Agents still running it converge on their next sync: the job is gone from their desired state.
      void Promise.all(agents.filter((a) => !TERMINAL_AGENT_STATUSES.includes(a.status)).map((a) => nudge(auth.tenant.id, a.agent_id))).catch(onNudgeError);
      return { id, deletedRecords };
    },

    async stop(auth: AuthContext, id: string): Promise<CaptureView> {
      requireScope(auth.key.scopes, "captures:write");
      const updated = await db
        .updateTable("captures")
        .set({ status: "stopping", status_reason: "stopped by user", stop_requested_at: new Date() })
        .where("tenant_id", "=", auth.tenant.id)
        .where("id", "=", id)
        .where("status", "in", ACTIVE)
        .returning("id")
        .executeTakeFirst();
      const { capture, agents } = await load(auth.tenant.id, id);
      if (updated) {
        await audit(db, auth, "capture.stop", { type: "capture", id });
        void nudgeAll(auth.tenant.id, id, agents.filter((a) => !TERMINAL_AGENT_STATUSES.includes(a.status)).map((a) => a.agent_id));
      }
      return captureView(capture, agents);
    },
  };
}

export type CapturesService = ReturnType<typeof createCapturesService>;

/**
 * The captures an agent should be running now: active jobs of its tenant whose
 * selector matches it (including jobs created before it joined), minus those it
 * already finished. Newly matched jobs get an `assigned` row.
 */
export async function desiredCapturesFor(db: Db, tenantId: string, agentId: string): Promise<CaptureSpec[]> {
  const agent = await db.selectFrom("agents").select(["id", "labels"]).where("tenant_id", "=", tenantId).where("id", "=", agentId).executeTakeFirst();
  if (!agent) return [];
  const captures = await db
    .selectFrom("captures")
    .selectAll()
    .where("tenant_id", "=", tenantId)
    .where("status", "in", ACTIVE)
    .where(sql<boolean>`(selector->'ids' is null or jsonb_array_length(selector->'ids') = 0 or selector->'ids' ? ${agentId})`)
    .where(sql<boolean>`(selector->'labels' is null or ${agent.labels}::jsonb @> (selector->'labels'))`)
    .execute();
  if (captures.length === 0) return [];
  await db
    .insertInto("capture_agents")
    .values(captures.map((c) => ({ capture_id: c.id, agent_id: agentId, tenant_id: tenantId, message: null })))
    .onConflict((oc) => oc.columns(["capture_id", "agent_id"]).doNothing())
    .execute();
  const finished = new Set(
    (
      await db
        .selectFrom("capture_agents")
        .select("capture_id")
        .where("agent_id", "=", agentId)
        .where("capture_id", "in", captures.map((c) => c.id))
        .where("status", "=", "detached")
        .execute()
    ).map((r) => r.capture_id),
  );
  return captures.filter((c) => !finished.has(c.id)).map(captureSpec);
}

/** Apply an agent's per-capture reports (heartbeat or command reply). */
export async function applyAgentReports(db: Db, tenantId: string, agentId: string, reports: AgentCaptureReport[]): Promise<void> {
  for (const r of reports) {
    const res = await db
      .updateTable("capture_agents")
      .set({ status: r.status, message: r.message, counters: r.counters, updated_at: new Date() })
      .where("capture_id", "=", r.captureId)
      .where("agent_id", "=", agentId)
      .where("tenant_id", "=", tenantId)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) > 0 && r.status === "running") {
      await db.updateTable("captures").set({ status: "running" }).where("id", "=", r.captureId).where("status", "=", "pending").execute();
    }
  }
}

export function isTerminal(status: string): boolean {
  return (TERMINAL_CAPTURE_STATUSES as readonly string[]).includes(status);
}
export { TERMINAL_AGENT_STATUSES };
