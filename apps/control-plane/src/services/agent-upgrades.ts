/**
 * Agent upgrade rollouts: `POST /v1/agent-upgrades` plans one (the tenant's selected online
 * agents on another version than the current bundle, in batches) and stores it; the
 * scheduler role drives every running rollout forward (`agentUpgradesTick`), a batch at a
 * time, stopping at the first agent that fails. All state is in Postgres: any scheduler
 * replica can pick a rollout up (FOR UPDATE SKIP LOCKED), so one dying mid-rollout only
 * delays it by a tick.
 */
import {
  ApiError,
  requireScope,
  UPGRADE_AGENT_STATUSES,
  type AgentSelector,
  type AgentUpgradeCommand,
  type AgentUpgradeStatus,
  type AgentUpgradeView,
  type AuthContext,
  type CreateAgentUpgradeInput,
  type HostFacts,
  type Page,
  type PageQuery,
  type UpgradeAgentStatus,
} from "@hdrcap/api";
import { insertAuditEntry, type AgentUpgradeAgentRow, type AgentUpgradeRow, type Db } from "@hdrcap/db";
import { sql } from "kysely";
import type { Logger } from "../logger.ts";
import type { SendUpgradeCommand } from "../messaging/agent-upgrade-command.ts";
import { latestBundle, BundleUnavailableError, type BundleManifest } from "./agent-bundle.ts";
import { cancelReason, judgeUpgradingAgent, nextRolloutStep, planUpgrade, type UpgradeCandidate } from "./agent-upgrades-plan.ts";
import { audit } from "./audit.ts";
import { decodeCursor, pageFrom } from "./cursor.ts";
import { newId } from "./ids.ts";

function upgradeView(u: AgentUpgradeRow, agents: AgentUpgradeAgentRow[]): AgentUpgradeView {
  const counts = Object.fromEntries(UPGRADE_AGENT_STATUSES.map((s) => [s, 0])) as Record<UpgradeAgentStatus, number>;
  for (const a of agents) counts[a.status]++;
  const ordered = [...agents].sort((x, y) => (x.batch ?? Infinity) - (y.batch ?? Infinity) || (x.agent_id < y.agent_id ? -1 : 1));
  return {
    id: u.id,
    status: u.status,
    statusReason: u.status_reason,
    targetVersion: u.target_version,
    bundleSha256: u.bundle_sha256,
    agents: u.selector as AgentSelector,
    batchSize: u.batch_size,
    timeoutSeconds: u.timeout_seconds,
    batchCount: u.batch_count,
    currentBatch: u.current_batch,
    createdAt: u.created_at.toISOString(),
    finishedAt: u.finished_at?.toISOString() ?? null,
    counts,
    agentStates: ordered.map((a) => ({
      agentId: a.agent_id,
      hostname: a.hostname,
      batch: a.batch,
      status: a.status,
      fromVersion: a.from_version,
      message: a.message,
      updatedAt: a.updated_at.toISOString(),
    })),
  };
}

async function loadView(db: Db, tenantId: string, id: string): Promise<AgentUpgradeView> {
  const u = await db.selectFrom("agent_upgrades").selectAll().where("tenant_id", "=", tenantId).where("id", "=", id).executeTakeFirst();
  if (!u) throw new ApiError("NOT_FOUND", `no agent upgrade ${id}`);
  const agents = await db.selectFrom("agent_upgrade_agents").selectAll().where("upgrade_id", "=", id).execute();
  return upgradeView(u, agents);
}

const factsVersion = (facts: unknown): string | null => {
  const v = (facts as Partial<HostFacts> | null)?.agentVersion;
  return typeof v === "string" && v ? v : null;
};

export interface AgentUpgradesServiceOptions {
  /** The bundle rolled out; default: the control plane's current bundle (latest.json). */
  currentBundle?: () => BundleManifest;
}

