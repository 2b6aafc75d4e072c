/** Test doubles for the daemon: records, capture specs, and a capture engine driven by the test. */
import type { CaptureSpec } from "@hdrcap/api/captures";
import type { HttpRecord } from "@hdrcap/api/records";
import { pino } from "pino";
import type { CaptureEngineCounters, CaptureFactory, CaptureHandle, CaptureStartOptions } from "../../src/daemon/capture-factory.ts";

export const silentLogger = () => pino({ level: "silent" });

export function fakeRecord(i: number, extraHeaderBytes = 0): HttpRecord {
  return {
    ts: new Date(1_700_000_000_000 + i).toISOString(),
    connectionId: `c-${i}`,
    kind: "request",
    role: "server",
    src: { ip: "10.0.0.1", port: 40000 + (i % 20000) },
    dst: { ip: "10.0.0.2", port: 8080 },
    pid: 1234,
    comm: "node",
    method: "GET",
    path: `/items/${i}`,
    version: "HTTP/1.1",
    status: null,
    reason: null,
    latencyMs: null,
    headers: [
      { name: "Host", value: "example.test" },
      { name: "X-Pad", value: "p".repeat(extraHeaderBytes) },
    ],
    headerBytes: 64 + extraHeaderBytes,
    redacted: [],
  };
}

export const fakeRecords = (from: number, count: number, extraHeaderBytes = 0) =>
  Array.from({ length: count }, (_, k) => fakeRecord(from + k, extraHeaderBytes));

export function captureSpec(captureId: string, overrides: Partial<CaptureSpec> = {}): CaptureSpec {
  return {
    captureId,
    protocol: "http",
    source: { kind: "socket" },
    filter: { role: "any", ports: [8080] },
    headers: { redactMode: "mask", allowSensitive: false },
    limits: { captureBytes: 4096 },
    expiresAt: null,
    hashKey: Buffer.alloc(32, 7).toString("base64"),
    ...overrides,
  };
}

/** One started fake capture: the test emits records and ends it. */
export class FakeCapture implements CaptureHandle {
  stopped = false;
  private delivered = 0;
  constructor(readonly options: CaptureStartOptions) {}
  emit(records: HttpRecord[]): void {
    if (this.stopped) throw new Error("emit after stop");
    this.delivered += records.length;
    this.options.onRecords(records);
  }
  end(reason: "max-records" | "duration" | "error", message?: string): void {
    this.stopped = true;
    this.options.onEnd(reason, message);
  }
  counters(): CaptureEngineCounters {
    return { seen: this.delivered * 2, emitted: this.delivered * 2, lostInKernel: 0, truncated: 0, malformed: 0, records: this.delivered };
  }
  stop(): void {
    this.stopped = true;
  }
}

/** A CaptureFactory that records every start; `failWith` makes starts throw. */
export function fakeCaptureFactory(): { factory: CaptureFactory; started: FakeCapture[]; byId(id: string): FakeCapture | undefined; failWith: string | null } {
  const state = {
    started: [] as FakeCapture[],
    failWith: null as string | null,
    byId(id: string) {
      return [...state.started].reverse().find((c) => c.options.spec.captureId === id);
    },
    factory: ((options) => {
      if (state.failWith) throw new Error(state.failWith);
      const c = new FakeCapture(options);
      state.started.push(c);
      return c;
    }) as CaptureFactory,
  };
  return state;
}
