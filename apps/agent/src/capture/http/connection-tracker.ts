/**
 * One connection: the decoders of its two directions, pairing of responses
 * with the requests they answer (FIFO, so pipelining works), and turning
 * parsed header blocks into HttpRecords with the header policy applied.
 */
import type { HttpRecord } from "@hdrcap/api/records";
import type { CapturedChunk, Direction } from "../chunk.ts";
import type { HttpDecoderCounters } from "./counters.ts";
import type { ParsedHead } from "./header-block.ts";
import type { HeaderPolicy } from "./header-policy.ts";
import { HttpStreamDecoder, type HeadSink } from "./stream-decoder.ts";

export interface ConnectionTrackerOptions {
  policy: HeaderPolicy;
  maxHeaderBytes: number;
  /** Requests awaiting a response per direction; the oldest is given up beyond this. */
  maxPendingRequests: number;
}

interface PendingRequest {
  method: string;
  tsNs: bigint;
}

const NS_PER_MS = 1_000_000n;

// Records of one batch mostly share a millisecond: format each millisecond
// once, and recognise it by comparing against its bounds (no BigInt division).
let lastIsoFromNs = 1n;
let lastIsoToNs = 0n;
let lastIso = "";
/** Beyond this a Date cannot represent the time (and toISOString would throw). */
const MAX_DATE_MS = 8.64e15;
function isoTimestamp(tsNs: bigint): string {
  if (tsNs >= lastIsoFromNs && tsNs < lastIsoToNs) return lastIso;
  let ms = Number(tsNs / NS_PER_MS);
  if (!(Math.abs(ms) <= MAX_DATE_MS)) ms = 0;
  lastIso = new Date(ms).toISOString();
  // Only times after the epoch are cached (the division truncates towards zero).
  const cacheable = tsNs >= 0n && ms !== 0;
  lastIsoFromNs = cacheable ? BigInt(ms) * NS_PER_MS : 1n;
  lastIsoToNs = cacheable ? lastIsoFromNs + NS_PER_MS : 0n;
  return lastIso;
}

export class HttpConnectionTracker implements HeadSink {
  /** Latest chunk time seen on the connection (ns since the epoch). */
  lastSeenNs = 0n;
  private readonly ingress: HttpStreamDecoder;
  private readonly egress: HttpStreamDecoder;
  /** Requests that arrived on each direction, oldest first, not yet answered. */
  private readonly pendingIngress: PendingRequest[] = [];
  private readonly pendingEgress: PendingRequest[] = [];
  /** A direction lost its place since its last final response: responses may be missing. */
  private desyncedIngress = false;
  private desyncedEgress = false;
  /**
   * The caller's output array, only while push() runs. Keeping it afterwards
   * would pin a whole batch of records per connection until the connection is
   * forgotten (minutes after it closed): the leak this field once caused.
   */
  private out: HttpRecord[] | null = null;

  constructor(
    readonly connId: string,
    private readonly counters: HttpDecoderCounters,
    private readonly options: ConnectionTrackerOptions,
  ) {
    const limits = { maxHeaderBytes: options.maxHeaderBytes };
    this.ingress = new HttpStreamDecoder("ingress", this, counters, limits);
    this.egress = new HttpStreamDecoder("egress", this, counters, limits);
  }

  /** Feeds one chunk; records completed by it are appended to `out`. */
  push(chunk: CapturedChunk, out: HttpRecord[]): void {
    if (chunk.tsNs > this.lastSeenNs) this.lastSeenNs = chunk.tsNs;
    this.out = out;
    try {
      (chunk.direction === "ingress" ? this.ingress : this.egress).push(chunk);
    } finally {
      this.out = null;
    }
  }