export function createAgentUpgradesService(db: Db, options: AgentUpgradesServiceOptions = {}) {
  const currentBundle = options.currentBundle ?? (() => latestBundle());
  return {
    async create(auth: AuthContext, input: CreateAgentUpgradeInput): Promise<AgentUpgradeView> {
      requireScope(auth.key.scopes, "agents:write");
      let bundle: BundleManifest;
      try {
        bundle = currentBundle();
      } catch (err) {
        if (err instanceof BundleUnavailableError) throw new ApiError("CONFLICT", `nothing to upgrade to: ${err.message}`);
        throw err;
      }
      let q = db.selectFrom("agents").select(["id", "hostname", "status", "facts"]).where("tenant_id", "=", auth.tenant.id);
      if (input.agents.ids?.length) q = q.where("id", "in", input.agents.ids);
      if (input.agents.labels && Object.keys(input.agents.labels).length) q = q.where(sql<boolean>`labels @> ${input.agents.labels}::jsonb`);
      const rows = await q.execute();
      const unknown = (input.agents.ids ?? []).filter((id) => !rows.some((r) => r.id === id));
      if (unknown.length > 0) {
        throw new ApiError("BAD_REQUEST", `invalid body.agents.ids: no agent ${unknown.slice(0, 5).join(", ")} in this tenant`, [
          { path: "body.agents.ids", message: `unknown agent ${unknown.slice(0, 5).join(", ")}` },
        ]);
      }
      // An agent a cancelled rollout already commanded is still upgrading: never send it a second command.
      const busy = rows.length
        ? await db
            .selectFrom("agent_upgrade_agents")
            .select(["agent_id", "upgrade_id"])
            .where("tenant_id", "=", auth.tenant.id)
            .where("status", "=", "upgrading")
            .where("agent_id", "in", rows.map((r) => r.id))
            .execute()
        : [];
      const upgradingIn = new Map(busy.map((b) => [b.agent_id, b.upgrade_id]));
      const candidates: UpgradeCandidate[] = rows.map((r) => ({
        id: r.id,
        hostname: r.hostname,
        status: r.status,
        version: factsVersion(r.facts),
        ...(upgradingIn.has(r.id) ? { upgradingIn: upgradingIn.get(r.id)! } : {}),
      }));
      const plan = planUpgrade(candidates, bundle.version, input.batchSize);
      const id = newId("upg");
      const nothingToDo = plan.batchCount === 0;

      const created = await db.transaction().execute(async (tx) => {
        const inserted = await tx
          .insertInto("agent_upgrades")
          .values({
            id,
            tenant_id: auth.tenant.id,
            target_version: bundle.version,
            bundle_file: bundle.file,
            bundle_sha256: bundle.sha256,
            bundle_size: bundle.size,
            selector: input.agents,
            batch_size: input.batchSize,
            timeout_seconds: input.timeoutSeconds,
            batch_count: plan.batchCount,
            status: nothingToDo ? "completed" : "running",
            status_reason: nothingToDo ? `nothing to upgrade: no selected online agent runs another version than ${bundle.version}` : null,
            current_batch: null,
            batch_started_at: null,
            created_by_key_id: auth.key.id,
            finished_at: nothingToDo ? new Date() : null,
          })
          // One running rollout per tenant (partial unique index).
          .onConflict((oc) => oc.column("tenant_id").where("status", "=", "running").doNothing())
          .returning("id")
          .executeTakeFirst();
        if (!inserted) return false;
        if (plan.agents.length > 0) {
          await tx
            .insertInto("agent_upgrade_agents")
            .values(
              plan.agents.map((a) => ({
                upgrade_id: id,
                agent_id: a.agentId,
                tenant_id: auth.tenant.id,
                hostname: a.hostname,
                batch: a.batch,
                status: a.status,
                from_version: a.fromVersion,
                message: a.message,
                commanded_at: null,
              })),
            )
            .execute();
        }
        return true;
      });
      if (!created) {
        const running = await db.selectFrom("agent_upgrades").select("id").where("tenant_id", "=", auth.tenant.id).where("status", "=", "running").executeTakeFirst();
        throw new ApiError("CONFLICT", `agent upgrade ${running?.id ?? "(another)"} is still running in this tenant; wait for it to finish`);
      }
      await audit(db, auth, "agent_upgrade.create", { type: "agent_upgrade", id }, {
        targetVersion: bundle.version,
        agents: input.agents,
        batchSize: input.batchSize,
        timeoutSeconds: input.timeoutSeconds,
        upgrading: plan.agents.filter((a) => a.status === "pending").length,
        skipped: plan.agents.filter((a) => a.status === "skipped").length,
      });
      return loadView(db, auth.tenant.id, id);
    },

    async get(auth: AuthContext, id: string): Promise<AgentUpgradeView> {
      requireScope(auth.key.scopes, "agents:read");
      return loadView(db, auth.tenant.id, id);
    },

    async list(auth: AuthContext, page: PageQuery & { status?: AgentUpgradeStatus }): Promise<Page<AgentUpgradeView>> {
      requireScope(auth.key.scopes, "agents:read");
      let q = db.selectFrom("agent_upgrades").selectAll().where("tenant_id", "=", auth.tenant.id).orderBy("created_at", "desc").orderBy("id", "desc").limit(page.limit + 1);
      const after = decodeCursor(page.cursor);
      if (after) {
        const last = await db.selectFrom("agent_upgrades").select("created_at").where("tenant_id", "=", auth.tenant.id).where("id", "=", after).executeTakeFirst();
        if (!last) throw new ApiError("BAD_REQUEST", "invalid query.cursor: not a cursor returned by this API", [{ path: "query.cursor", message: "not a cursor returned by this API" }]);
        q = q.where((eb) => eb.or([eb("created_at", "<", last.created_at), eb.and([eb("created_at", "=", last.created_at), eb("id", "<", after)])]));
      }
      if (page.status) q = q.where("status", "=", page.status);
      const rows = await q.execute();
      const ids = rows.map((r) => r.id);
      const agents = ids.length ? await db.selectFrom("agent_upgrade_agents").selectAll().where("upgrade_id", "in", ids).execute() : [];
      return pageFrom(rows, page.limit, (r) => r.id, (r) => upgradeView(r, agents.filter((a) => a.upgrade_id === r.id)));
    },

    /**
     * Cancels a running rollout: agents not yet commanded are skipped; agents already
     * `upgrading` are left to finish (an upgrade command already sent cannot be recalled), and
     * the driver records how they end, then marks the rollout finished. Takes the row lock the
     * driver takes, so a tick either ran before (its batch is `upgrading` here) or sees `cancelled`.
     */
    async cancel(auth: AuthContext, id: string): Promise<AgentUpgradeView> {
      requireScope(auth.key.scopes, "agents:write");
      const now = new Date();
      await db.transaction().execute(async (tx) => {
        const u = await tx.selectFrom("agent_upgrades").selectAll().where("tenant_id", "=", auth.tenant.id).where("id", "=", id).forUpdate().executeTakeFirst();
        if (!u) throw new ApiError("NOT_FOUND", `no agent upgrade ${id}`);
        if (u.status !== "running") throw new ApiError("CONFLICT", `cannot cancel agent upgrade ${id}: it is ${u.status}, not running`);
        const skipped = await tx
          .updateTable("agent_upgrade_agents")
          .set({ status: "skipped", message: "cancelled", updated_at: now })
          .where("upgrade_id", "=", id)
          .where("status", "=", "pending")
          .returning("agent_id")
          .execute();
        const upgrading = await tx.selectFrom("agent_upgrade_agents").select("agent_id").where("upgrade_id", "=", id).where("status", "=", "upgrading").orderBy("agent_id").execute();
        const reason = cancelReason(upgrading.map((a) => a.agent_id), u.current_batch, u.batch_count);
        const settled = upgrading.length === 0;
        await tx
          .updateTable("agent_upgrades")
          .set({ status: "cancelled", status_reason: reason, ...(settled ? { current_batch: null, finished_at: now } : {}) })
          .where("id", "=", id)
          .execute();
        await audit(tx, auth, "agent_upgrade.cancel", { type: "agent_upgrade", id }, { skipped: skipped.length, leftToFinish: upgrading.map((a) => a.agent_id) });
      });
      return loadView(db, auth.tenant.id, id);
    },
  };
}

