/**
 * One HTTP capture session on this host: a kernel source (socket-level syscall
 * tracepoints by default, or TC packets on one interface) feeding the HTTP/1.x decoder, header policy applied, records handed out in batches.
 * Owns the budgets (max records, duration) and the completeness counters that a
 * job reports: seen in kernel, emitted, lost, truncated, malformed, delivered.
 */
import type { HttpRecord } from "@hdrcap/api/records";
import type { CapturedChunk } from "./chunk.ts";
import { createHeaderPolicy, type HeaderPolicyOptions } from "./http/header-policy.ts";
import { HttpDecoder } from "./http/http-decoder.ts";
import type { HttpDecoderCounters } from "./http/counters.ts";
import { PacketChunkSource } from "./packet/packet-chunk-source.ts";
import { SocketCaptureSource, type SocketCaptureCounters, type SocketCaptureFilter } from "./socket/socket-capture-source.ts";

export type StopReason = "requested" | "max-records" | "duration" | "error";

/** Where the bytes come from: socket syscalls (every process, default) or packets on one interface. */
export type HttpCaptureSource = { kind: "socket" } | { kind: "packet"; ifname: string; netns?: string; direction?: "ingress" | "egress" | "both" };

export interface HttpCaptureOptions {
  filter: SocketCaptureFilter;
  source?: HttpCaptureSource;
  policy?: HeaderPolicyOptions;
  /** Receives completed records in batches (at most one batch per drain tick). */
  onRecords: (records: HttpRecord[]) => void;
  /** Called once when the capture stops by itself (budget reached). */
  onStop?: (reason: StopReason) => void;
  maxRecords?: number;
  durationSeconds?: number;
  drainIntervalMs?: number;
  /**
   * Socket source ring buffer size (default 4 MiB: its pages count in RSS). A consumer
   * slower than the library's (e.g. the CLI's JSON output) needs more room for bursts.
   */
  ringBufferBytes?: number;
  /** Connections idle this long are forgotten by the decoder. */
  idleConnectionSeconds?: number;
}

export interface HttpCaptureCounters {
  kernel: SocketCaptureCounters;
  decoder: HttpDecoderCounters;
  /** Records handed to onRecords. */
  recordsDelivered: number;
  /** Records completed after the max-records budget was reached (not delivered, counted). */
  recordsOverBudget: number;
}

export class HttpCapture {
  private readonly decoder: HttpDecoder;
  private readonly source: SocketCaptureSource | PacketChunkSource;
  private readonly options: HttpCaptureOptions;
  private recordsDelivered = 0;
  private recordsOverBudget = 0;
  private stopped: StopReason | null = null;
  private readonly timers: NodeJS.Timeout[] = [];
  private finalKernelCounters: SocketCaptureCounters | undefined;

  private constructor(options: HttpCaptureOptions) {
    this.options = options;
    this.decoder = new HttpDecoder({ policy: createHeaderPolicy(options.policy ?? { redactMode: "mask" }) });
    const source = options.source ?? { kind: "socket" };
    this.source =
      source.kind === "packet"
        ? new PacketChunkSource({
            ifname: source.ifname,
            netns: source.netns,
            direction: source.direction,
            filter: options.filter,
            payloadBytes: options.filter.captureBytes ?? 4096,
            drainIntervalMs: options.drainIntervalMs,
            ringBufferBytes: options.ringBufferBytes,
            idleConnectionSeconds: options.idleConnectionSeconds,
            // As with the socket source: the decoder copies the bytes it keeps.
            onChunks: (chunks) => this.onChunks(chunks),
            onConnectionsClosed: (connIds) => {
              for (const connId of connIds) this.decoder.closeConnection(connId);
            },
          })
        : this.openSocketSource(options);
    const idleNs = BigInt(options.idleConnectionSeconds ?? 300) * 1_000_000_000n;
    const sweep = setInterval(() => this.decoder.expireIdle(BigInt(Date.now()) * 1_000_000n - idleNs), 10_000);
    sweep.unref();
    this.timers.push(sweep);
    if (options.durationSeconds) {
      const t = setTimeout(() => this.stopBecause("duration"), options.durationSeconds * 1000);
      t.unref();
      this.timers.push(t);
    }
  }

  private openSocketSource(options: HttpCaptureOptions): SocketCaptureSource {
    return SocketCaptureSource.open({
      ...options.filter,
      drainIntervalMs: options.drainIntervalMs,
      ringBufferBytes: options.ringBufferBytes,
      onChunks: (chunks) => this.onChunks(chunks),
      // The decoder copies the bytes it keeps (partial header blocks); the rest are only read.
      borrowChunkData: true,
      // Decoder state of an ended connection goes at once, not after the idle timeout.
      onConnectionsClosed: (connIds) => {
        for (const connId of connIds) this.decoder.closeConnection(connId);
      },
    });
  }

  static start(options: HttpCaptureOptions): HttpCapture {
    return new HttpCapture(options);
  }

  get stopReason(): StopReason | null {
    return this.stopped;
  }

  updateFilter(filter: SocketCaptureFilter): void {
    this.source.updateFilter(filter);
  }

  counters(): HttpCaptureCounters {
    return {
      kernel: this.finalKernelCounters ?? this.source.counters(),
      decoder: this.decoder.counters(),
      recordsDelivered: this.recordsDelivered,
      recordsOverBudget: this.recordsOverBudget,
    };
  }

  /** Delivers what is buffered, detaches the kernel programs. Idempotent. */
  stop(reason: StopReason = "requested"): void {
    if (this.stopped) return;
    for (const t of this.timers) clearInterval(t);
    this.finalKernelCounters = this.source.counters();
    this.source.close(); // drains the ring buffer one last time
    this.stopped = reason;
  }

  private stopBecause(reason: StopReason): void {
    if (this.stopped) return;
    // Stop from outside the drain callback: close() drains synchronously.
    setImmediate(() => {
      if (this.stopped) return;
      this.stop(reason);
      this.options.onStop?.(reason);
    });
  }

  private onChunks(chunks: CapturedChunk[]): void {
    const records = this.decoder.push(chunks);
    if (records.length === 0) return;
    const max = this.options.maxRecords;
    let deliver = records;
    if (max !== undefined) {
      const room = Math.max(0, max - this.recordsDelivered);
      if (records.length > room) {
        deliver = records.slice(0, room);
        this.recordsOverBudget += records.length - room;
      }
    }
    if (deliver.length > 0) {
      this.recordsDelivered += deliver.length;
      this.options.onRecords(deliver);
    }
    if (max !== undefined && this.recordsDelivered >= max) this.stopBecause("max-records");
  }
}
