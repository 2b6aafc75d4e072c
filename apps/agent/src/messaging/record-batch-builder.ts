/**
 * Builds RecordBatch payloads for one capture: each record is JSON-encoded on
 * arrival straight into the batch's buffer (a slab of BatchBufferPool), and a
 * batch is sealed as soon as adding the next record would exceed the record-count
 * or encoded-size limit. The sealed payload is the exact bytes published, so its
 * size is known before it reaches NATS (max_payload).
 */
import type { HttpRecord } from "@hdrcap/api/records";
import { MAX_BATCH_RECORDS } from "@hdrcap/api/nats";
import { RecordJsonEncoder } from "../capture/record-json.ts";
import { BatchBufferPool } from "./batch-buffer-pool.ts";

export interface BatchLimits {
  /** At most this many records per batch (the contract's MAX_BATCH_RECORDS at most). */
  maxRecords: number;
  /** At most this many encoded bytes per batch, unless a single record is larger. */
  maxBytes: number;
}

export const DEFAULT_BATCH_LIMITS: BatchLimits = { maxRecords: MAX_BATCH_RECORDS, maxBytes: 512 * 1024 };

export interface SealedBatch {
  batchId: string;
  captureId: string;
  /** Records in the batch. */
  count: number;
  /** The encoded RecordBatch (`{ v: 1, batchId, captureId, records }`). */
  payload: Uint8Array;
  /**
   * The pooled slab `payload` is a view of, while the batch owns it: given back to its
   * pool (and cleared) once the batch is acknowledged, spooled or dropped. Absent when
   * the payload has a buffer of its own.
   */
  slab?: Buffer;
}

/** Bytes of the envelope around the records array, excluding the ids. */
const ENVELOPE_BYTES = Buffer.byteLength('{"v":1,"batchId":"","captureId":"","records":[]}');
/**
 * A sealed batch filling less than 1/SMALL_BATCH_SHARE of its slab is copied out (the slab stays for the next
 * batch): a queue bounded in bytes then holds at most twice the payload bytes it holds, however small the batches.
 */
const SMALL_BATCH_SHARE = 2;

/**
 * Accumulates encoded records of one capture and seals batches. `nextBatchId` is
 * called once per sealed batch, so ids are assigned in seal order and never change
 * afterwards (a retried batch keeps its id, which is what makes dedupe work).
 *
 * Records are written after room reserved for the envelope's head, which is written
 * in front of them at seal time, once the batch id is known: no record is held as a
 * string or copied again.
 */
export class RecordBatchBuilder {
  private buf: Buffer | null = null;
  /** `buf` came from the pool (else it was sized for one oversized record). */
  private pooled = false;
  /** Write offset in `buf`. */
  private at: number;
  private count = 0;
  /** Encoded size of the held records, each counted with one separating comma. */
  private bytes = 0;
  private readonly envelopeBytes: number;
  private readonly captureJson: string;
  /** Room for `{"v":1,"batchId":<id>,"captureId":<id>,"records":[` in front of the records. */
  private readonly headReserve: number;
  private readonly pool: BatchBufferPool;
  private readonly json = new RecordJsonEncoder();

  constructor(
    readonly captureId: string,
    private readonly nextBatchId: () => string,
    private readonly limits: BatchLimits = DEFAULT_BATCH_LIMITS,
    /** Upper bound of a batch id's length, reserved in the size budget. */
    batchIdBytes = 200,
    /** Where batch buffers come from; by default a pool of its own that keeps none for reuse. */
    pool?: BatchBufferPool,
  ) {
    if (limits.maxRecords < 1 || limits.maxRecords > MAX_BATCH_RECORDS)
      throw new RangeError(`maxRecords must be within 1..${MAX_BATCH_RECORDS}`);
    this.pool = pool ?? new BatchBufferPool(limits.maxBytes, 0);
    // Every batch within the limits then fits a slab (see seal()).
    if (this.pool.slabBytes < limits.maxBytes) throw new RangeError("the pool's slabs are smaller than maxBytes");
    this.captureJson = JSON.stringify(captureId);
    this.envelopeBytes = ENVELOPE_BYTES + Buffer.byteLength(this.captureJson) + batchIdBytes;
    this.headReserve = Buffer.byteLength(`{"v":1,"batchId":"","captureId":${this.captureJson},"records":[`) + batchIdBytes;
    this.at = this.headReserve;
  }