export type AgentUpgradesService = ReturnType<typeof createAgentUpgradesService>;

// ---------------------------------------------------------------- the driver (scheduler role)

export interface UpgradeEvent {
  upgradeId: string;
  /** `cancel-settled`: the last agent a cancelled rollout had commanded came back or failed. */
  event: "batch-started" | "agent-upgraded" | "agent-failed" | "completed" | "failed" | "cancel-settled";
  batch?: number;
  agentId?: string;
  message?: string;
}

interface PendingCommand {
  tenantId: string;
  agentId: string;
  upgradeId: string;
  command: AgentUpgradeCommand;
  timeoutMs: number;
}

/**
 * One pass over the running rollouts: judges the agents of each running batch, then fails,
 * completes or starts the next batch. Upgrade commands are returned, to be sent after the
 * transaction commits (a command is never sent for a state that did not commit).
 * Cancelled rollouts whose commanded agents are still `upgrading` (finished_at null) are
 * judged the same way, but never go on to another batch: once none is left, they finish.
 */
export async function agentUpgradesTick(db: Db, now = new Date()): Promise<{ events: UpgradeEvent[]; commands: PendingCommand[] }> {
  const events: UpgradeEvent[] = [];
  const commands: PendingCommand[] = [];
  await db.transaction().execute(async (tx) => {
    const running = await tx
      .selectFrom("agent_upgrades")
      .selectAll()
      .where((eb) => eb.or([eb("status", "=", "running"), eb.and([eb("status", "=", "cancelled"), eb("finished_at", "is", null)])]))
      .forUpdate()
      .skipLocked()
      .execute();
    for (const u of running) {
      const states = await tx
        .selectFrom("agent_upgrade_agents as s")
        .leftJoin("agents as a", (j) => j.onRef("a.id", "=", "s.agent_id").onRef("a.tenant_id", "=", "s.tenant_id"))
        .select(["s.agent_id", "s.hostname", "s.batch", "s.status", "s.commanded_at", "a.status as agent_status", "a.last_seen_at", "a.facts"])
        .where("s.upgrade_id", "=", u.id)
        .execute();
      const current = states.map((s) => ({ agentId: s.agent_id, batch: s.batch, status: s.status as UpgradeAgentStatus }));

      for (const s of states.filter((x) => x.status === "upgrading")) {
        const verdict = judgeUpgradingAgent(
          { agentId: s.agent_id, commandedAt: s.commanded_at, online: s.agent_status === "online", lastSeenAt: s.last_seen_at, version: factsVersion(s.facts) },
          u.target_version,
          u.batch_started_at ?? now,
          u.timeout_seconds,
          now,
        );
        if (verdict.outcome === "waiting") continue;
        const message = verdict.outcome === "upgraded" ? `runs ${u.target_version}` : verdict.message;
        await tx
          .updateTable("agent_upgrade_agents")
          .set({ status: verdict.outcome, message, updated_at: now })
          .where("upgrade_id", "=", u.id)
          .where("agent_id", "=", s.agent_id)
          .execute();
        current.find((c) => c.agentId === s.agent_id)!.status = verdict.outcome;
        events.push({ upgradeId: u.id, event: verdict.outcome === "upgraded" ? "agent-upgraded" : "agent-failed", agentId: s.agent_id, batch: s.batch ?? undefined, message });
      }

      if (u.status === "cancelled") {
        if (current.some((c) => c.status === "upgrading")) continue;
        await tx.updateTable("agent_upgrades").set({ current_batch: null, finished_at: now }).where("id", "=", u.id).execute();
        events.push({ upgradeId: u.id, event: "cancel-settled" });
        continue;
      }
      const step = nextRolloutStep(current);
      if (step.kind === "wait") continue;
      if (step.kind === "fail") {
        const row = await tx.selectFrom("agent_upgrade_agents").select(["hostname", "message", "batch"]).where("upgrade_id", "=", u.id).where("agent_id", "=", step.agentId).executeTakeFirstOrThrow();
        const reason = `agent ${step.agentId} (${row.hostname}) failed in batch ${(row.batch ?? 0) + 1} of ${u.batch_count}: ${row.message ?? "no reason given"}`;
        await tx
          .updateTable("agent_upgrade_agents")
          .set({ status: "skipped", message: `not attempted: the rollout stopped when ${step.agentId} failed`, updated_at: now })
          .where("upgrade_id", "=", u.id)
          .where("status", "=", "pending")
          .execute();
        await tx.updateTable("agent_upgrades").set({ status: "failed", status_reason: reason, current_batch: null, finished_at: now }).where("id", "=", u.id).execute();
        await recordOutcome(tx, u, "agent_upgrade.failed", { reason });
        events.push({ upgradeId: u.id, event: "failed", agentId: step.agentId, message: reason });
      } else if (step.kind === "complete") {
        await tx.updateTable("agent_upgrades").set({ status: "completed", current_batch: null, finished_at: now }).where("id", "=", u.id).execute();
        await recordOutcome(tx, u, "agent_upgrade.completed", { targetVersion: u.target_version });
        events.push({ upgradeId: u.id, event: "completed" });
      } else {
        await tx
          .updateTable("agent_upgrade_agents")
          .set({ status: "upgrading", commanded_at: now, message: `upgrade to ${u.target_version} requested`, updated_at: now })
          .where("upgrade_id", "=", u.id)
          .where("agent_id", "in", step.agentIds)
          .execute();
        await tx.updateTable("agent_upgrades").set({ current_batch: step.batch, batch_started_at: now }).where("id", "=", u.id).execute();
        events.push({ upgradeId: u.id, event: "batch-started", batch: step.batch });
        const command: AgentUpgradeCommand = {
          v: 1,
          type: "upgrade",
          upgradeId: u.id,
          version: u.target_version,
          file: u.bundle_file,
          sha256: u.bundle_sha256,
          size: Number(u.bundle_size),
        };
        for (const agentId of step.agentIds) commands.push({ tenantId: u.tenant_id, agentId, upgradeId: u.id, command, timeoutMs: u.timeout_seconds * 1000 });
      }
    }
  });
  return { events, commands };
}