  /** Accounts for what is lost when the connection ends. */
  close(): void {
    const unanswered = this.pendingIngress.length + this.pendingEgress.length;
    this.counters.unansweredRequests += unanswered;
    if (this.ingress.hasPartialHead()) this.counters.incompleteAtClose++;
    if (this.egress.hasPartialHead()) this.counters.incompleteAtClose++;
    this.pendingIngress.length = 0;
    this.pendingEgress.length = 0;
  }

  retainedBytes(): number {
    return this.ingress.retainedBytes() + this.egress.retainedBytes();
  }

  onDesync(decoder: HttpStreamDecoder): void {
    if (decoder.direction === "ingress") this.desyncedIngress = true;
    else this.desyncedEgress = true;
  }

  onHead(decoder: HttpStreamDecoder, head: ParsedHead, first: CapturedChunk): string | null {
    const direction = decoder.direction;
    if (head.kind === "request") {
      const queue = direction === "ingress" ? this.pendingIngress : this.pendingEgress;
      if (queue.length >= this.options.maxPendingRequests) {
        queue.shift();
        this.counters.unansweredRequests++;
      }
      queue.push({ method: head.method!, tsNs: first.tsNs });
      this.emit(head, first, null);
      return null;
    }

    const status = head.status!;
    const final = status >= 200 || status === 101;
    const request = this.matchRequest(direction, first.tsNs, final);
    if (final) {
      if (direction === "ingress") this.desyncedIngress = false;
      else this.desyncedEgress = false;
    }
    if (!final) this.counters.interimResponses++;
    if (request === undefined) this.counters.unpairedResponses++;
    else this.counters.paired++;
    const latencyMs = request === undefined ? null : Number(first.tsNs - request.tsNs) / 1e6;
    this.emit(head, first, latencyMs);

    const method = request === undefined ? null : request.method;
    if (status === 101 || (method === "CONNECT" && status >= 200 && status < 300)) {
      // The connection stops being HTTP in both directions.
      this.counters.upgrades++;
      (direction === "ingress" ? this.egress : this.ingress).enterPassthrough();
    }
    return method;
  }

  /**
   * The request a response sent on `direction` answers: the oldest pending one
   * in the other direction. A request stamped after the response cannot be
   * it (its own request was not captured). Interim responses leave it pending.
   */
  private matchRequest(direction: Direction, tsNs: bigint, final: boolean): PendingRequest | undefined {
    const queue = direction === "ingress" ? this.pendingEgress : this.pendingIngress;
    const oldest = queue[0];
    if (oldest === undefined || oldest.tsNs > tsNs) return undefined;
    const desynced = direction === "ingress" ? this.desyncedIngress : this.desyncedEgress;
    if (desynced) {
      // Responses were lost with the bytes; assume no pipelining and pair with the latest eligible request.
      let latest = 0;
      while (latest + 1 < queue.length && queue[latest + 1]!.tsNs <= tsNs) latest++;
      if (latest > 0) {
        queue.splice(0, latest);
        this.counters.unansweredRequests += latest;
      }
    }
    const request = queue[0];
    if (final) queue.shift();
    return request;
  }

  private emit(head: ParsedHead, first: CapturedChunk, latencyMs: number | null): void {
    const policy = this.options.policy;
    const redacted: string[] = [];
    const headers = policy.applyToFields(head.fields, redacted);
    const path = head.target === null ? null : policy.applyToTarget(head.target, redacted);
    const egress = first.direction === "egress";
    this.out!.push({
      ts: isoTimestamp(first.tsNs),
      connectionId: this.connId,
      kind: head.kind,
      role: first.role,
      src: egress ? first.local : first.remote,
      dst: egress ? first.remote : first.local,
      // The process id as users know it (the kernel's tgid); sources without one fill pid only.
      pid: first.tgid !== 0 ? first.tgid : first.pid,
      comm: first.comm,
      method: head.method,
      path,
      version: head.version,
      status: head.status,
      reason: head.reason,
      latencyMs,
      headers,
      headerBytes: head.headerBytes,
      redacted,
    });
  }
}
