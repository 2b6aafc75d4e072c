import "@hdrcap/testkit/provided-context";
import type { CaptureSpec } from "@hdrcap/api/captures";
import {
  NATS_SUBJECTS,
  agentCommandReplySchema,
  agentHeartbeatSchema,
  agentHelloSchema,
  type AgentHeartbeat,
  type AgentHello,
} from "@hdrcap/api/nats";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { AgentDaemon } from "../../src/daemon/agent-daemon.ts";
import { connectNatsLink, type NatsLink } from "../../src/messaging/nats-link.ts";
import { captureSpec, fakeCaptureFactory, fakeRecords, silentLogger } from "../daemon/fakes.ts";
import { createRecordsStream, randomId, readBatches } from "./stream-helpers.ts";

const tenantId = randomId("ten");
const agentId = randomId("agt");
const facts = {
  hostname: "it-host",
  machineId: "machine-id-for-tests",
  kernelRelease: "6.1.0",
  arch: "x64",
  btf: true,
  hooks: { syscallTracepoints: true },
  agentVersion: "0.1.0",
};

/** A stand-in for the control plane's NATS responders: serves a mutable desired state, records what agents send. */
class FakeControlPlane {
  desired: CaptureSpec[] = [];
  hellos: AgentHello[] = [];
  desiredRequests = 0;
  heartbeats: AgentHeartbeat[] = [];
  constructor(private readonly nc: NatsConnection) {
    const reply = { v: 1 as const };
    nc.subscribe(NATS_SUBJECTS.agentHello(tenantId, agentId), {
      callback: (_e, m) => {
        this.hellos.push(agentHelloSchema.parse(m.json()));
        m.respond(JSON.stringify({ ...reply, captures: this.desired }));
      },
    });
    nc.subscribe(NATS_SUBJECTS.agentDesired(tenantId, agentId), {
      callback: (_e, m) => {
        this.desiredRequests++;
        m.respond(JSON.stringify({ ...reply, captures: this.desired }));
      },
    });
    nc.subscribe(NATS_SUBJECTS.agentHeartbeat(tenantId, agentId), {
      callback: (_e, m) => {
        this.heartbeats.push(agentHeartbeatSchema.parse(m.json()));
      },
    });
  }
  async sync() {
    const m = await this.nc.request(NATS_SUBJECTS.agentCommand(tenantId, agentId), JSON.stringify({ v: 1, type: "sync" }), { timeout: 5_000 });
    return agentCommandReplySchema.parse(m.json());
  }
  lastReport(captureId: string) {
    for (let i = this.heartbeats.length - 1; i >= 0; i--) {
      const r = this.heartbeats[i]!.captures.find((c) => c.captureId === captureId);
      if (r) return r;
    }
    return undefined;
  }
  statusesOf(captureId: string): string[] {
    const out: string[] = [];
    for (const hb of this.heartbeats) {
      const s = hb.captures.find((c) => c.captureId === captureId)?.status;
      if (s && out.at(-1) !== s) out.push(s);
    }
    return out;
  }
}

