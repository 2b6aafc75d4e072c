import { describe, expect, it } from "vitest";
import { CaptureSupervisor } from "../../src/daemon/capture-supervisor.ts";
import { RecordPublisher, type BatchSink } from "../../src/messaging/record-publisher.ts";
import { captureSpec, fakeCaptureFactory, fakeRecords, silentLogger } from "./fakes.ts";

function setup(opts: { now?: () => number; retentionMs?: number } = {}) {
  const fake = fakeCaptureFactory();
  const sink: BatchSink = { isReady: () => true, publish: () => Promise.resolve() };
  const publisher = new RecordPublisher({ sink, batchIdPrefix: "agt_t", flushDelayMs: 1 });
  const statusSnapshots: string[][] = [];
  const supervisor = new CaptureSupervisor({
    factory: fake.factory,
    publisher,
    logger: silentLogger(),
    reportRetentionMs: opts.retentionMs,
    now: opts.now,
    onStatusChange: () => {
      statusSnapshots.push(supervisor.reports().map((r) => `${r.captureId}:${r.status}`));
    },
  });
  return { fake, publisher, supervisor, statusSnapshots };
}

const statusOf = (s: CaptureSupervisor, id: string) => s.reports().find((r) => r.captureId === id);
const tick = () => new Promise((r) => setTimeout(r, 10));

describe("CaptureSupervisor", () => {
  it("reports attaching before starting, then running", async () => {
    const { supervisor, statusSnapshots, fake } = setup();
    await supervisor.reconcile([captureSpec("a")]);
    expect(statusSnapshots[0]).toEqual(["a:attaching"]);
    expect(statusSnapshots.at(-1)).toEqual(["a:running"]);
    expect(fake.started).toHaveLength(1);
    expect(supervisor.runningCount).toBe(1);
  });

  it("reports error with the exception message when a capture cannot start, and does not retry it", async () => {
    const { supervisor, fake } = setup();
    fake.failWith = "kernel capture cannot start: missing capabilities CAP_BPF";
    await supervisor.reconcile([captureSpec("a")]);
    expect(statusOf(supervisor, "a")).toMatchObject({ status: "error", message: fake.failWith });
    fake.failWith = null;
    await supervisor.reconcile([captureSpec("a")]);
    expect(fake.started).toHaveLength(0);
  });

  it("stops captures removed from the desired state and reports them detached", async () => {
    const { supervisor, fake } = setup();
    await supervisor.reconcile([captureSpec("a"), captureSpec("b")]);
    await supervisor.reconcile([captureSpec("b")]);
    expect(fake.byId("a")!.stopped).toBe(true);
    expect(fake.byId("b")!.stopped).toBe(false);
    expect(statusOf(supervisor, "a")).toMatchObject({ status: "detached" });
    expect(supervisor.runningCount).toBe(1);
  });

  it("stops a capture at max records, reports why, and never restarts it while still desired", async () => {
    const { supervisor, fake, publisher } = setup();
    const spec = captureSpec("a", { limits: { captureBytes: 4096, maxRecords: 10 } });
    await supervisor.reconcile([spec]);
    fake.byId("a")!.emit(fakeRecords(0, 25)); // an engine that over-delivers is still capped
    await tick();
    const report = statusOf(supervisor, "a")!;
    expect(report).toMatchObject({ status: "detached", message: "max-records reached" });
    expect(report.counters.records).toBe(10);
    expect(publisher.counters("a").added).toBe(10);
    expect(fake.byId("a")!.stopped).toBe(true);
    await supervisor.reconcile([spec]);
    expect(fake.started).toHaveLength(1);
  });

  it("reports duration elapsed when the engine ends the capture at its end time", async () => {
    const { supervisor, fake } = setup();
    const spec = captureSpec("a", { expiresAt: new Date(Date.now() + 60_000).toISOString() });
    await supervisor.reconcile([spec]);
    expect(fake.byId("a")!.options.durationSeconds).toBeGreaterThan(59);
    fake.byId("a")!.end("duration");
    expect(statusOf(supervisor, "a")).toMatchObject({ status: "detached", message: "duration elapsed" });
    await supervisor.reconcile([spec]);
    expect(fake.started).toHaveLength(1);
  });

  it("ends a capture at its end time even when the engine does not", async () => {
    const { supervisor, fake } = setup();
    await supervisor.reconcile([captureSpec("a", { expiresAt: new Date(Date.now() + 100).toISOString() })]);
    await new Promise((r) => setTimeout(r, 500));
    expect(fake.byId("a")!.stopped).toBe(true);
    expect(statusOf(supervisor, "a")).toMatchObject({ status: "detached", message: "duration elapsed" });
  });

  it("does not start a capture already past its end time", async () => {
    const { supervisor, fake } = setup();
    await supervisor.reconcile([captureSpec("a", { expiresAt: new Date(Date.now() - 1000).toISOString() })]);
    expect(fake.started).toHaveLength(0);
    expect(statusOf(supervisor, "a")).toMatchObject({ status: "detached", message: "duration elapsed" });
  });

  it("merges engine counters with the publisher's into the completeness report", async () => {
    const { supervisor, fake, publisher } = setup();
    await supervisor.reconcile([captureSpec("a")]);
    fake.byId("a")!.emit(fakeRecords(0, 7));
    expect(await publisher.waitIdle(1000)).toBe(true);
    expect(statusOf(supervisor, "a")!.counters).toEqual({
      seen: 14,
      emitted: 14,
      lostInKernel: 0,
      truncated: 0,
      malformed: 0,
      records: 7,
      droppedInAgent: 0,
      published: 7,
    });
  });

  it("keeps a finished capture in reports while desired or recently ended, then forgets it", async () => {
    let now = Date.now();
    const { supervisor } = setup({ now: () => now, retentionMs: 60_000 });
    await supervisor.reconcile([captureSpec("a")]);
    await supervisor.reconcile([]);
    expect(statusOf(supervisor, "a")?.status).toBe("detached");
    now += 61_000;
    expect(statusOf(supervisor, "a")).toBeUndefined();
  });

  it("stopAll stops every running capture and delivers their last records", async () => {
    const { supervisor, fake, publisher } = setup();
    await supervisor.reconcile([captureSpec("a"), captureSpec("b")]);
    fake.byId("a")!.emit(fakeRecords(0, 3));
    await supervisor.stopAll();
    expect(fake.started.every((c) => c.stopped)).toBe(true);
    expect(supervisor.runningCount).toBe(0);
    expect(publisher.counters("a").added).toBe(3);
    await supervisor.reconcile([captureSpec("c")]);
    expect(fake.started).toHaveLength(2);
  });
});
