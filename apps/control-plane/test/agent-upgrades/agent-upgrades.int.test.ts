/**
 * Upgrade rollouts against real Postgres and nats-server: the API plans and validates, the
 * driver commands agents over NATS one batch at a time and stops at the first failure.
 * The agents here are NATS responders on their command subjects that behave like agents
 * (reply, then come back with the new version) or like broken ones; the self-update of a
 * real agent is the kernel test's (test/install/fleet-install.kernel.test.ts).
 */
import { agentCommandSchema, NATS_SUBJECTS, type AgentCommandReply, type AgentUpgradeCommand } from "@hdrcap/api";
import type { Subscription } from "@nats-io/transport-node";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createUpgradeCommander } from "../../src/messaging/agent-upgrade-command.ts";
import { markAgentSeen } from "../../src/services/agents.ts";
import { agentUpgradesTick, sendUpgradeCommand, startAgentUpgradeDriver } from "../../src/services/agent-upgrades.ts";
import { createHarness, type Harness } from "../harness.ts";

const TARGET = "2.0.0-abcdef0123";
const OLD = "1.0.0-0123456789";

let h: Harness;
let tenantId: string;
let bundleDir: string;
const savedBundleDir = process.env.HDRCAP_BUNDLE_DIR;
const subs: Subscription[] = [];
let driver: ReturnType<typeof startAgentUpgradeDriver> | undefined;

type Behaviour = "upgrades" | "refuses" | "never-returns";
interface FakeAgent {
  id: string;
  commands: { at: number; command: AgentUpgradeCommand }[];
  backAt?: number;
}

const facts = (id: string, version: string) => ({ hostname: `host-${id}`, machineId: `machine-${id}`, kernelRelease: "6.18.0", arch: "x64", btf: true, hooks: {}, agentVersion: version });

/** An agent row, and (unless `responds` is false) a responder on its command subject. */
async function agent(id: string, behaviour: Behaviour, { version = OLD, online = true, labels = { fleet: "upg" }, responds = true } = {}): Promise<FakeAgent> {
  await h.db.db
    .insertInto("agents")
    .values({ id, tenant_id: tenantId, machine_id: `machine-${id}`, hostname: `host-${id}`, labels, facts: facts(id, version), status: online ? "online" : "offline", nats_public_key: "U".padEnd(56, "A"), last_seen_at: new Date() })
    .execute();
  const fake: FakeAgent = { id, commands: [] };
  if (!responds) return fake;
  subs.push(
    h.nats.subscribe(NATS_SUBJECTS.agentCommand(tenantId, id), {
      callback: (_err, msg) => {
        const command = agentCommandSchema.parse(msg.json());
        if (command.type !== "upgrade") return;
        fake.commands.push({ at: Date.now(), command });
        const reply: AgentCommandReply =
          behaviour === "refuses"
            ? { v: 1, ok: false, captures: [], error: `checksum mismatch for ${command.file}: expected sha256 ${command.sha256}, got ${"f".repeat(64)}` }
            : { v: 1, ok: true, captures: [], upgradedTo: command.version };
        msg.respond(JSON.stringify(reply));
        if (behaviour === "upgrades") {
          // The restarted agent's hello carries the new version (what the responder records).
          setTimeout(() => {
            fake.backAt = Date.now();
            void markAgentSeen(h.db.db, tenantId, id, facts(id, command.version));
          }, 300);
        }
      },
    }),
  );
  return fake;
}

const createRollout = (body: unknown) => h.call("POST", "/v1/agent-upgrades", { key: h.operatorKey, body });
const cancelRollout = (id: string) => h.call("POST", `/v1/agent-upgrades/${id}/cancel`, { key: h.operatorKey });
const view = async (id: string) => (await h.call("GET", `/v1/agent-upgrades/${id}`, { key: h.operatorKey })).body;
async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
async function finished(id: string, timeoutMs = 20_000) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await h.call("GET", `/v1/agent-upgrades/${id}`, { key: h.operatorKey });
    if (res.body.status !== "running" || Date.now() > until) return res.body;
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  h = await createHarness();
  tenantId = (await h.call("GET", "/v1/whoami", { key: h.operatorKey })).body.tenant.id;
  bundleDir = mkdtempSync(join(tmpdir(), "hdrcap-upgrade-bundles-"));
  const file = `agent-${TARGET}-linux-x64.tar.gz`;
  writeFileSync(join(bundleDir, file), "not really a tarball");
  writeFileSync(join(bundleDir, "latest.json"), JSON.stringify({ version: TARGET, file, sha256: "ab".repeat(32), size: 20 }));
  process.env.HDRCAP_BUNDLE_DIR = bundleDir;
});