const waitFor = async (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

let cpConn: NatsConnection;
let cp: FakeControlPlane;
let link: NatsLink;
let daemon: AgentDaemon;
let stream: string;
const fake = fakeCaptureFactory();

beforeAll(async () => {
  cpConn = await connect({ servers: inject("natsUrl") });
  cp = new FakeControlPlane(cpConn);
  await cpConn.flush();
  stream = await createRecordsStream(cpConn, tenantId, agentId);
  link = await connectNatsLink({ servers: [inject("natsUrl")], logger: silentLogger() });
  cp.desired = [captureSpec("cap_a")];
  daemon = new AgentDaemon({
    tenantId,
    agentId,
    link,
    facts,
    captureFactory: fake.factory,
    logger: silentLogger(),
    desiredIntervalMs: 300,
    heartbeatIntervalMs: 100,
    reportRetentionMs: 60_000,
  });
  daemon.start();
});

afterAll(async () => {
  await daemon?.stop(2_000);
  await cpConn?.close();
});

describe("AgentDaemon with a control plane over NATS", () => {
  it("says hello with its host facts and starts the desired capture, reporting attaching then running", async () => {
    await waitFor("cap_a running", () => cp.lastReport("cap_a")?.status === "running");
    expect(cp.hellos[0]!.facts).toEqual(facts);
    expect(cp.statusesOf("cap_a")).toEqual(["attaching", "running"]);
    expect(fake.byId("cap_a")!.options.spec).toEqual(captureSpec("cap_a"));
  });

  it("streams the capture's records into JetStream and reports them published in heartbeats", async () => {
    fake.byId("cap_a")!.emit(fakeRecords(0, 1_234));
    await waitFor("published in heartbeat", () => cp.lastReport("cap_a")?.counters.published === 1_234);
    const batches = await readBatches(cpConn, stream);
    expect(batches.reduce((n, b) => n + b.records.length, 0)).toBe(1_234);
    expect(batches.every((b) => b.captureId === "cap_a" && b.batchId.startsWith(`${agentId}.`))).toBe(true);
    expect(cp.lastReport("cap_a")!.counters).toMatchObject({ records: 1_234, droppedInAgent: 0, published: 1_234, seen: 2_468 });
  });

  it("re-fetches the desired state periodically", async () => {
    const before = cp.desiredRequests;
    await waitFor("a periodic desired request", () => cp.desiredRequests > before, 3_000);
  });

  it("starts a new capture on sync and answers with its capture reports", async () => {
    cp.desired = [captureSpec("cap_a"), captureSpec("cap_b", { limits: { captureBytes: 4096, maxRecords: 5 } })];
    const reply = await cp.sync();
    expect(reply.ok).toBe(true);
    expect(reply.captures.map((c) => c.captureId).sort()).toEqual(["cap_a", "cap_b"]);
    expect(fake.byId("cap_b")).toBeDefined();
  });

  it("stops a capture at max records, reports why, and does not restart it while it is still desired", async () => {
    fake.byId("cap_b")!.emit(fakeRecords(10_000, 8));
    await waitFor("cap_b detached", () => cp.lastReport("cap_b")?.status === "detached");
    expect(cp.lastReport("cap_b")).toMatchObject({ message: "max-records reached", counters: { records: 5 } });
    await cp.sync();
    await cp.sync();
    expect(fake.started.filter((c) => c.options.spec.captureId === "cap_b")).toHaveLength(1);
    await waitFor("cap_b published", () => cp.lastReport("cap_b")?.counters.published === 5);
  });

  it("stops a capture removed from the desired state and reports it detached", async () => {
    cp.desired = [captureSpec("cap_b", { limits: { captureBytes: 4096, maxRecords: 5 } })];
    const reply = await cp.sync();
    expect(reply.captures.find((c) => c.captureId === "cap_a")).toMatchObject({ status: "detached" });
    expect(fake.byId("cap_a")!.stopped).toBe(true);
  });

  it("reports a capture that cannot start as error with the reason", async () => {
    fake.failWith = "kernel capture cannot start: missing capabilities CAP_BPF, CAP_PERFMON";
    cp.desired = [captureSpec("cap_c")];
    await cp.sync();
    await waitFor("cap_c error", () => cp.lastReport("cap_c")?.status === "error");
    expect(cp.lastReport("cap_c")!.message).toBe(fake.failWith);
    fake.failWith = null;
  });

  it("keeps running its captures when the control plane stops answering", async () => {
    cp.desired = [captureSpec("cap_d")];
    await cp.sync();
    await waitFor("cap_d running", () => cp.lastReport("cap_d")?.status === "running");
    await cpConn.drain();
    cpConn = await connect({ servers: inject("natsUrl") }); // a connection with no responders
    await new Promise((r) => setTimeout(r, 800));
    expect(fake.byId("cap_d")!.stopped).toBe(false);
    expect(daemon.supervisor.runningCount).toBe(1);
  });

  it("on stop, stops captures, publishes their last records and closes the connection", async () => {
    fake.byId("cap_d")!.emit(fakeRecords(20_000, 40));
    await daemon.stop(5_000);
    expect(fake.byId("cap_d")!.stopped).toBe(true);
    expect(daemon.publisher.counters("cap_d")).toEqual({ added: 40, published: 40, dropped: 0 });
    expect(link.nc.isClosed()).toBe(true);
  });
});
