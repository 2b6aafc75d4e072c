import {
  NATS_SUBJECTS,
  RECORDS_CONSUMER,
  RECORDS_STREAM,
  agentInboxPrefix,
  type DesiredState,
  type EnrollResult,
  type HostFacts,
  type HttpRecord,
  type RecordBatch,
} from "@hdrcap/api";
import { createNatsAuthority, startNats, type NatsAuthority, type NatsServer } from "@hdrcap/local-services";
import { freshDatabase, type TestDatabase } from "@hdrcap/testkit";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { createUser } from "@nats-io/nkeys";
import { connect, jwtAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { loadEnv } from "../src/env.ts";
import { createNudger } from "../src/messaging/nudge.ts";
import { startServer, type RunningServer } from "../src/server.ts";
import { schedulerTick } from "../src/services/scheduler.ts";
import { bootstrapFirstTenant } from "../src/services/tenants.ts";
import { hostFacts } from "./security/world.ts";

// The control plane for real (HTTP server, NATS responders, ingester) against a
// real nats-server in operator mode and a real Postgres. The agent side is played
// by this test over real NATS connections with the credentials enrollment returns.

const facts = (machineId: string): HostFacts => hostFacts(machineId);

function httpRecord(i: number): HttpRecord {
  return {
    ts: new Date(Date.now() - 1000 + i).toISOString(),
    connectionId: `c${i % 7}`,
    kind: i % 2 === 0 ? "request" : "response",
    role: "server",
    src: { ip: "10.0.0.1", port: 40000 + (i % 100) },
    dst: { ip: "10.0.0.2", port: 8080 },
    pid: 42,
    comm: "nginx",
    method: i % 2 === 0 ? "GET" : null,
    path: i % 2 === 0 ? `/item/${i}` : null,
    version: "HTTP/1.1",
    status: i % 2 === 0 ? null : 200,
    reason: i % 2 === 0 ? null : "OK",
    latencyMs: i % 2 === 0 ? null : 1.5,
    headers: [
      { name: "Host", value: "example.test" },
      { name: "X-Seq", value: String(i) },
      { name: "x-seq", value: "dup" },
    ],
    headerBytes: 80,
    redacted: [],
  };
}

interface FakeAgent {
  id: string;
  tenantId: string;
  nc: NatsConnection;
  enroll: EnrollResult;
  close(): Promise<void>;
}

describe("agents over NATS (control plane side)", () => {
  let dir: string;
  let authority: NatsAuthority;
  let nats: NatsServer;
  let db: TestDatabase;
  let server: RunningServer;
  let adminKey: string;

  const api = async (method: string, path: string, body?: unknown, auth: string | null = adminKey) => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { ...(auth ? { authorization: `Bearer ${auth}` } : {}), ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as any };
  };

  async function enrollAgent(token: string, machineId: string): Promise<FakeAgent> {
    const user = createUser();
    const res = await api("POST", "/v1/enroll", { facts: facts(machineId), natsPublicKey: user.getPublicKey() }, token);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const enroll = res.body as EnrollResult;
    const nc = await connect({
      servers: enroll.natsServers,
      authenticator: jwtAuthenticator(enroll.natsJwt, user.getSeed()),
      inboxPrefix: enroll.inboxPrefix,
    });
    return { id: enroll.agentId, tenantId: enroll.tenantId, nc, enroll, close: () => nc.close() };
  }

  const hello = async (a: FakeAgent) =>
    (await a.nc.request(NATS_SUBJECTS.agentHello(a.tenantId, a.id), JSON.stringify({ v: 1, facts: facts(`machine-${a.id}`) }), { timeout: 3000 })).json<DesiredState>();
  const desired = async (a: FakeAgent) => (await a.nc.request(NATS_SUBJECTS.agentDesired(a.tenantId, a.id), "{}", { timeout: 3000 })).json<DesiredState>();
  const heartbeat = async (a: FakeAgent, captures: unknown[]) => {
    a.nc.publish(NATS_SUBJECTS.agentHeartbeat(a.tenantId, a.id), JSON.stringify({ v: 1, captures }));
    await a.nc.flush();
  };
  const publishBatch = async (a: FakeAgent, batch: RecordBatch) =>
    jetstream(a.nc).publish(NATS_SUBJECTS.records(a.tenantId, a.id), JSON.stringify(batch), { msgID: batch.batchId, timeout: 3000 });
  const storedCount = async (captureId: string) =>
    Number((await db.db.selectFrom("records").select((eb) => eb.fn.countAll<string>().as("n")).where("capture_id", "=", captureId).executeTakeFirstOrThrow()).n);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "hdrcap-agents-"));
    authority = await createNatsAuthority();
    nats = await startNats({ dir: join(dir, "nats"), extraConfig: authority.serverConfig() });
    db = await freshDatabase(inject("pgAdminUrl"));
    const boot = await bootstrapFirstTenant(db.db, { slug: "default", name: "Default" });
    adminKey = boot!.key;
    const env = loadEnv({ DATABASE_URL: db.url, NATS_URL: nats.url, NATS_ACCOUNT_SEED: authority.account.seed, PORT: "0", HDRCAP_ROLES: "api,ingest" });
    server = await startServer(env, pino({ level: "silent" }));
  });
  afterAll(async () => {
    await server?.close();
    await db?.drop();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("enrolls an agent once per token use, keeps its id on re-enrollment and refuses used or expired tokens", async () => {
    const created = await api("POST", "/v1/enrollment-tokens", { labels: { env: "prod" }, maxUses: 2 });
    expect(created.status).toBe(201);
    const token: string = created.body.token;
    expect(token).toMatch(/^hcet_/);

    const first = await enrollAgent(token, "machine-0001");
    const again = await enrollAgent(token, "machine-0001");
    expect(again.id).toBe(first.id);
    const used = await api("POST", "/v1/enroll", { facts: facts("machine-0002"), natsPublicKey: createUser().getPublicKey() }, token);
    expect(used.status).toBe(401);
    expect(used.body.error.message).toMatch(/used up/);

    const expiring = await api("POST", "/v1/enrollment-tokens", { expiresInSeconds: 60 });
    await db.db.updateTable("enrollment_tokens").set({ expires_at: new Date(Date.now() - 1000) }).where("id", "=", expiring.body.enrollmentToken.id).execute();
    const expired = await api("POST", "/v1/enroll", { facts: facts("machine-0003"), natsPublicKey: createUser().getPublicKey() }, expiring.body.token);
    expect(expired.status).toBe(401);
    expect(expired.body.error.message).toMatch(/expired/);

    const agent = await api("GET", `/v1/agents/${first.id}`);
    expect(agent.body.labels).toEqual({ env: "prod" });
    expect(agent.body.facts.hostname).toBe("host-machine-0001");
    await Promise.all([first.close(), again.close()]);
  });

  it("confines each agent's NATS credentials to its own subjects", async () => {
    const { body } = await api("POST", "/v1/enrollment-tokens", { maxUses: 2 });
    const a = await enrollAgent(body.token, "machine-perm-a");
    const b = await enrollAgent(body.token, "machine-perm-b");
    const errors: string[] = [];
    (async () => {
      for await (const s of a.nc.status()) if (s.type === "error") errors.push(String((s as { error?: Error }).error?.message ?? s.type));
    })().catch(() => {});

    const stolen = a.nc.subscribe(NATS_SUBJECTS.agentCommand(b.tenantId, b.id));
    await a.nc.flush().catch(() => {});
    await expect.poll(() => errors.join(" "), { timeout: 3000 }).toMatch(/Permissions Violation for Subscription/);
    expect(stolen.isClosed()).toBe(true);

    await expect(
      jetstream(a.nc).publish(NATS_SUBJECTS.records(b.tenantId, b.id), JSON.stringify({ v: 1 }), { timeout: 1500 }),
    ).rejects.toThrow();
    await expect.poll(() => errors.join(" "), { timeout: 3000 }).toMatch(/Permissions Violation for Publish/);
    await expect(a.nc.request(NATS_SUBJECTS.agentHello("ten_other", a.id), "{}", { timeout: 1000 })).rejects.toThrow();

    // Its own subjects work.
    expect((await hello(a)).captures).toEqual([]);
    await Promise.all([a.close(), b.close()]);
  });

  it("hands a capture to the targeted agents, nudges them, and stores their records exactly once", async () => {
    const { body } = await api("POST", "/v1/enrollment-tokens", { labels: { team: "edge" }, maxUses: 1 });
    const agent = await enrollAgent(body.token, "machine-capture");
    const nudges: unknown[] = [];
    agent.nc.subscribe(NATS_SUBJECTS.agentCommand(agent.tenantId, agent.id), {
      callback: (_err, msg) => {
        nudges.push(msg.json());
        msg.respond(JSON.stringify({ v: 1, ok: true, captures: [] }));
      },
    });
    await agent.nc.flush();
    expect((await hello(agent)).captures).toEqual([]);

    const created = await api("POST", "/v1/captures", { name: "edge http", agents: { labels: { team: "edge" } }, filter: { ports: [8080] }, limits: { maxRecords: 100000 } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const captureId: string = created.body.id;
    expect(created.body.agentStatuses.map((s: { agentId: string }) => s.agentId)).toEqual([agent.id]);
    await expect.poll(() => nudges.length, { timeout: 3000 }).toBeGreaterThan(0);

    const state = await desired(agent);
    expect(state.captures.map((c) => c.captureId)).toEqual([captureId]);
    expect(state.captures[0]!.filter.ports).toEqual([8080]);
    expect(state.captures[0]!.hashKey).toMatch(/=$/);

    await heartbeat(agent, [{ captureId, status: "running", message: null, counters: { seen: 10, records: 0 } }]);
    await expect.poll(async () => (await api("GET", `/v1/captures/${captureId}`)).body.status, { timeout: 3000 }).toBe("running");

    // 3 batches; the second is published twice (a retry after a lost ack).
    const batches: RecordBatch[] = [0, 1, 2].map((b) => ({
      v: 1,
      batchId: `${agent.id}.${captureId}.run1.${b}`,
      captureId,
      records: Array.from({ length: 200 }, (_, i) => httpRecord(b * 200 + i)),
    }));
    const started = Date.now();
    for (const b of batches) await publishBatch(agent, b);
    const dup = await publishBatch(agent, batches[1]!);
    expect(dup.duplicate).toBe(true);
    await expect.poll(() => storedCount(captureId), { timeout: 2000, interval: 50 }).toBe(600);
    expect(Date.now() - started).toBeLessThan(2000);

    // A redelivery that JetStream's window would not catch (different message id, same batch id) stores nothing.
    await jetstream(agent.nc).publish(NATS_SUBJECTS.records(agent.tenantId, agent.id), JSON.stringify(batches[0]), { msgID: "another-id" });
    await new Promise((r) => setTimeout(r, 500));
    expect(await storedCount(captureId)).toBe(600);

    const page = await api("GET", `/v1/captures/${captureId}/records?limit=2`);
    expect(page.status).toBe(200);
    expect(page.body.items[0].headers).toEqual([
      { name: "Host", value: "example.test" },
      { name: "X-Seq", value: "0" },
      { name: "x-seq", value: "dup" },
    ]);
    expect(page.body.items[0].src).toEqual({ ip: "10.0.0.1", port: 40000 });
    const view = await api("GET", `/v1/captures/${captureId}`);
    expect(view.body.completeness.stored).toBe(600);

    // Stop: the job leaves the agent's desired state; once it reports detached, the job is cancelled.
    const stopped = await api("POST", `/v1/captures/${captureId}/stop`);
    expect(stopped.body.status).toBe("stopping");
    expect((await desired(agent)).captures).toEqual([]);
    await heartbeat(agent, [{ captureId, status: "detached", message: "stopped", counters: { records: 600, published: 600 } }]);
    await new Promise((r) => setTimeout(r, 200));
    await schedulerTick(db.db, createNudger(server.nats, db.db));
    const ended = await api("GET", `/v1/captures/${captureId}`);
    expect(ended.body.status).toBe("cancelled");
    expect(ended.body.endedAt).not.toBeNull();
    await agent.close();
  });

  it("terminates poison batches without blocking the stream", async () => {
    const { body } = await api("POST", "/v1/enrollment-tokens", { maxUses: 1 });
    const agent = await enrollAgent(body.token, "machine-poison");
    await hello(agent);
    const created = await api("POST", "/v1/captures", { name: "poison", agents: { ids: [agent.id] } });
    const captureId: string = created.body.id;
    await desired(agent);

    const subject = NATS_SUBJECTS.records(agent.tenantId, agent.id);
    const js = jetstream(agent.nc);
    await js.publish(subject, "not json at all");
    await js.publish(subject, JSON.stringify({ v: 1, batchId: "x".repeat(10), captureId, records: [{ nope: true }] }));
    await js.publish(subject, JSON.stringify({ v: 1, batchId: "wrong-capture-1", captureId: "cap_doesnotexist000000", records: [httpRecord(1)] }));
    await js.publish(subject, JSON.stringify({ v: 1, batchId: "good-after-poison", captureId, records: [httpRecord(2), httpRecord(3)] }), { msgID: "good-after-poison" });

    await expect.poll(() => storedCount(captureId), { timeout: 3000 }).toBe(2);
    // Nothing left pending or awaiting an ack: poison was terminated, not redelivered.
    const jsm = await jetstreamManager(server.nats);
    await expect
      .poll(async () => {
        const info = await jsm.consumers.info(RECORDS_STREAM, RECORDS_CONSUMER);
        return { pending: info.num_pending, ackPending: info.num_ack_pending, redelivered: info.num_redelivered };
      }, { timeout: 3000 })
      .toEqual({ pending: 0, ackPending: 0, redelivered: 0 });
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/hdrcap_cp_ingest_batches_total\{result="rejected"\} 3/);
    await agent.close();
  });

  it("marks silent agents offline and online again when they return", async () => {
    const { body } = await api("POST", "/v1/enrollment-tokens", { maxUses: 1 });
    const agent = await enrollAgent(body.token, "machine-presence");
    await hello(agent);
    expect((await api("GET", `/v1/agents/${agent.id}`)).body.status).toBe("online");
    await db.db.updateTable("agents").set({ last_seen_at: new Date(Date.now() - 60_000) }).where("id", "=", agent.id).execute();
    const tick = await schedulerTick(db.db, createNudger(server.nats, db.db), { offlineAfterMs: 15_000 });
    expect(tick.offline).toContain(agent.id);
    const listed = await api("GET", "/v1/agents?status=offline");
    expect(listed.body.items.map((a: { id: string }) => a.id)).toContain(agent.id);
    await heartbeat(agent, []);
    await expect.poll(async () => (await api("GET", `/v1/agents/${agent.id}`)).body.status, { timeout: 3000 }).toBe("online");
    await agent.close();
  });

  it("marks an agent unreachable for a job when nobody answers its commands", async () => {
    const { body } = await api("POST", "/v1/enrollment-tokens", { labels: { pool: "silent" }, maxUses: 1 });
    const agent = await enrollAgent(body.token, "machine-silent");
    await agent.close(); // enrolled but not connected
    const created = await api("POST", "/v1/captures", { name: "nobody home", agents: { labels: { pool: "silent" } } });
    await expect
      .poll(async () => (await api("GET", `/v1/captures/${created.body.id}`)).body.agentStatuses[0], { timeout: 5000 })
      .toMatchObject({ agentId: agent.id, status: "unreachable", message: expect.stringMatching(/no responders/) });
  });

  it("requires an interface for packet-level captures and hands the source to agents", async () => {
    const missing = await api("POST", "/v1/captures", { name: "pkt", source: { kind: "packet" } });
    expect(missing.status).toBe(400);
    expect(missing.body.error.issues.map((i: { path: string }) => i.path)).toEqual(["body.source.interface"]);
    const ok = await api("POST", "/v1/captures", { name: "pkt", source: { kind: "packet", interface: "eth0" }, agents: { labels: { none: "x" } } });
    expect(ok.status).toBe(201);
    expect(ok.body.source).toEqual({ kind: "packet", interface: "eth0" });
    expect((await api("POST", "/v1/captures", { name: "dflt", agents: { labels: { none: "x" } } })).body.source).toEqual({ kind: "socket" });
  });

  it("validates capture requests field by field", async () => {
    const res = await api("POST", "/v1/captures", { name: "", agents: { ids: ["nope"] }, filter: { ports: [0, 70000], role: "both" }, limits: { durationSeconds: -1 }, protocol: "smtp" });
    expect(res.status).toBe(400);
    const paths = res.body.error.issues.map((i: { path: string }) => i.path).sort();
    expect(paths).toEqual(
      expect.arrayContaining(["body.name", "body.agents.ids.0", "body.filter.ports.0", "body.filter.ports.1", "body.filter.role", "body.limits.durationSeconds", "body.protocol"]),
    );
  });

  it("keeps other tenants' agents and captures invisible", async () => {
    const other = await api("POST", "/v1/tenants", { slug: "other-co", name: "Other" });
    const otherKey: string = other.body.key;
    const mine = await api("GET", "/v1/agents");
    const someAgent: string = mine.body.items[0].id;
    expect((await api("GET", `/v1/agents/${someAgent}`, undefined, otherKey)).status).toBe(404);
    expect((await api("GET", "/v1/agents", undefined, otherKey)).body.items).toEqual([]);
    const caps = await api("GET", "/v1/captures");
    const someCapture: string = caps.body.items[0].id;
    expect((await api("GET", `/v1/captures/${someCapture}`, undefined, otherKey)).status).toBe(404);
    expect((await api("GET", `/v1/captures/${someCapture}/records`, undefined, otherKey)).status).toBe(404);
    expect((await api("POST", `/v1/captures/${someCapture}/stop`, undefined, otherKey)).status).toBe(404);
  });
});

export { agentInboxPrefix };
