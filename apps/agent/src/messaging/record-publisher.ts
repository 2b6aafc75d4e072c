/**
 * Streams capture records to JetStream: batches per capture (count, size, and a
 * short flush delay), a bounded in-memory queue that rides out NATS outages, and
 * a pump with a few publishes in flight. Every record added is eventually either
 * acknowledged by the stream (`published`) or counted as `dropped` (queue full, or
 * abandoned at shutdown) — nothing disappears without a count.
 *
 * Batches keep their id across retries and the id is the JetStream Nats-Msg-Id,
 * so a publish whose ack was lost and is sent again is stored once.
 */
import { randomBytes } from "node:crypto";
import type { HttpRecord } from "@hdrcap/api/records";
import { DEFAULT_BATCH_LIMITS, RecordBatchBuilder, type BatchLimits, type SealedBatch } from "./record-batch-builder.ts";

/** Where sealed batches go; resolves when the stream acknowledged the batch. */
export interface BatchSink {
  publish(batch: SealedBatch): Promise<void>;
  /** False while the transport is known to be down: the pump waits instead of sending. */
  isReady(): boolean;
}

export interface RecordPublisherObserver {
  batchPublished?(batch: SealedBatch): void;
  publishFailed?(batch: SealedBatch, err: unknown): void;
  recordsDropped?(captureId: string, count: number, why: "queue-full" | "shutdown"): void;
}

export interface RecordPublisherOptions {
  sink: BatchSink;
  /** Prefix of every batch id (the agent id): ids are `<prefix>.<captureId>.<run nonce>.<seq>`. */
  batchIdPrefix: string;
  limits?: BatchLimits;
  /** A partly filled batch is sealed at most this long after its first record. Default 20 ms. */
  flushDelayMs?: number;
  /** Records held in memory (filling, queued, in flight) at most; more are dropped and counted. Default 200,000. */
  maxQueuedRecords?: number;
  /** Publishes awaiting their ack at most. Default 8. */
  maxInFlight?: number;
  /** Retry backoff after a failed publish: doubles from min to max. Defaults 100 ms, 5 s. */
  retryMinMs?: number;
  retryMaxMs?: number;
  observer?: RecordPublisherObserver;
}

export interface CapturePublishCounters {
  /** Records handed to add(). */
  added: number;
  /** Records acknowledged by the stream. */
  published: number;
  /** Records dropped: queue full, or still unpublished when the publisher was closed. */
  dropped: number;
}

interface QueuedBatch {
  batch: SealedBatch;
  /** Seal order, so retried batches keep their place relative to later ones. */
  order: number;
}

interface CaptureState {
  builder: RecordBatchBuilder;
  counters: CapturePublishCounters;
  flushTimer: NodeJS.Timeout | null;
}

export class RecordPublisher {
  private readonly sink: BatchSink;
  private readonly limits: BatchLimits;
  private readonly flushDelayMs: number;
  private readonly maxQueuedRecords: number;
  private readonly maxInFlight: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private readonly observer: RecordPublisherObserver;
  private readonly batchIdPrefix: string;
  private readonly runNonce = randomBytes(6).toString("hex");

  private readonly captures = new Map<string, CaptureState>();
  /** Sealed batches waiting to be sent, in seal order (a failed batch goes back to its place). */
  private readonly queue: QueuedBatch[] = [];
  private readonly inFlightBatches = new Set<QueuedBatch>();
  private queuedRecords = 0;
  private seq = 0;
  private order = 0;
  private backoffMs = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  constructor(options: RecordPublisherOptions) {
    this.sink = options.sink;
    this.limits = options.limits ?? DEFAULT_BATCH_LIMITS;
    this.flushDelayMs = options.flushDelayMs ?? 20;
    this.maxQueuedRecords = options.maxQueuedRecords ?? 200_000;
    this.maxInFlight = options.maxInFlight ?? 8;
    this.retryMinMs = options.retryMinMs ?? 100;
    this.retryMaxMs = options.retryMaxMs ?? 5_000;
    this.observer = options.observer ?? {};
    this.batchIdPrefix = options.batchIdPrefix;
  }

  /** Records held in memory right now (filling, queued and in flight). */
  get heldRecords(): number {
    return this.queuedRecords;
  }

  /** Sealed batches not yet acknowledged (queued and in flight). */
  get pendingBatches(): number {
    return this.queue.length + this.inFlightBatches.size;
  }

  /** Per-capture counters (zeros for a capture never seen). */
  counters(captureId: string): CapturePublishCounters {
    const c = this.captures.get(captureId)?.counters;
    return c ? { ...c } : { added: 0, published: 0, dropped: 0 };
  }

  /** Takes records of one capture; what does not fit the queue bound is dropped and counted. */
  add(captureId: string, records: readonly HttpRecord[]): void {
    if (records.length === 0) return;
    const state = this.capture(captureId);
    state.counters.added += records.length;
    let accepted = records;
    const room = this.closed ? 0 : Math.max(0, this.maxQueuedRecords - this.queuedRecords);
    if (records.length > room) {
      accepted = records.slice(0, room);
      this.drop(state, captureId, records.length - room, this.closed ? "shutdown" : "queue-full");
    }
    if (accepted.length === 0) return;
    this.queuedRecords += accepted.length;
    this.enqueue(state.builder.add(accepted));
    if (state.builder.pending > 0 && !state.flushTimer) {
      state.flushTimer = setTimeout(() => {
        state.flushTimer = null;
        this.sealPending(state);
      }, this.flushDelayMs);
    }
  }

