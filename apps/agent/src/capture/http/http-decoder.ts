/**
 * The agent's entry point for HTTP/1.x: takes batches of captured chunks from
 * any capture source, keeps one tracker per connection (bounded in number,
 * least recently active evicted first) and returns the header records the
 * batch completed, already filtered and redacted by the header policy.
 */
import type { HttpRecord } from "@hdrcap/api/records";
import type { CapturedChunk } from "../chunk.ts";
import { HttpConnectionTracker, type ConnectionTrackerOptions } from "./connection-tracker.ts";
import { createHttpDecoderCounters, type HttpDecoderCounters } from "./counters.ts";
import { createHeaderPolicy, type HeaderPolicy } from "./header-policy.ts";

export interface HttpDecoderOptions {
  /** Default: mask the default-sensitive headers and query parameters. */
  policy?: HeaderPolicy;
  /** Largest header block (start line through blank line) accepted; default 64 KiB. */
  maxHeaderBytes?: number;
  /** Requests awaiting a response per connection direction; default 64. */
  maxPendingRequests?: number;
  /** Connections tracked at once; default 65,536. */
  maxConnections?: number;
}

export const DEFAULT_MAX_HEADER_BYTES = 64 * 1024;
const DEFAULT_MAX_PENDING_REQUESTS = 64;
const DEFAULT_MAX_CONNECTIONS = 65_536;

function positiveInteger(value: number | undefined, fallback: number): number {
  return value !== undefined && Number.isInteger(value) && value > 0 ? value : fallback;
}

export class HttpDecoder {
  /** Iteration order is least recently active first (entries are re-inserted on use). */
  private readonly connections = new Map<string, HttpConnectionTracker>();
  private readonly stats: HttpDecoderCounters = createHttpDecoderCounters();
  private readonly trackerOptions: ConnectionTrackerOptions;
  private readonly maxConnections: number;
  /** The tracker of the previous chunk: batches come in runs of one connection. */
  private current: HttpConnectionTracker | null = null;

  constructor(options: HttpDecoderOptions = {}) {
    this.trackerOptions = {
      policy: options.policy ?? createHeaderPolicy({ redactMode: "mask" }),
      maxHeaderBytes: positiveInteger(options.maxHeaderBytes, DEFAULT_MAX_HEADER_BYTES),
      maxPendingRequests: positiveInteger(options.maxPendingRequests, DEFAULT_MAX_PENDING_REQUESTS),
    };
    this.maxConnections = positiveInteger(options.maxConnections, DEFAULT_MAX_CONNECTIONS);
  }

  /** Decodes a batch of chunks (in capture order) and returns the records it completed. */
  push(chunks: Iterable<CapturedChunk>): HttpRecord[] {
    const out: HttpRecord[] = [];
    for (const chunk of chunks) this.pushChunk(chunk, out);
    return out;
  }

  /** Decodes one chunk, appending completed records to `out`. */
  pushChunk(chunk: CapturedChunk, out: HttpRecord[]): void {
    const offset = chunk.streamOffset;
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(chunk.length) || chunk.length < 0) {
      this.stats.invalidChunks++;
      return;
    }
    const tracker = this.trackerFor(chunk.connId);
    try {
      tracker.push(chunk, out);
    } catch {
      // Never let one connection's bytes stop the batch; start that connection afresh.
      this.stats.internalErrors++;
      this.connections.delete(tracker.connId);
      this.current = null;
    }
  }

  /** Forgets a connection (socket closed); false if it was not tracked. */
  closeConnection(connId: string): boolean {
    const tracker = this.connections.get(connId);
    if (tracker === undefined) return false;
    this.forget(tracker);
    this.stats.connectionsClosed++;
    return true;
  }

  /** Forgets connections with no chunk at or after `olderThanNs` (ns since the epoch); returns how many. */
  expireIdle(olderThanNs: bigint): number {
    let expired = 0;
    for (const tracker of this.connections.values()) {
      if (tracker.lastSeenNs < olderThanNs) {
        this.forget(tracker);
        expired++;
      }
    }
    this.stats.connectionsExpired += expired;
    return expired;
  }

  /** A snapshot of the counters. */
  counters(): HttpDecoderCounters {
    return { ...this.stats };
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Bytes held in header reassembly buffers across all connections. */
  retainedBytes(): number {
    let total = 0;
    for (const tracker of this.connections.values()) total += tracker.retainedBytes();
    return total;
  }

  private trackerFor(connId: string): HttpConnectionTracker {
    const current = this.current;
    if (current !== null && current.connId === connId) return current;
    let tracker = this.connections.get(connId);
    if (tracker === undefined) {
      if (this.connections.size >= this.maxConnections) this.evictLeastRecent();
      tracker = new HttpConnectionTracker(connId, this.stats, this.trackerOptions);
      this.stats.connectionsOpened++;
    } else {
      this.connections.delete(connId);
    }
    this.connections.set(connId, tracker);
    this.current = tracker;
    return tracker;
  }

  private evictLeastRecent(): void {
    for (const tracker of this.connections.values()) {
      this.forget(tracker);
      this.stats.connectionsEvicted++;
      return;
    }
  }

  private forget(tracker: HttpConnectionTracker): void {
    tracker.close();
    this.connections.delete(tracker.connId);
    if (this.current === tracker) this.current = null;
  }
}