afterEach(async () => {
  await driver?.stop();
  driver = undefined;
  for (const s of subs.splice(0)) s.unsubscribe();
  // Each test plans over its own agents.
  await h.db.db.deleteFrom("agent_upgrades").execute();
  await h.db.db.deleteFrom("agents").execute();
});

afterAll(async () => {
  if (savedBundleDir === undefined) delete process.env.HDRCAP_BUNDLE_DIR;
  else process.env.HDRCAP_BUNDLE_DIR = savedBundleDir;
  rmSync(bundleDir, { recursive: true, force: true });
  await h?.close();
});

describe("agent upgrade rollouts", () => {
  it("upgrades the selected online agents one batch at a time, skipping offline and up-to-date ones", async () => {
    const a = await agent("agt_a0000000001", "upgrades");
    const b = await agent("agt_b0000000001", "upgrades");
    const c = await agent("agt_c0000000001", "upgrades");
    await agent("agt_d0000000001", "upgrades", { online: false });
    await agent("agt_e0000000001", "upgrades", { version: TARGET });
    await agent("agt_f0000000001", "upgrades", { labels: { fleet: "other" } });
    const created = await createRollout({ agents: { labels: { fleet: "upg" } }, batchSize: 2, timeoutSeconds: 30 });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({ status: "running", targetVersion: TARGET, batchCount: 2, batchSize: 2, counts: { pending: 3, skipped: 2, upgrading: 0 } });
    expect(created.body.agentStates.map((s: any) => [s.agentId, s.batch, s.status])).toEqual([
      ["agt_a0000000001", 0, "pending"],
      ["agt_b0000000001", 0, "pending"],
      ["agt_c0000000001", 1, "pending"],
      ["agt_d0000000001", null, "skipped"],
      ["agt_e0000000001", null, "skipped"],
    ]);

    driver = startAgentUpgradeDriver(h.db.db, createUpgradeCommander(h.nats), pino({ level: "silent" }), { intervalMs: 100 });
    const done = await finished(created.body.id);
    expect(done).toMatchObject({ status: "completed", statusReason: null, currentBatch: null, counts: { upgraded: 3, skipped: 2, failed: 0, pending: 0, upgrading: 0 } });
    expect(done.finishedAt).not.toBeNull();
    // The command names the rollout's bundle; the second batch starts only after the first is back.
    expect(a.commands[0]!.command).toEqual({ v: 1, type: "upgrade", upgradeId: created.body.id, version: TARGET, file: `agent-${TARGET}-linux-x64.tar.gz`, sha256: "ab".repeat(32), size: 20 });
    expect([a, b, c].map((x) => x.commands.length)).toEqual([1, 1, 1]);
    expect(c.commands[0]!.at).toBeGreaterThanOrEqual(Math.max(a.backAt!, b.backAt!));
    const audit = (await h.call("GET", "/v1/audit?limit=20", { key: h.operatorKey })).body.items.map((e: { action: string }) => e.action);
    expect(audit).toEqual(expect.arrayContaining(["agent_upgrade.create", "agent_upgrade.completed"]));
  });

  it("stops at the first failure, naming the agent and its reason, and does not attempt later batches", async () => {
    await agent("agt_a0000000002", "upgrades");
    const refusing = await agent("agt_b0000000002", "refuses");
    const later = await agent("agt_c0000000002", "upgrades");
    const created = await createRollout({ agents: { ids: ["agt_a0000000002", "agt_b0000000002", "agt_c0000000002"] }, batchSize: 1 });
    driver = startAgentUpgradeDriver(h.db.db, createUpgradeCommander(h.nats), pino({ level: "silent" }), { intervalMs: 100 });
    const done = await finished(created.body.id);
    expect(done.status).toBe("failed");
    expect(done.statusReason).toMatch(/^agent agt_b0000000002 \(host-agt_b0000000002\) failed in batch 2 of 3: checksum mismatch for agent-2\.0\.0-abcdef0123-linux-x64\.tar\.gz/);
    expect(done.agentStates.map((s: any) => [s.agentId, s.status])).toEqual([
      ["agt_a0000000002", "upgraded"],
      ["agt_b0000000002", "failed"],
      ["agt_c0000000002", "skipped"],
    ]);
    expect(done.agentStates[2].message).toBe("not attempted: the rollout stopped when agt_b0000000002 failed");
    expect(refusing.commands).toHaveLength(1);
    expect(later.commands).toHaveLength(0);
    const audit = (await h.call("GET", "/v1/audit?limit=20", { key: h.operatorKey })).body.items.find((e: { action: string }) => e.action === "agent_upgrade.failed");
    expect(audit?.details?.reason ?? JSON.stringify(audit)).toContain("agt_b0000000002");
  });

  it("fails an agent nobody answers for at once, and one that never comes back at the batch timeout", async () => {
    await agent("agt_a0000000003", "upgrades", { responds: false });
    const created = await createRollout({ agents: { ids: ["agt_a0000000003"] } });
    driver = startAgentUpgradeDriver(h.db.db, createUpgradeCommander(h.nats), pino({ level: "silent" }), { intervalMs: 100 });
    const done = await finished(created.body.id);
    expect(done.statusReason).toBe("agent agt_a0000000003 (host-agt_a0000000003) failed in batch 1 of 1: not reachable over NATS (no responder on its command subject)");
    await driver.stop();
    driver = undefined;

    // Driven by hand, with the clock moved past the timeout.
    const ghost = await agent("agt_b0000000003", "never-returns");
    const second = await createRollout({ agents: { ids: [ghost.id] }, timeoutSeconds: 10 });
    const first = await agentUpgradesTick(h.db.db);
    expect(first.commands.map((c) => c.agentId)).toEqual([ghost.id]);
    await sendUpgradeCommand(h.db.db, createUpgradeCommander(h.nats), first.commands[0]!);
    expect((await agentUpgradesTick(h.db.db, new Date(Date.now() + 5_000))).events).toEqual([]);
    const late = await agentUpgradesTick(h.db.db, new Date(Date.now() + 11_000));
    expect(late.events.map((e) => e.event)).toEqual(["agent-failed", "failed"]);
    const view = (await h.call("GET", `/v1/agent-upgrades/${second.body.id}`, { key: h.operatorKey })).body;
    expect(view.statusReason).toBe(`agent ${ghost.id} (host-${ghost.id}) failed in batch 1 of 1: did not come back online reporting ${TARGET} within 10 s (it is online, reporting ${OLD})`);
  });

  it("allows one running rollout per tenant, validates its input and completes at once when nothing needs upgrading", async () => {
    await agent("agt_a0000000004", "upgrades");
    const nothing = await createRollout({ agents: { labels: { fleet: "nobody" } } });
    expect(nothing.status).toBe(201);
    expect(nothing.body).toMatchObject({ status: "completed", batchCount: 0, agentStates: [] });
    expect(nothing.body.statusReason).toMatch(/^nothing to upgrade/);

    const running = await createRollout({ agents: { ids: ["agt_a0000000004"] } });
    expect(running.body.status).toBe("running");
    const again = await createRollout({});
    expect(again.status).toBe(409);
    expect(again.body.error.message).toContain(`agent upgrade ${running.body.id} is still running`);

    for (const [body, path] of [
      [{ batchSize: 0 }, "body.batchSize"],
      [{ timeoutSeconds: 5 }, "body.timeoutSeconds"],
      [{ agents: { ids: ["nope"] } }, "body.agents.ids.0"],
      [{ agents: { ids: ["agt_Unknown000000001"] } }, "body.agents.ids"],
      [{ extra: true }, "body"],
    ] as const) {
      const res = await createRollout(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.issues?.map((i: { path: string }) => i.path).join(" ")).toContain(path);
    }
    const list = await h.call("GET", "/v1/agent-upgrades?status=running", { key: h.operatorKey });
    expect(list.body.items.map((u: { id: string }) => u.id)).toEqual([running.body.id]);
    expect((await h.call("GET", "/v1/agent-upgrades/upg_Nowhere0000000000", { key: h.operatorKey })).status).toBe(404);
  });

  it("cancels between batches: the commanded agent finishes, the next batch is never commanded, and another rollout can start", async () => {
    const first = await agent("agt_a0000000005", "upgrades");
    const second = await agent("agt_b0000000005", "upgrades");
    const created = await createRollout({ agents: { ids: [first.id, second.id] }, batchSize: 1, timeoutSeconds: 30 });
    const tick = await agentUpgradesTick(h.db.db);
    expect(tick.commands.map((c) => c.agentId)).toEqual([first.id]);
    await sendUpgradeCommand(h.db.db, createUpgradeCommander(h.nats), tick.commands[0]!);

    const cancelled = await cancelRollout(created.body.id);
    expect(cancelled.status, JSON.stringify(cancelled.body)).toBe(200);
    const leftToFinish = `cancelled; 1 agent already sent the upgrade command in batch 1 of 2 (${first.id}) is left to finish: an upgrade command already sent cannot be recalled`;
    expect(cancelled.body).toMatchObject({ status: "cancelled", statusReason: leftToFinish, currentBatch: 0, finishedAt: null, counts: { upgrading: 1, skipped: 1, pending: 0 } });
    expect(cancelled.body.agentStates.map((s: any) => [s.agentId, s.status, s.message])).toEqual([
      [first.id, "upgrading", `installed ${TARGET}; restarting`],
      [second.id, "skipped", "cancelled"],
    ]);
    // A rollout created while the cancelled one finishes never commands its upgrading agent again.
    const meanwhile = await createRollout({ agents: { ids: [first.id, second.id] }, batchSize: 1 });
    expect(meanwhile.status, JSON.stringify(meanwhile.body)).toBe(201);
    expect(meanwhile.body.agentStates.map((s: any) => [s.agentId, s.batch, s.status, s.message]).sort()).toEqual([
      [first.id, null, "skipped", `still being upgraded by ${created.body.id} (cancelled, finishing): not commanded twice`],
      [second.id, 0, "pending", null],
    ]);
    expect((await cancelRollout(meanwhile.body.id)).body).toMatchObject({ status: "cancelled", finishedAt: expect.any(String) });
    const again = await cancelRollout(created.body.id);
    expect(again.status).toBe(409);
    expect(again.body.error.message).toBe(`cannot cancel agent upgrade ${created.body.id}: it is cancelled, not running`);

    // The driver still records how the commanded agent ends, then finishes the rollout without another batch.
    await until("the commanded agent is back", () => first.backAt !== undefined);
    await until("its new version is recorded", async () => ((await h.db.db.selectFrom("agents").select("facts").where("id", "=", first.id).executeTakeFirstOrThrow()).facts as { agentVersion?: string }).agentVersion === TARGET);
    const settle = await agentUpgradesTick(h.db.db);
    expect(settle.commands).toEqual([]);
    expect(settle.events.map((e) => e.event)).toEqual(["agent-upgraded", "cancel-settled"]);
    expect(await agentUpgradesTick(h.db.db)).toEqual({ events: [], commands: [] });
    const done = await view(created.body.id);
    expect(done).toMatchObject({ status: "cancelled", statusReason: leftToFinish, currentBatch: null, counts: { upgraded: 1, skipped: 1, upgrading: 0, pending: 0 } });
    expect(done.finishedAt).not.toBeNull();
    expect([first.commands.length, second.commands.length]).toEqual([1, 0]);
    const audit = (await h.call("GET", "/v1/audit?limit=20", { key: h.operatorKey })).body.items.find((e: { action: string; resourceId: string }) => e.action === "agent_upgrade.cancel" && e.resourceId === created.body.id);
    expect(audit).toMatchObject({ resourceId: created.body.id, details: { skipped: 1, leftToFinish: [first.id] } });

    const next = await createRollout({ agents: { ids: [second.id] } });
    expect(next.status, JSON.stringify(next.body)).toBe(201);
    expect(next.body.status).toBe("running");
    expect((await cancelRollout(next.body.id)).body).toMatchObject({ status: "cancelled", statusReason: "cancelled; no agent was being upgraded", currentBatch: null });
    expect((await view(next.body.id)).finishedAt).not.toBeNull();
  });

  it("never starts another batch of a rollout cancelled while the driver runs", async () => {
    const first = await agent("agt_a0000000006", "upgrades");
    const later = [await agent("agt_b0000000006", "upgrades"), await agent("agt_c0000000006", "upgrades")];
    const created = await createRollout({ agents: { ids: [first.id, ...later.map((a) => a.id)] }, batchSize: 1, timeoutSeconds: 30 });
    driver = startAgentUpgradeDriver(h.db.db, createUpgradeCommander(h.nats), pino({ level: "silent" }), { intervalMs: 50 });
    // The agent comes back 300 ms after its command: the cancel lands while it upgrades.
    await until("the first batch is commanded", () => first.commands.length === 1);
    expect((await cancelRollout(created.body.id)).body.status).toBe("cancelled");
    await until("the rollout settles", async () => (await view(created.body.id)).finishedAt !== null);
    await new Promise((r) => setTimeout(r, 300)); // a few more ticks
    const done = await view(created.body.id);
    expect(done.agentStates.map((s: any) => [s.agentId, s.status])).toEqual([
      [first.id, "upgraded"],
      [later[0]!.id, "skipped"],
      [later[1]!.id, "skipped"],
    ]);
    expect(later.map((a) => a.commands.length)).toEqual([0, 0]);
  });

  it("waits for the driver's row lock, so a cancel sees the batch a concurrent tick started", async () => {
    const a = await agent("agt_a0000000007", "upgrades");
    const b = await agent("agt_b0000000007", "upgrades");
    const created = await createRollout({ agents: { ids: [a.id, b.id] }, batchSize: 1 });
    let cancel: Promise<{ status: number; body: any }> | undefined;
    let cancelDone = false;
    // Stands in for a tick holding the rollout's row (FOR UPDATE) while it starts batch 1.
    await h.db.db.transaction().execute(async (tx) => {
      await tx.selectFrom("agent_upgrades").select("id").where("id", "=", created.body.id).forUpdate().execute();
      cancel = cancelRollout(created.body.id).then((r) => ((cancelDone = true), r));
      await new Promise((r) => setTimeout(r, 300));
      expect(cancelDone).toBe(false);
      await tx.updateTable("agent_upgrade_agents").set({ status: "upgrading", commanded_at: new Date() }).where("upgrade_id", "=", created.body.id).where("agent_id", "=", a.id).execute();
      await tx.updateTable("agent_upgrades").set({ current_batch: 0, batch_started_at: new Date() }).where("id", "=", created.body.id).execute();
    });
    const res = await cancel!;
    expect(res.status).toBe(200);
    expect(res.body.agentStates.map((s: any) => [s.agentId, s.status])).toEqual([
      [a.id, "upgrading"],
      [b.id, "skipped"],
    ]);
    // And while a cancel holds the row, a tick skips the rollout rather than starting its next batch.
    await h.db.db.transaction().execute(async (tx) => {
      await tx.selectFrom("agent_upgrades").select("id").where("id", "=", created.body.id).forUpdate().execute();
      expect(await agentUpgradesTick(h.db.db)).toEqual({ events: [], commands: [] });
    });
  });

  it("answers 404 for unknown ids and 400 naming the id when it is malformed", async () => {
    const unknown = await cancelRollout("upg_Nowhere0000000000");
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.message).toBe("no agent upgrade upg_Nowhere0000000000");
    const malformed = await cancelRollout("agt_notAnUpgrade");
    expect(malformed.status).toBe(400);
    expect(malformed.body.error.issues.map((i: { path: string }) => i.path)).toContain("param.id");
  });
});
