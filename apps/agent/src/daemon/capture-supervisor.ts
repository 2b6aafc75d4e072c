/**
 * Runs the captures this agent should run: converges on each desired state
 * (start missing, stop extras), enforces each capture's budgets (max records,
 * end time) itself, remembers finished captures so they are not restarted, and
 * produces one AgentCaptureReport per known capture for heartbeats.
 */
import type { AgentCaptureStatus, CaptureSpec } from "@hdrcap/api/captures";
import type { AgentCaptureReport } from "@hdrcap/api/nats";
import type { HttpRecord } from "@hdrcap/api/records";
import type { Logger } from "pino";
import type { RecordPublisher } from "../messaging/record-publisher.ts";
import type { CaptureEndReason, CaptureEngineCounters, CaptureFactory, CaptureHandle } from "./capture-factory.ts";
import { planReconcile, secondsUntil } from "./reconcile-plan.ts";

export const END_MESSAGES: Record<CaptureEndReason | "removed", string> = {
  "max-records": "max-records reached",
  duration: "duration elapsed",
  error: "capture stopped by an error",
  removed: "stopped: no longer in the desired state",
};

export interface CaptureSupervisorOptions {
  factory: CaptureFactory;
  publisher: RecordPublisher;
  logger: Logger;
  /** A finished capture stays in reports at least this long after it ended. Default 60 s. */
  reportRetentionMs?: number;
  /** Called when statuses changed (e.g. to send a heartbeat now); awaited before attaching. */
  onStatusChange?: () => void | Promise<void>;
  /** Records accepted from a capture engine, for metrics. */
  onRecordsProduced?: (captureId: string, count: number) => void;
  now?: () => number;
}

interface CaptureEntry {
  spec: CaptureSpec;
  status: AgentCaptureStatus;
  message: string | null;
  handle: CaptureHandle | null;
  /** Records accepted from the engine (handed to the publisher). */
  records: number;
  /** The engine's counters when it stopped. */
  finalCounters: CaptureEngineCounters | null;
  endedAt: number | null;
  expiryTimer: NodeJS.Timeout | null;
}

const ZERO_ENGINE: CaptureEngineCounters = { seen: 0, emitted: 0, lostInKernel: 0, truncated: 0, malformed: 0, records: 0 };

export class CaptureSupervisor {
  private readonly entries = new Map<string, CaptureEntry>();
  /** Ids of captures that ended here, with the time they ended: never started again. */
  private readonly finished = new Map<string, number>();
  private lastDesired = new Set<string>();
  private queue: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly now: () => number;
  private readonly retentionMs: number;

  constructor(private readonly options: CaptureSupervisorOptions) {
    this.now = options.now ?? Date.now;
    this.retentionMs = options.reportRetentionMs ?? 60_000;
  }