async function recordOutcome(tx: Db, u: AgentUpgradeRow, action: string, details: Record<string, unknown>): Promise<void> {
  await insertAuditEntry(tx, {
    tenant_id: u.tenant_id,
    actor_key_id: null,
    action,
    resource_type: "agent_upgrade",
    resource_id: u.id,
    request_id: null,
    ip: null,
    details: { ...details, createdByKeyId: u.created_by_key_id },
  });
}

/**
 * Sends one upgrade command and records the agent's answer on its row (only while it is
 * still `upgrading`: the tick may already have judged it). A refusal or no responder fails
 * the agent now; a timeout leaves it to the batch timeout (it may still come back).
 */
export async function sendUpgradeCommand(db: Db, send: SendUpgradeCommand, c: PendingCommand): Promise<UpgradeEvent | null> {
  const outcome = await send(c.tenantId, c.agentId, c.command, c.timeoutMs);
  const update = (status: "upgrading" | "failed", message: string) =>
    db
      .updateTable("agent_upgrade_agents")
      .set({ status, message, updated_at: new Date() })
      .where("upgrade_id", "=", c.upgradeId)
      .where("agent_id", "=", c.agentId)
      .where("status", "=", "upgrading")
      .execute();
  switch (outcome.kind) {
    case "accepted":
      await update("upgrading", `installed ${outcome.version}; restarting`);
      return null;
    case "timeout":
      await update("upgrading", `no reply within ${Math.round(c.timeoutMs / 1000)} s; waiting for it to come back`);
      return null;
    case "no-responders":
      await update("failed", "not reachable over NATS (no responder on its command subject)");
      return { upgradeId: c.upgradeId, event: "agent-failed", agentId: c.agentId, message: "no responder" };
    case "refused":
      await update("failed", outcome.message);
      return { upgradeId: c.upgradeId, event: "agent-failed", agentId: c.agentId, message: outcome.message };
  }
}

