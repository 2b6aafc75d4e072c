/**
 * Streams capture records to JetStream: batches per capture (count, size, and a
 * short flush delay) encoded into reused slabs (batch-buffer-pool.ts), an in-memory
 * queue bounded by the bytes those batches hold and by records, an optional disk
 * spool (batch-spool.ts) for what does not fit it, and a pump with a few publishes
 * in flight sending in seal order from memory and spool. Every record
 * added is eventually either acknowledged by the stream (`published`), counted as
 * `dropped` (queue or spool full, or abandoned at shutdown), or — with a spool —
 * kept on disk at shutdown for the next run to replay: nothing disappears without a count.
 *
 * Batches keep their id across retries and the id is the JetStream Nats-Msg-Id,
 * so a publish whose ack was lost and is sent again is stored once.
 */
import { randomBytes } from "node:crypto";
import type { HttpRecord } from "@hdrcap/api/records";
import { BatchBufferPool } from "./batch-buffer-pool.ts";
import { BatchSpool, type BatchSpoolOptions, type SpoolSegment } from "./batch-spool.ts";
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
  recordsDropped?(captureId: string, count: number, why: DropReason): void;
  /** A sealed batch did not fit in memory and was written to the spool. */
  batchSpooled?(batch: SealedBatch): void;
  /** A batch left in the spool by an earlier run was read back (it is published like any other). */
  batchReplayed?(batch: SealedBatch): void;
  /** A spool segment ended in a torn or corrupt frame (e.g. a crash mid-write): skipped, with what followed it. */
  spoolCorrupt?(frames: number, bytes: number): void;
}

/**
 * queue-full: no spool and over the memory bounds; spool-full: over the memory bounds and the spool's;
 * spool-error: the spool's file system refused the write; shutdown: unpublished at close.
 */
export type DropReason = "queue-full" | "spool-full" | "spool-error" | "shutdown";

export interface RecordPublisherOptions {
  sink: BatchSink;
  /** Prefix of every batch id (the agent id): ids are `<prefix>.<captureId>.<run nonce>.<seq>`. */
  batchIdPrefix: string;
  limits?: BatchLimits;
  /** A partly filled batch is sealed at most this long after its first record. Default 20 ms. */
  flushDelayMs?: number;
  /**
   * Records of sealed batches held in memory (queued, in flight) at most; without a spool also
   * the bound of records accepted (filling included), beyond which add() drops and counts. Default 200,000.
   */
  maxQueuedRecords?: number;
  /**
   * Bytes held by sealed batches in memory (queued, in flight) at most: a batch in a pooled slab
   * counts the whole slab (limits.maxBytes), one copied out its payload. Default 16 MiB.
   */
  maxQueuedBytes?: number;
  /** Sealed batches beyond the memory bounds go to this disk spool (and what it holds from an earlier run is replayed). */
  spool?: Omit<BatchSpoolOptions, "pool">;
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
  /** Memory it holds (its slab, or its payload), counted against maxQueuedBytes. */
  bytes: number;
  /** Seal order, so retried batches keep their place relative to later ones. */
  order: number;
  /** Set when read back from the spool: acknowledged there too. */
  segment?: SpoolSegment;
}

export interface SpoolCounters {
  /** Batches, records and bytes written to the spool by this process. */
  spooledBatches: number;
  spooledRecords: number;
  spooledBytes: number;
  /** Batches left by an earlier run and read back. */
  replayedBatches: number;
  replayedRecords: number;
  /** Torn or corrupt frames skipped. */
  corruptFrames: number;
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
  private readonly maxQueuedBytes: number;
  private readonly spool: BatchSpool | null;
  private readonly pool: BatchBufferPool;
  private readonly spoolCounters: SpoolCounters = { spooledBatches: 0, spooledRecords: 0, spooledBytes: 0, replayedBatches: 0, replayedRecords: 0, corruptFrames: 0 };
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
  /** Records accepted (or replayed) and neither acknowledged nor dropped: in builders, memory or the spool. */
  private queuedRecords = 0;
  /** Sealed batches in memory (queued and in flight): the memory bound. */
  private memoryBytes = 0;
  private memoryRecords = 0;
  /** Records still held (in memory or the spool) when close() returned. */
  private keptAtClose = 0;
  private seq = 0;
  private order = 0;
  private backoffMs = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private trimTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** close() returned: nothing is sent or read from the spool any more. */
  private finished = false;
  private idleWaiters: (() => void)[] = [];