  /** Records held but not yet sealed. */
  get pending(): number {
    return this.count;
  }

  /** Adds records; returns the batches that became full on the way (possibly none). */
  add(records: readonly HttpRecord[]): SealedBatch[] {
    const sealed: SealedBatch[] = [];
    for (const record of records) {
      const json = this.json.encode(record);
      const length = Buffer.byteLength(json);
      const size = length + 1; // + the separating comma
      const full =
        this.count >= this.limits.maxRecords ||
        (this.count > 0 && this.envelopeBytes + this.bytes + size > this.limits.maxBytes);
      if (full) sealed.push(this.seal());
      this.append(json, length);
      this.bytes += size;
    }
    if (this.count >= this.limits.maxRecords) sealed.push(this.seal());
    return sealed;
  }

  /** Seals what is held (null when nothing is); an idle builder gives its slab back. */
  flush(): SealedBatch | null {
    const batch = this.count > 0 ? this.seal() : null;
    if (this.buf && this.pooled) this.pool.release(this.buf);
    this.buf = null;
    return batch;
  }

  private append(json: string, length: number): void {
    // Within the limits, head + records + "]}" <= envelopeBytes + bytes <= maxBytes <= a slab.
    const need = this.at + (this.count > 0 ? 1 : 0) + length + 2;
    if (!this.buf) {
      this.buf = this.pool.acquire();
      this.pooled = true;
    }
    if (need > this.buf.length) {
      // Only a record larger than the byte limit, alone in its batch, gets here: a buffer of its size.
      if (this.pooled) this.pool.release(this.buf);
      this.buf = Buffer.allocUnsafeSlow(need);
      this.pooled = false;
    }
    if (this.count > 0) this.buf[this.at++] = 0x2c; // ","
    this.at += this.buf.write(json, this.at, "utf8");
    this.count++;
  }

  private seal(): SealedBatch {
    const buf = this.buf!;
    const batchId = this.nextBatchId();
    const head = `{"v":1,"batchId":${JSON.stringify(batchId)},"captureId":${this.captureJson},"records":[`;
    const headBytes = Buffer.byteLength(head);
    const end = this.at + buf.write("]}", this.at, "latin1");
    const batch: SealedBatch = { batchId, captureId: this.captureId, count: this.count, payload: buf };
    if (headBytes > this.headReserve) {
      // A batch id longer than reserved: assembled in a buffer of its own.
      const payload = Buffer.allocUnsafeSlow(headBytes + end - this.headReserve);
      payload.write(head, 0, "utf8");
      buf.copy(payload, headBytes, this.headReserve, end);
      batch.payload = payload;
      if (!this.pooled) this.buf = null; // an oversized record's buffer is not reused
    } else {
      const start = this.headReserve - headBytes;
      buf.write(head, start, "utf8");
      const view = buf.subarray(start, end);
      if (!this.pooled) {
        batch.payload = view;
        this.buf = null;
      } else if (view.length * SMALL_BATCH_SHARE < buf.length) {
        // The slab stays here for the next batch.
        const own = Buffer.allocUnsafeSlow(view.length);
        view.copy(own);
        batch.payload = own;
      } else {
        batch.payload = view;
        batch.slab = buf;
        this.buf = null;
      }
    }
    this.at = this.headReserve;
    this.count = 0;
    this.bytes = 0;
    return batch;
  }
}
