/**
 * Builds RecordBatch payloads for one capture: records are JSON-encoded once, on
 * arrival, and a batch is sealed as soon as adding the next record would exceed
 * the record-count or encoded-size limit. The sealed payload is the exact bytes
 * published, so its size is known before it reaches NATS (max_payload).
 */
import type { HttpRecord } from "@hdrcap/api/records";
import { MAX_BATCH_RECORDS } from "@hdrcap/api/nats";

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
}

/** Bytes of the envelope around the records array, excluding the ids. */
const ENVELOPE_BYTES = Buffer.byteLength('{"v":1,"batchId":"","captureId":"","records":[]}');

const encoder = new TextEncoder();

/**
 * Accumulates encoded records of one capture and seals batches. `nextBatchId` is
 * called once per sealed batch, so ids are assigned in seal order and never change
 * afterwards (a retried batch keeps its id, which is what makes dedupe work).
 */
export class RecordBatchBuilder {
  private parts: string[] = [];
  private bytes = 0;
  private readonly envelopeBytes: number;

  constructor(
    readonly captureId: string,
    private readonly nextBatchId: () => string,
    private readonly limits: BatchLimits = DEFAULT_BATCH_LIMITS,
    /** Upper bound of a batch id's length, reserved in the size budget. */
    batchIdBytes = 200,
  ) {
    if (limits.maxRecords < 1 || limits.maxRecords > MAX_BATCH_RECORDS)
      throw new RangeError(`maxRecords must be within 1..${MAX_BATCH_RECORDS}`);
    this.envelopeBytes = ENVELOPE_BYTES + Buffer.byteLength(JSON.stringify(captureId)) + batchIdBytes;
  }

  /** Records held but not yet sealed. */
  get pending(): number {
    return this.parts.length;
  }

  /** Adds records; returns the batches that became full on the way (possibly none). */
  add(records: readonly HttpRecord[]): SealedBatch[] {
    const sealed: SealedBatch[] = [];
    for (const record of records) {
      const json = JSON.stringify(record);
      const size = Buffer.byteLength(json) + 1; // + the separating comma
      const full =
        this.parts.length >= this.limits.maxRecords ||
        (this.parts.length > 0 && this.envelopeBytes + this.bytes + size > this.limits.maxBytes);
      if (full) sealed.push(this.seal());
      this.parts.push(json);
      this.bytes += size;
    }
    if (this.parts.length >= this.limits.maxRecords) sealed.push(this.seal());
    return sealed;
  }

  /** Seals what is held (null when nothing is). */
  flush(): SealedBatch | null {
    return this.parts.length > 0 ? this.seal() : null;
  }

  private seal(): SealedBatch {
    const batchId = this.nextBatchId();
    const head = `{"v":1,"batchId":${JSON.stringify(batchId)},"captureId":${JSON.stringify(this.captureId)},"records":[`;
    const payload = encoder.encode(head + this.parts.join(",") + "]}");
    const batch = { batchId, captureId: this.captureId, count: this.parts.length, payload };
    this.parts = [];
    this.bytes = 0;
    return batch;
  }
}