  constructor(options: RecordPublisherOptions) {
    this.sink = options.sink;
    this.limits = options.limits ?? DEFAULT_BATCH_LIMITS;
    this.flushDelayMs = options.flushDelayMs ?? 20;
    this.maxQueuedRecords = options.maxQueuedRecords ?? 200_000;
    this.maxQueuedBytes = options.maxQueuedBytes ?? 16 * 1024 * 1024;
    // Enough slabs are kept for a full memory queue, so under load every batch reuses one.
    this.pool = new BatchBufferPool(this.limits.maxBytes, Math.ceil(this.maxQueuedBytes / this.limits.maxBytes) + 4);
    this.spool = options.spool ? new BatchSpool({ ...options.spool, pool: this.pool }) : null;
    this.maxInFlight = options.maxInFlight ?? 8;
    this.retryMinMs = options.retryMinMs ?? 100;
    this.retryMaxMs = options.retryMaxMs ?? 5_000;
    this.observer = options.observer ?? {};
    this.batchIdPrefix = options.batchIdPrefix;
  }

  /** Records held right now (filling, queued, in flight, and spooled by this process). */
  get heldRecords(): number {
    return this.queuedRecords;
  }

  /** Bytes held by the sealed batches in memory (queued and in flight): their slabs or payloads. */
  get heldBytes(): number {
    return this.memoryBytes;
  }

  /** Bytes of spool segments on disk (0 without a spool). */
  get spoolBytes(): number {
    return this.spool?.bytes ?? 0;
  }

  /** The slabs batches are encoded into (reuse keeps allocatedCount flat). */
  get bufferPool(): BatchBufferPool {
    return this.pool;
  }

  /** What went through the spool so far. */
  get spoolStats(): SpoolCounters {
    return { ...this.spoolCounters };
  }

