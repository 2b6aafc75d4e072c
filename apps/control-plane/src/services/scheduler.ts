/**
 * The scheduler role: time-driven transitions. Safe with several replicas: each
 * step claims rows with FOR UPDATE SKIP LOCKED (or is idempotent), so one replica
 * acts on a job, never two.
 *  - active jobs past their duration, or past max records → stopping
 *  - stopping jobs whose agents have all finished (or after a grace period) → final state
 *  - agents silent for too long → offline
 *  - record partitions created ahead; old dedupe entries pruned
 */
import { ensureRecordPartitions, type Db } from "@hdrcap/db";
import { sql } from "kysely";
import type { Logger } from "../logger.ts";
import { markSilentAgentsOffline } from "./agents.ts";
import { TERMINAL_AGENT_STATUSES, type NudgeAgent } from "./captures.ts";

export interface SchedulerOptions {
  intervalMs?: number;
  offlineAfterMs?: number;
  /** How long a stopping job waits for its agents before it is finalised anyway. */
  stopGraceMs?: number;
}

export interface SchedulerTickResult {
  stopping: { id: string; reason: string }[];
  finalised: { id: string; status: string }[];
  offline: string[];
}

export async function schedulerTick(db: Db, nudge: NudgeAgent, { offlineAfterMs = 15_000, stopGraceMs = 30_000 }: SchedulerOptions = {}): Promise<SchedulerTickResult> {
  const stopping = await db.transaction().execute(async (tx) => {
    const due = await sql<{ id: string; tenant_id: string; reason: string }>`
      select c.id, c.tenant_id,
        case when c.expires_at is not null and c.expires_at <= now() then 'duration elapsed' else 'max-records reached' end as reason
      from captures c
      where c.status in ('pending', 'running')
        and ((c.expires_at is not null and c.expires_at <= now())
          or (c.max_records is not null and (select coalesce(sum(stored), 0) from capture_agents a where a.capture_id = c.id) >= c.max_records))
      for update of c skip locked`.execute(tx);
    for (const row of due.rows) {
      await tx.updateTable("captures").set({ status: "stopping", status_reason: row.reason, stop_requested_at: new Date() }).where("id", "=", row.id).execute();
    }
    return due.rows;
  });
  for (const row of stopping) {
    const agents = await db.selectFrom("capture_agents").select("agent_id").where("capture_id", "=", row.id).where("status", "not in", TERMINAL_AGENT_STATUSES).execute();
    await Promise.all(agents.map((a) => nudge(row.tenant_id, a.agent_id)));
  }

  const finalised = await db.transaction().execute(async (tx) => {
    // FOR UPDATE cannot be combined with GROUP BY, so the aggregates are subqueries.
    const ready = await sql<{ id: string; status_reason: string | null; all_error: boolean }>`
      select c.id, c.status_reason,
        exists (select 1 from capture_agents a where a.capture_id = c.id)
          and not exists (select 1 from capture_agents a where a.capture_id = c.id and a.status <> 'error') as all_error
      from captures c
      where c.status = 'stopping'
        and (not exists (select 1 from capture_agents a where a.capture_id = c.id and a.status not in ('detached', 'error', 'unreachable'))
          or c.stop_requested_at < now() - make_interval(secs => ${stopGraceMs / 1000}))
      for update of c skip locked`.execute(tx);
    const out: { id: string; status: string }[] = [];
    for (const row of ready.rows) {
      const status = row.all_error
        ? "failed"
        : row.status_reason === "stopped by user"
          ? "cancelled"
          : row.status_reason === "duration elapsed"
            ? "expired"
            : "completed";
      await tx.updateTable("captures").set({ status, ended_at: new Date() }).where("id", "=", row.id).execute();
      await tx
        .updateTable("capture_agents")
        .set({ status: "detached", message: "capture ended before the agent confirmed", updated_at: new Date() })
        .where("capture_id", "=", row.id)
        .where("status", "in", ["assigned", "attaching", "running"])
        .execute();
      out.push({ id: row.id, status });
    }
    return out;
  });

  const offline = await markSilentAgentsOffline(db, offlineAfterMs);
  return { stopping: stopping.map((s) => ({ id: s.id, reason: s.reason })), finalised, offline };
}

/** Keep partitions for today and the next two days; prune dedupe entries older than a week. */
export async function maintenanceTick(db: Db): Promise<void> {
  await ensureRecordPartitions(db, new Date(), 3);
  await db.deleteFrom("ingested_batches").where("ingested_at", "<", new Date(Date.now() - 7 * 86_400_000)).execute();
}

export function startScheduler(db: Db, nudge: NudgeAgent, logger: Logger, options: SchedulerOptions = {}): () => Promise<void> {
  let running: Promise<unknown> = Promise.resolve();
  let lastMaintenance = 0;
  const tick = () => {
    running = (async () => {
      try {
        if (Date.now() - lastMaintenance > 3_600_000) {
          await maintenanceTick(db);
          lastMaintenance = Date.now();
        }
        const r = await schedulerTick(db, nudge, options);
        for (const s of r.stopping) logger.info({ captureId: s.id, reason: s.reason }, "capture stopping");
        for (const f of r.finalised) logger.info({ captureId: f.id, status: f.status }, "capture ended");
        for (const a of r.offline) logger.warn({ agentId: a }, "agent offline (missed heartbeats)");
      } catch (err) {
        logger.error({ err }, "scheduler tick failed");
      }
    })();
  };
  tick();
  const timer = setInterval(tick, options.intervalMs ?? 2000);
  return async () => {
    clearInterval(timer);
    await running;
  };
}
