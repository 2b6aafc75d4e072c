/**
 * Socket-level HTTP/1.x capture: loads bpf/src/http_sock.bpf.c, keeps its
 * filter maps in step with the caller's filter, drains the ring buffer on a
 * short timer (the kernel submits without wakeups; a drain that leaves the
 * ring well filled schedules another at once) and hands decoded chunks to
 * onChunks in batches.
 */
import { httpSockObjectPath } from "@hdrcap/bpf/paths";
import { readNamedCounters, RingCatchUp, ringBufferBytes, swapFilterSets } from "../kernel-counters.ts";
import type { CapturedChunk } from "../chunk.ts";
import {
  BpfObject,
  type BpfMap,
  type BpfProgramInfo,
  type LibbpfLogger,
  RingBufferReader,
  bootToWallOffsetNs,
  numPossibleCpus,
  setLibbpfLogger,
} from "../../libbpf/libbpf.ts";
import { HDRCAP_CNT__COUNT, hdrcapCounter } from "../record-layout.generated.ts";
import { assertCaptureReady } from "../system-check.ts";
import { ChunkEventDecoder } from "./decode-chunk-event.ts";
import {
  type NormalizedSocketCaptureFilter,
  type SocketCaptureFilter,
  encodeConfig,
  filterSetKeys,
  normalizeFilter,
} from "./socket-filter.ts";

export type { NormalizedSocketCaptureFilter, RoleFilter, SocketCaptureFilter } from "./socket-filter.ts";

export interface SocketCaptureOptions extends SocketCaptureFilter {
  /** Receives decoded chunks in batches, in ring-buffer order. */
  onChunks: (chunks: CapturedChunk[]) => void;
  /**
   * Chunks' data are views of the drain buffer, valid only during the
   * onChunks call that delivers them (a consumer that keeps bytes copies
   * them, as the HTTP decoder does). Saves a copy and an allocation per
   * record. Default false: each chunk owns a copy of its data.
   */
  borrowChunkData?: boolean;
  /**
   * Ids of HTTP connections that ended (the kernel saw the socket close),
   * delivered after the chunks of the same drain, so their state can go.
   */
  onConnectionsClosed?: (connIds: string[]) => void;
  /** An exception thrown by onChunks; default: printed to stderr. */
  onError?: (err: unknown) => void;
  /** How often the ring buffer is drained; default 10 ms (sooner when it fills up). */
  drainIntervalMs?: number;
  /** Ring buffer size, rounded up to a power of two; default 4 MiB (its pages count in RSS). */
  ringBufferBytes?: number;
  /** libbpf's own messages (verifier log etc.); default: dropped. */
  libbpfLogger?: LibbpfLogger;
  /** Skip mounting tracefs/bpffs and the privilege check (already done). */
  skipSystemCheck?: boolean;
}

/** Kernel counters summed over CPUs, plus the decoder's own. */
export interface SocketCaptureCounters {
  syscallsSeen: bigint;
  chunksEmitted: bigint;
  ringbufFull: bigint;
  truncated: bigint;
  bytesUncopied: bigint;
  connsTracked: bigint;
  connsHttp: bigint;
  connsNotHttp: bigint;
  readErrors: bigint;
  /** Records drained from the ring buffer. */
  recordsDrained: bigint;
  /** Records skipped because they did not decode. */
  recordsMalformed: bigint;
}

/**
 * One FFI call's worth of records (room for several of the largest, 16 KiB chunks); the drain
 * loops until the ring is (nearly) empty. Each fill is decoded and delivered before the next, so
 * a small fill keeps what it allocates short-lived: with 256 KiB fills (≈ 700 records each) the
 * CLI's heap peaked ≈ 11 MiB higher under the capture bench's load (see docs/benchmarks.md).
 */
const DRAIN_BUFFER_BYTES = 64 * 1024;
const DEFAULT_RING_BUFFER_BYTES = 4 * 1024 * 1024;
const DEFAULT_DRAIN_INTERVAL_MS = 10;
/** Drain calls per tick: 64 MiB at most, so a tick cannot monopolise the event loop. */
const MAX_DRAINS_PER_TICK = 1024;



export class SocketCaptureSource {
  private readonly obj: BpfObject;
  private readonly ring: RingBufferReader;
  private readonly configMap: BpfMap;
  private readonly countersMap: BpfMap;
  private readonly setMaps: Record<"filter_tgids" | "filter_cgroups" | "filter_ports", BpfMap>;
  private readonly drainBuffer = Buffer.alloc(DRAIN_BUFFER_BYTES);
  private readonly chunkDecoder: ChunkEventDecoder;
  private readonly catchUp: RingCatchUp;
  private readonly connIdBase: bigint;
  private readonly onChunks: (chunks: CapturedChunk[]) => void;
  private readonly onConnectionsClosed: ((connIds: string[]) => void) | undefined;
  private readonly onError: (err: unknown) => void;
  private filter: NormalizedSocketCaptureFilter;
  private generation = 0;
  private timer: NodeJS.Timeout | undefined;
  private recordsDrained = 0n;
  private recordsMalformed = 0n;
  private closed = false;