  /** Records not published and not dropped when close() returned: kept in the spool for the next run. */
  get recordsKeptInSpool(): number {
    return this.keptAtClose;
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
    // With a spool the bounds apply to sealed batches (enqueue); without one, to the records held.
    const room = this.closed ? 0 : this.spool ? Infinity : Math.max(0, this.maxQueuedRecords - this.queuedRecords);
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
    // Spooled batches of the capture may still be published: keep counting them.
    if (this.spool && this.spool.segmentCount > 0) return;
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
   * passed; what is still unacknowledged then is written to the spool (before the
   * spool's unread batches, so the next run sends it first) or, without a spool or
   * room in it, counted as dropped. Returns the number of records dropped this way
   * (see recordsKeptInSpool for the rest). No records are accepted afterwards.
   */
  async close(timeoutMs: number): Promise<number> {
    this.closed = true;
    for (const state of this.captures.values()) this.sealPending(state);
    this.kick();
    const idle = await this.waitIdle(timeoutMs);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.trimTimer) clearTimeout(this.trimTimer);
    this.trimTimer = null;
    this.finished = true;
    if (idle) {
      this.spool?.close();
      return 0;
    }
    // In-flight publishes may still be acknowledged later, but the process is exiting:
    // every batch not acknowledged by now is kept in the spool or counted as dropped.
    // Their slabs are not given back: the NATS client may still hold a reference to one.
    const held = [...this.queue.splice(0), ...this.inFlightBatches].sort((a, b) => a.order - b.order);
    this.inFlightBatches.clear();
    this.memoryBytes = 0;
    this.memoryRecords = 0;
    let kept = 0;
    try {
      kept = this.spool ? this.spool.keepInFront(held.map((q) => q.batch)) : 0;
    } catch {
      kept = 0; // the spool's file system refused: counted as dropped below
    }
    this.spool?.close();
    let abandoned = 0;
    const left = new Map<string, number>();
    for (const { batch: b } of held.slice(kept)) left.set(b.captureId, (left.get(b.captureId) ?? 0) + b.count);
    for (const n of left.values()) this.queuedRecords -= n;
    this.keptAtClose = this.queuedRecords;
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
    return this.queuedRecords === 0 && !this.spool?.hasUnread;
  }

  private capture(captureId: string): CaptureState {
    let state = this.captures.get(captureId);
    if (!state) {
      state = {
        builder: new RecordBatchBuilder(captureId, () => `${this.batchIdPrefix}.${captureId}.${this.runNonce}.${++this.seq}`, this.limits, undefined, this.pool),
        counters: { added: 0, published: 0, dropped: 0 },
        flushTimer: null,
      };
      this.captures.set(captureId, state);
    }
    return state;
  }

  private drop(state: CaptureState, captureId: string, count: number, why: DropReason): void {
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
    for (const batch of batches) {
      const order = this.order++;
      const bytes = heldBytes(batch);
      if (this.fitsInMemory(bytes, batch.count)) {
        this.queue.push({ batch, bytes, order });
        this.memoryBytes += bytes;
        this.memoryRecords += batch.count;
        continue;
      }
      const spooled = this.spool ? this.spool.append(batch) : "full";
      if (spooled === "spooled") {
        this.spoolCounters.spooledBatches++;
        this.spoolCounters.spooledRecords += batch.count;
        this.spoolCounters.spooledBytes += batch.payload.length;
        this.observer.batchSpooled?.(batch);
      } else {
        this.queuedRecords -= batch.count;
        const why = !this.spool ? "queue-full" : spooled === "full" ? "spool-full" : "spool-error";
        this.drop(this.capture(batch.captureId), batch.captureId, batch.count, why);
      }
      // Written synchronously (or dropped): its slab takes the next batch.
      this.releaseSlab(batch);
    }
    this.pump();
  }

  /** Memory takes a batch while within both bounds and nothing older waits in the spool (seal order). */
  private fitsInMemory(bytes: number, count: number): boolean {
    if (this.spool?.hasUnread) return false;
    if (this.memoryBytes === 0) return true; // a single batch larger than the bound still goes
    if (this.memoryBytes + bytes > this.maxQueuedBytes) return false;
    return !this.spool || this.memoryRecords + count <= this.maxQueuedRecords;
  }

  /** Gives a batch's slab back to the pool, once: the batch must not be sent or read afterwards. */
  private releaseSlab(batch: SealedBatch): void {
    if (!batch.slab) return;
    const slab = batch.slab;
    batch.slab = undefined;
    this.pool.release(slab);
  }

  /** Idle for a while: the free slabs go, so an idle agent does not keep a full queue's worth. */
  private scheduleTrim(): void {
    if (this.trimTimer || this.finished) return;
    this.trimTimer = setTimeout(() => {
      this.trimTimer = null;
      if (this.isIdle()) this.pool.trim();
    }, 10_000);
    this.trimTimer.unref();
  }

  private pump(): void {
    if (this.retryTimer || this.finished) return; // backing off: the timer pumps
    while (this.inFlightBatches.size < this.maxInFlight && (this.queue.length > 0 || this.spool?.hasUnread)) {
      if (!this.sink.isReady()) {
        this.scheduleRetry(Math.max(this.retryMinMs, 250));
        return;
      }
      if (this.queue.length === 0 && !this.readSpool()) continue;
      this.send(this.queue.shift()!);
    }
    if (this.isIdle()) for (const w of this.idleWaiters.splice(0)) w();
  }

  /**
   * Moves the next batch of the oldest spool segment into the queue (everything in memory
   * is older than it, everything sealed later is newer): at most maxInFlight read-back
   * batches are in memory at a time. False when the segment ended instead (torn frame or end).
   */
  private readSpool(): boolean {
    const read = this.spool!.readNext();
    if (!read) return false;
    if (read.corruptFrames > 0) {
      this.spoolCounters.corruptFrames += read.corruptFrames;
      this.observer.spoolCorrupt?.(read.corruptFrames, read.corruptBytes);
    }
    for (const batch of read.batches) {
      const bytes = heldBytes(batch);
      this.queue.push({ batch, bytes, order: this.order++, segment: read.segment });
      this.memoryBytes += bytes;
      this.memoryRecords += batch.count;
      if (read.segment.replayed) {
        this.capture(batch.captureId); // its counters count the replayed records as published
        this.queuedRecords += batch.count;
        this.spoolCounters.replayedBatches++;
        this.spoolCounters.replayedRecords += batch.count;
        this.observer.batchReplayed?.(batch);
      }
    }
    return read.batches.length > 0;
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
      this.memoryBytes -= queued.bytes;
      this.memoryRecords -= batch.count;
      if (queued.segment) this.spool!.acked(queued.segment);
      const state = this.captures.get(batch.captureId);
      if (state) state.counters.published += batch.count;
      this.observer.batchPublished?.(batch);
      // Acknowledged, so the NATS client wrote it out: it copies a payload into its outbound
      // buffer when it flushes (DataBuffer.pack) and keeps no reference once flushed.
      this.releaseSlab(batch);
      if (this.isIdle()) {
        for (const w of this.idleWaiters.splice(0)) w();
        this.scheduleTrim();
      }
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

/** Memory a sealed batch holds: its whole slab when it has one. */
function heldBytes(batch: SealedBatch): number {
  return batch.slab ? batch.slab.length : batch.payload.length;
}