  get runningCount(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.handle) n++;
    return n;
  }

  /** Converges on `desired`. Calls are serialized; each waits for the previous one. */
  reconcile(desired: readonly CaptureSpec[]): Promise<void> {
    const run = this.queue.then(() => this.apply(desired));
    this.queue = run.catch(() => {});
    return run;
  }

  /** Stops every running capture (their final records reach the publisher). */
  stopAll(): Promise<void> {
    this.closed = true;
    const run = this.queue.then(async () => {
      for (const entry of this.entries.values()) {
        if (entry.handle) {
          this.finish(entry, "detached", "agent shutting down");
          await yieldToEventLoop();
        }
      }
    });
    this.queue = run.catch(() => {});
    return run;
  }

  /** One report per capture that runs, or ended and is still desired or recently ended. */
  reports(): AgentCaptureReport[] {
    this.prune();
    const out: AgentCaptureReport[] = [];
    for (const [captureId, e] of this.entries) {
      const engine = e.handle ? safeCounters(e.handle, this.options.logger) : (e.finalCounters ?? ZERO_ENGINE);
      const pub = this.options.publisher.counters(captureId);
      out.push({
        captureId,
        status: e.status,
        message: e.message,
        counters: { ...engine, records: e.records, droppedInAgent: pub.dropped, published: pub.published },
      });
    }
    return out;
  }

  private async apply(desired: readonly CaptureSpec[]): Promise<void> {
    if (this.closed) return;
    this.lastDesired = new Set(desired.map((s) => s.captureId));
    const running = [...this.entries].filter(([, e]) => e.handle).map(([id]) => id);
    const plan = planReconcile(desired, running, new Set(this.finished.keys()), this.now());

    for (const id of plan.stop) {
      const entry = this.entries.get(id);
      if (!entry) continue;
      this.finish(entry, "detached", END_MESSAGES.removed);
      await yieldToEventLoop(); // stopping detaches programs synchronously (~2 s)
    }
    for (const spec of plan.expired) {
      const entry = this.newEntry(spec);
      this.finish(entry, "detached", END_MESSAGES.duration);
    }
    if (plan.start.length > 0) {
      for (const spec of plan.start) this.newEntry(spec);
      await this.statusChanged(); // let the control plane see "attaching" before the work
      for (const spec of plan.start) {
        const entry = this.entries.get(spec.captureId);
        if (!entry || entry.status !== "attaching" || this.closed) continue;
        this.startOne(entry);
        await yieldToEventLoop();
      }
    }
    if (plan.stop.length > 0 || plan.start.length > 0 || plan.expired.length > 0) await this.statusChanged();
  }

  private newEntry(spec: CaptureSpec): CaptureEntry {
    const entry: CaptureEntry = {
      spec,
      status: "attaching",
      message: null,
      handle: null,
      records: 0,
      finalCounters: null,
      endedAt: null,
      expiryTimer: null,
    };
    this.entries.set(spec.captureId, entry);
    return entry;
  }

  private startOne(entry: CaptureEntry): void {
    const { spec } = entry;
    const id = spec.captureId;
    const maxRecords = spec.limits.maxRecords;
    const durationSeconds = secondsUntil(spec.expiresAt, this.now());
    try {
      entry.handle = this.options.factory({
        spec,
        maxRecords,
        durationSeconds,
        onRecords: (records) => this.onRecords(entry, records),
        onEnd: (reason, message) => {
          if (entry.handle) this.finish(entry, reason === "error" ? "error" : "detached", message ?? END_MESSAGES[reason]);
        },
      });
    } catch (err) {
      entry.status = "error";
      entry.message = truncateMessage(err instanceof Error ? err.message : String(err));
      entry.endedAt = this.now();
      this.finished.set(id, entry.endedAt);
      this.options.logger.error({ captureId: id, err: entry.message }, "capture failed to start");
      return;
    }
    if (entry.status !== "attaching") return; // ended during start (e.g. zero budget)
    entry.status = "running";
    this.options.logger.info({ captureId: id, maxRecords, durationSeconds }, "capture running");
    // A backstop to the engine's own timer, so an end time is honoured by any engine.
    if (durationSeconds !== undefined) {
      entry.expiryTimer = setTimeout(() => {
        if (entry.handle) this.finish(entry, "detached", END_MESSAGES.duration);
        void this.statusChanged();
      }, durationSeconds * 1000 + 250);
      entry.expiryTimer.unref();
    }
  }

  private onRecords(entry: CaptureEntry, records: HttpRecord[]): void {
    const max = entry.spec.limits.maxRecords;
    let accepted = records;
    if (max !== undefined && entry.records + records.length > max) accepted = records.slice(0, Math.max(0, max - entry.records));
    if (accepted.length > 0) {
      entry.records += accepted.length;
      this.options.publisher.add(entry.spec.captureId, accepted);
      this.options.onRecordsProduced?.(entry.spec.captureId, accepted.length);
    }
    if (max !== undefined && entry.records >= max && entry.handle && entry.status === "running") {
      // Stop outside the engine's callback: stopping drains it synchronously.
      setImmediate(() => {
        if (!entry.handle) return;
        this.finish(entry, "detached", END_MESSAGES["max-records"]);
        void this.statusChanged();
      });
    }
  }

  /** Stops the engine (if running), records the end, keeps the report. */
  private finish(entry: CaptureEntry, status: AgentCaptureStatus, message: string): void {
    const id = entry.spec.captureId;
    if (entry.expiryTimer) clearTimeout(entry.expiryTimer);
    entry.expiryTimer = null;
    const handle = entry.handle;
    if (handle) {
      try {
        handle.stop(); // final drain: its last records arrive through onRecords
      } catch (err) {
        this.options.logger.error({ captureId: id, err: (err as Error).message }, "stopping capture failed");
      }
      entry.finalCounters = safeCounters(handle, this.options.logger);
      entry.handle = null;
    }
    this.options.publisher.flushCapture(id);
    const wasEnded = entry.endedAt !== null;
    entry.status = status;
    entry.message = message;
    entry.endedAt = this.now();
    this.finished.set(id, entry.endedAt);
    if (!wasEnded) this.options.logger.info({ captureId: id, status, message, records: entry.records }, "capture ended");
    if (handle && !this.closed) void this.statusChanged();
  }

  private async statusChanged(): Promise<void> {
    try {
      await this.options.onStatusChange?.();
    } catch (err) {
      this.options.logger.warn({ err: (err as Error).message }, "status report failed");
    }
  }

  /** Drops reports of captures that ended long enough ago and are no longer desired. */
  private prune(): void {
    const now = this.now();
    for (const [id, e] of this.entries) {
      if (e.handle || e.endedAt === null) continue;
      if (!this.lastDesired.has(id) && now - e.endedAt > this.retentionMs) {
        this.entries.delete(id);
        this.options.publisher.forgetCapture(id);
      }
    }
    // Finished ids are remembered much longer, so a stale desired state cannot restart them.
    for (const [id, endedAt] of this.finished)
      if (!this.lastDesired.has(id) && now - endedAt > 24 * 3_600_000) this.finished.delete(id);
  }
}

function safeCounters(handle: CaptureHandle, logger: Logger): CaptureEngineCounters {
  try {
    return handle.counters();
  } catch (err) {
    logger.warn({ err: (err as Error).message }, "reading capture counters failed");
    return ZERO_ENGINE;
  }
}

function truncateMessage(s: string): string {
  return s.length > 2000 ? `${s.slice(0, 1997)}...` : s;
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));