/**
 * The scheduler-role loop: ticks every `intervalMs` (and at once when `kick()` is called),
 * sends the commands a tick returns without blocking the next tick (a download can take a
 * while), and on stop waits for commands in flight.
 */
export function startAgentUpgradeDriver(db: Db, send: SendUpgradeCommand, logger: Logger, { intervalMs = 1000 } = {}) {
  const inFlight = new Set<Promise<unknown>>();
  let ticking: Promise<void> = Promise.resolve();
  let queued = false;
  let stopped = false;
  const log = (e: UpgradeEvent) => {
    const level = e.event === "failed" || e.event === "agent-failed" ? "warn" : "info";
    logger[level]({ upgradeId: e.upgradeId, agentId: e.agentId, batch: e.batch, message: e.message }, `agent upgrade: ${e.event}`);
  };
  const pass = async () => {
    queued = false;
    try {
      const { events, commands } = await agentUpgradesTick(db);
      events.forEach(log);
      for (const c of commands) {
        const p = sendUpgradeCommand(db, send, c)
          .then((e) => {
            if (!e) return;
            log(e);
            tick(); // a refusal stops the rollout now, not at the next interval
          })
          .catch((err: unknown) => logger.error({ err, upgradeId: c.upgradeId, agentId: c.agentId }, "agent upgrade command failed"))
          .finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
    } catch (err) {
      logger.error({ err }, "agent upgrade tick failed");
    }
  };
  function tick() {
    // Passes run one after another; at most one waits behind the running one.
    if (stopped || queued) return;
    queued = true;
    ticking = ticking.then(pass);
  }
  const timer = setInterval(tick, intervalMs);
  tick();
  return {
    /** Run a pass now (a rollout was just created on this replica). */
    kick: tick,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await ticking;
      // Replies still awaited are not needed: the state is in Postgres and the batch timeout covers them.
      await Promise.race([Promise.allSettled([...inFlight]), new Promise((r) => setTimeout(r, 2_000).unref())]);
    },
  };
}