  private constructor(obj: BpfObject, options: SocketCaptureOptions, filter: NormalizedSocketCaptureFilter, ringBytes: number) {
    this.obj = obj;
    this.catchUp = new RingCatchUp(ringBytes, () => this.drainNow());
    this.onChunks = options.onChunks;
    this.onConnectionsClosed = options.onConnectionsClosed;
    this.onError = options.onError ?? ((err) => console.error("socket capture: onChunks failed:", err));
    this.filter = filter;
    this.chunkDecoder = new ChunkEventDecoder({ borrowData: options.borrowChunkData ?? false });
    // Distinct ids across agent restarts: a run would need 10^6 connections
    // per millisecond of uptime to reach the next run's range.
    this.connIdBase = BigInt(Date.now()) * 1_000_000n;
    this.configMap = obj.map("hdrcap_cfg");
    this.countersMap = obj.map("counters");
    this.setMaps = {
      filter_tgids: obj.map("filter_tgids"),
      filter_cgroups: obj.map("filter_cgroups"),
      filter_ports: obj.map("filter_ports"),
    };
    this.ring = RingBufferReader.open(obj.map("events"));
  }

  /** Loads and attaches the programs with the given filter and starts draining. */
  static open(options: SocketCaptureOptions): SocketCaptureSource {
    const filter = normalizeFilter(options);
    if (!options.skipSystemCheck) assertCaptureReady();
    setLibbpfLogger(options.libbpfLogger);
    const obj = BpfObject.open(httpSockObjectPath);
    let source: SocketCaptureSource | undefined;
    try {
      obj.setMapMaxEntries("scratch_buf", numPossibleCpus());
      const ringBytes = ringBufferBytes(options.ringBufferBytes ?? DEFAULT_RING_BUFFER_BYTES);
      obj.setMapMaxEntries("events", ringBytes);
      obj.load();
      source = new SocketCaptureSource(obj, options, filter, ringBytes);
      // Filters are in the maps before the first program runs.
      source.writeFilter(filter, emptyFilter());
      obj.attachAll();
    } catch (err) {
      source?.ring.close();
      obj.close();
      throw err;
    }
    const interval = options.drainIntervalMs ?? DEFAULT_DRAIN_INTERVAL_MS;
    source.timer = setInterval(() => source.drainNow(), interval);
    source.timer.unref();
    return source;
  }

  /** Changes the filter while running. Fields given replace the current ones; absent fields stay. */
  updateFilter(patch: SocketCaptureFilter): void {
    this.assertOpen();
    const next = normalizeFilter({ ...this.filter, ...stripUndefined(patch) });
    this.writeFilter(next, this.filter);
    this.filter = next;
  }

  /** The filter in force. */
  currentFilter(): NormalizedSocketCaptureFilter {
    return structuredClone(this.filter);
  }

  /**
   * Drains everything in the ring buffer now and delivers it (the timer does
   * this every drainIntervalMs). Returns the number of chunks delivered.
   */
  drainNow(): number {
    if (this.closed) return 0;
    let delivered = 0;
    const wallOffset = bootToWallOffsetNs();
    // Bounded: what arrives while we decode waits for the next tick (or the catch-up below).
    // Each fill of the drain buffer is delivered before the next one reuses it.
    for (let i = 0; i < MAX_DRAINS_PER_TICK; i++) {
      const { bytes, records } = this.ring.drain(this.drainBuffer);
      if (records === 0) break;
      const chunks: CapturedChunk[] = [];
      const closed: string[] = [];
      const stats = this.chunkDecoder.decodeDrained(this.drainBuffer, bytes, wallOffset, chunks, closed);
      this.recordsDrained += BigInt(stats.records);
      this.recordsMalformed += BigInt(stats.malformed);
      this.deliver(chunks, closed);
      delivered += chunks.length;
      if (bytes < this.drainBuffer.length / 2) break;
    }
    if (!this.closed) this.catchUp.afterDrain(this.ring.pendingBytes());
    return delivered;
  }

  private deliver(chunks: CapturedChunk[], closed: string[]): void {
    if (chunks.length > 0) {
      try {
        this.onChunks(chunks);
      } catch (err) {
        this.onError(err);
      }
    }
    if (closed.length > 0 && this.onConnectionsClosed !== undefined) {
      try {
        this.onConnectionsClosed(closed);
      } catch (err) {
        this.onError(err);
      }
    }
  }

  /** The loaded programs with their kernel ids (as `bpftool prog show` lists them). */
  programs(): BpfProgramInfo[] {
    this.assertOpen();
    return this.obj.programs();
  }

  counters(): SocketCaptureCounters {
    this.assertOpen();
    const out = readNamedCounters(this.countersMap, hdrcapCounter, HDRCAP_CNT__COUNT, "HDRCAP_CNT_");
    return {
      ...(out as unknown as Omit<SocketCaptureCounters, "recordsDrained" | "recordsMalformed">),
      recordsDrained: this.recordsDrained,
      recordsMalformed: this.recordsMalformed,
    };
  }

  /** Delivers what is still buffered, then detaches and unloads everything. */
  close(): void {
    if (this.closed) return;
    if (this.timer) clearInterval(this.timer);
    try {
      this.drainNow();
    } finally {
      this.closed = true;
      this.ring.close();
      this.obj.close();
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new Error("socket capture source is closed");
  }

  /** New set entries first, then the config (new flags and generation), then stale entries out. */
  private writeFilter(next: NormalizedSocketCaptureFilter, prev: NormalizedSocketCaptureFilter): void {
    swapFilterSets(this.setMaps, filterSetKeys(next), filterSetKeys(prev), () => {
      this.generation++;
      this.configMap.update(Buffer.alloc(4), encodeConfig(next, this.connIdBase, this.generation));
    });
  }
}

function emptyFilter(): NormalizedSocketCaptureFilter {
  return normalizeFilter({});
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
