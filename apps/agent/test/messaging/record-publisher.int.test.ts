import { NATS_SUBJECTS } from "@hdrcap/api/nats";
import { freePort, startNats, type NatsServer } from "@hdrcap/local-services";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJetStreamBatchSink } from "../../src/messaging/jetstream-batch-sink.ts";
import { connectNatsLink, type NatsLink } from "../../src/messaging/nats-link.ts";
import { RecordPublisher } from "../../src/messaging/record-publisher.ts";
import { fakeRecords, silentLogger } from "../daemon/fakes.ts";
import { createRecordsStream, randomId, readBatches, streamMessageCount } from "./stream-helpers.ts";

// This suite stops and restarts its nats-server, so it runs its own instead of the shared one.
let dir: string;
let port: number;
let server: NatsServer;
let link: NatsLink;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "hdrcap-agent-pub-"));
  port = await freePort();
  server = await startNats({ dir, port });
  link = await connectNatsLink({ servers: [server.url], logger: silentLogger() });
});

afterAll(async () => {
  await link?.nc.close();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function restartServer(): Promise<void> {
  server = await startNats({ dir, port });
}

async function waitConnected(timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!link.connected()) {
    if (Date.now() > deadline) throw new Error("client did not reconnect");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** `loseAckEvery`: every n-th batch is stored but its first ack "lost", so the publisher sends it again. */
function publisherFor(tenantId: string, agentId: string, opts: { maxQueuedRecords?: number; loseAckEvery?: number } = {}) {
  const sink = createJetStreamBatchSink(link.nc, {
    subject: NATS_SUBJECTS.records(tenantId, agentId),
    isConnected: () => link.connected(),
    ackTimeoutMs: 2_000,
  });
  let n = 0;
  const lostOnce = new Set<string>();
  const lossy = {
    isReady: sink.isReady,
    async publish(batch: Parameters<typeof sink.publish>[0]) {
      await sink.publish(batch);
      if (opts.loseAckEvery && ++n % opts.loseAckEvery === 0 && !lostOnce.has(batch.batchId)) {
        lostOnce.add(batch.batchId);
        throw new Error("ack lost (simulated)");
      }
    },
  };
  const publisher = new RecordPublisher({ sink: lossy, batchIdPrefix: agentId, maxQueuedRecords: opts.maxQueuedRecords, retryMinMs: 50, retryMaxMs: 500 });
  return Object.assign(publisher, { lostAcks: lostOnce });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("RecordPublisher against JetStream", () => {
  it("delivers every record exactly once across a nats-server restart mid-stream", async () => {
    const tenantId = randomId("ten");
    const agentId = randomId("agt");
    const stream = await createRecordsStream(link.nc, tenantId, agentId);
    const publisher = publisherFor(tenantId, agentId, { loseAckEvery: 7 });
    let produced = 0;
    const produce = async (count: number) => {
      for (let left = count; left > 0; ) {
        const n = Math.min(250, left);
        publisher.add("cap_restart", fakeRecords(produced, n));
        produced += n;
        left -= n;
        await sleep(1);
      }
    };

    await produce(20_000);
    await server.stop(); // mid-stream: batches are in flight
    await produce(15_000); // produced while down: buffered
    expect(publisher.heldRecords).toBeGreaterThan(0);
    await restartServer();
    await produce(15_000);
    await waitConnected();
    expect(await publisher.waitIdle(60_000)).toBe(true);

    expect(publisher.lostAcks.size).toBeGreaterThan(5); // those batches were stored twice, deduplicated
    const counters = publisher.counters("cap_restart");
    expect(counters).toEqual({ added: 50_000, published: 50_000, dropped: 0 });
    const batches = await readBatches(link.nc, stream);
    expect(new Set(batches.map((b) => b.batchId)).size).toBe(batches.length);
    const ids = batches.flatMap((b) => b.records.map((r) => r.connectionId));
    expect(ids.length).toBe(produced);
    expect(new Set(ids).size).toBe(produced);
    expect(batches.every((b) => b.captureId === "cap_restart")).toBe(true);
  });

  it("counts exactly the records that overflow a small queue while NATS is down", async () => {
    const tenantId = randomId("ten");
    const agentId = randomId("agt");
    const stream = await createRecordsStream(link.nc, tenantId, agentId);
    const publisher = publisherFor(tenantId, agentId, { maxQueuedRecords: 1_000 });
    publisher.add("cap_a", fakeRecords(0, 300));
    expect(await publisher.waitIdle(10_000)).toBe(true);

    await server.stop();
    publisher.add("cap_a", fakeRecords(300, 700));
    publisher.add("cap_b", fakeRecords(1000, 600)); // 300 fit, 300 overflow
    publisher.add("cap_a", fakeRecords(1600, 50)); // all overflow
    expect(publisher.counters("cap_a").dropped).toBe(50);
    expect(publisher.counters("cap_b").dropped).toBe(300);
    await restartServer();
    await waitConnected();
    expect(await publisher.waitIdle(30_000)).toBe(true);

    const a = publisher.counters("cap_a");
    const b = publisher.counters("cap_b");
    expect(a).toEqual({ added: 1050, published: 1000, dropped: 50 });
    expect(b).toEqual({ added: 600, published: 300, dropped: 300 });
    const batches = await readBatches(link.nc, stream);
    const perCapture = (id: string) => batches.filter((x) => x.captureId === id).reduce((n, x) => n + x.records.length, 0);
    expect(perCapture("cap_a")).toBe(1000);
    expect(perCapture("cap_b")).toBe(300);
    expect(await streamMessageCount(link.nc, stream)).toBe(batches.length);
  });

  it("spools what exceeds the memory bound while NATS is down, survives a publisher restart, and publishes every record exactly once", async () => {
    const tenantId = randomId("ten");
    const agentId = randomId("agt");
    const stream = await createRecordsStream(link.nc, tenantId, agentId);
    const spoolDir = join(dir, `spool-${agentId}`);
    const spooling = (label: string) => {
      const sink = createJetStreamBatchSink(link.nc, { subject: NATS_SUBJECTS.records(tenantId, agentId), isConnected: () => link.connected(), ackTimeoutMs: 2_000 });
      const drops: string[] = [];
      const publisher = new RecordPublisher({
        sink,
        batchIdPrefix: `${agentId}-${label}`,
        maxQueuedBytes: 256 * 1024,
        spool: { dir: spoolDir, segmentBytes: 512 * 1024 },
        retryMinMs: 50,
        retryMaxMs: 500,
        observer: { recordsDropped: (_id, n, why) => drops.push(`${n} ${why}`) },
      });
      return Object.assign(publisher, { drops });
    };

    const first = spooling("one");
    first.add("cap_spool", fakeRecords(0, 2_000));
    expect(await first.waitIdle(10_000)).toBe(true);
    await server.stop();
    for (let i = 2_000; i < 20_000; i += 500) first.add("cap_spool", fakeRecords(i, 500));
    await sleep(50);
    expect(first.heldBytes).toBeLessThanOrEqual(256 * 1024 + 512 * 1024);
    expect(first.spoolStats.spooledRecords).toBeGreaterThan(10_000);
    // The process stops while NATS is still down: what it holds stays in the spool.
    expect(await first.close(200)).toBe(0);
    expect(first.recordsKeptInSpool).toBe(18_000);

    // A new process on the same spool, with more records of its own, while NATS comes back.
    const second = spooling("two");
    for (let i = 20_000; i < 25_000; i += 500) second.add("cap_spool", fakeRecords(i, 500));
    await restartServer();
    await waitConnected();
    second.kick();
    expect(await second.waitIdle(60_000)).toBe(true);
    expect(second.counters("cap_spool")).toEqual({ added: 5_000, published: 23_000, dropped: 0 });
    expect([...first.drops, ...second.drops]).toEqual([]);
    expect(second.spoolBytes).toBe(0);
    await second.close(1_000);

    const batches = await readBatches(link.nc, stream);
    expect(new Set(batches.map((b) => b.batchId)).size).toBe(batches.length);
    const ids = batches.flatMap((b) => b.records.map((r) => r.connectionId));
    expect(ids.length).toBe(25_000);
    expect(new Set(ids).size).toBe(25_000);
    rmSync(spoolDir, { recursive: true, force: true });
  });

  // Speed belongs to the benchmarks (npm run bench -- ingest); this checks that a burst loses nothing.
  it("publishes a burst of 200,000 records without dropping or duplicating any", async () => {
    const tenantId = randomId("ten");
    const agentId = randomId("agt");
    const stream = await createRecordsStream(link.nc, tenantId, agentId);
    const publisher = publisherFor(tenantId, agentId);
    const total = 200_000;
    const chunk = fakeRecords(0, 1000);
    for (let i = 0; i < total; i += chunk.length) {
      publisher.add("cap_fast", chunk);
      // Within the memory bounds (no spool here: what exceeds them would be dropped).
      if (publisher.heldRecords > 100_000 || publisher.heldBytes > 8 * 1024 * 1024) await publisher.waitIdle(10_000);
    }
    expect(await publisher.waitIdle(60_000)).toBe(true);
    expect(publisher.counters("cap_fast")).toEqual({ added: total, published: total, dropped: 0 });
    const batches = await readBatches(link.nc, stream);
    expect(batches.reduce((n, b) => n + b.records.length, 0)).toBe(total);
    expect(new Set(batches.map((b) => b.batchId)).size).toBe(batches.length);
  });
});