  /** Seals the partly filled batch of a capture now (e.g. when the capture stopped). */
  flushCapture(captureId: string): void {
    const state = this.captures.get(captureId);
    if (state) this.sealPending(state);
  }

  /** Forgets a capture's counters once nothing of it is held any more. */
  forgetCapture(captureId: string): void {
    const state = this.captures.get(captureId);
    if (!state || state.builder.pending > 0) return;
    if (this.queue.some((q) => q.batch.captureId === captureId)) return;
    for (const q of this.inFlightBatches) if (q.batch.captureId === captureId) return;
    this.captures.delete(captureId);
  }

  /** Wakes the pump (e.g. when the transport came back) instead of waiting for the retry timer. */
  kick(): void {
    if (this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    this.pump();
  }

  /**
   * Seals everything and waits until all batches are acknowledged or `timeoutMs`
   * passed; what is still unacknowledged then is counted as dropped. Returns the
   * number of records dropped this way. No records are accepted afterwards.
   */
  async close(timeoutMs: number): Promise<number> {
    this.closed = true;
    for (const state of this.captures.values()) this.sealPending(state);
    this.kick();
    const idle = await this.waitIdle(timeoutMs);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (idle) return 0;
    // In-flight publishes may still be acknowledged later, but the process is exiting:
    // count every record not acknowledged by now so the totals stay exact.
    let abandoned = 0;
    const left = new Map<string, number>();
    for (const { batch: b } of [...this.queue.splice(0), ...this.inFlightBatches])
      left.set(b.captureId, (left.get(b.captureId) ?? 0) + b.count);
    this.inFlightBatches.clear();
    this.queuedRecords = 0;
    for (const [captureId, n] of left) {
      abandoned += n;
      this.drop(this.capture(captureId), captureId, n, "shutdown");
    }
    return abandoned;
  }

  /** Resolves true when nothing is held any more, false on timeout. */
  waitIdle(timeoutMs: number): Promise<boolean> {
    if (this.isIdle()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.idleWaiters = this.idleWaiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.idleWaiters.push(done);
    });
  }

  private isIdle(): boolean {
    return this.queuedRecords === 0;
  }

  private capture(captureId: string): CaptureState {
    let state = this.captures.get(captureId);
    if (!state) {
      state = {
        builder: new RecordBatchBuilder(captureId, () => `${this.batchIdPrefix}.${captureId}.${this.runNonce}.${++this.seq}`, this.limits),
        counters: { added: 0, published: 0, dropped: 0 },
        flushTimer: null,
      };
      this.captures.set(captureId, state);
    }
    return state;
  }

  private drop(state: CaptureState, captureId: string, count: number, why: "queue-full" | "shutdown"): void {
    state.counters.dropped += count;
    this.observer.recordsDropped?.(captureId, count, why);
  }

  private sealPending(state: CaptureState): void {
    if (state.flushTimer) {
      clearTimeout(state.flushTimer);
      state.flushTimer = null;
    }
    const batch = state.builder.flush();
    if (batch) this.enqueue([batch]);
  }

  private enqueue(batches: SealedBatch[]): void {
    if (batches.length === 0) return;
    for (const batch of batches) this.queue.push({ batch, order: this.order++ });
    this.pump();
  }

  private pump(): void {
    if (this.retryTimer) return; // backing off: the timer pumps
    while (this.inFlightBatches.size < this.maxInFlight && this.queue.length > 0) {
      if (!this.sink.isReady()) {
        this.scheduleRetry(Math.max(this.retryMinMs, 250));
        return;
      }
      this.send(this.queue.shift()!);
    }
  }

  private send(queued: QueuedBatch): void {
    this.inFlightBatches.add(queued);
    let sent: Promise<void>;
    try {
      sent = this.sink.publish(queued.batch);
    } catch (err) {
      sent = Promise.reject(err);
    }
    sent.then(
      () => this.settle(queued, null),
      (err: unknown) => this.settle(queued, err ?? new Error("publish failed")),
    );
  }

  private settle(queued: QueuedBatch, err: unknown): void {
    if (!this.inFlightBatches.delete(queued)) return; // abandoned by close()
    const batch = queued.batch;
    if (err === null) {
      this.backoffMs = 0;
      this.queuedRecords -= batch.count;
      const state = this.captures.get(batch.captureId);
      if (state) state.counters.published += batch.count;
      this.observer.batchPublished?.(batch);
      if (this.isIdle()) for (const w of this.idleWaiters.splice(0)) w();
      this.pump();
      return;
    }
    this.observer.publishFailed?.(batch, err);
    // Back in its place: retried before anything sealed later, with the same id.
    let at = 0;
    while (at < this.queue.length && this.queue[at]!.order < queued.order) at++;
    this.queue.splice(at, 0, queued);
    this.backoffMs = this.backoffMs === 0 ? this.retryMinMs : Math.min(this.retryMaxMs, this.backoffMs * 2);
    this.scheduleRetry(this.backoffMs);
  }

  private scheduleRetry(ms: number): void {
    if (this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.pump();
    }, ms);
  }
}
