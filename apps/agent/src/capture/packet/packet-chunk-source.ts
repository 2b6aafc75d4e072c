/**
 * The packet-level source of HTTP capture: TC (tcx) packets with payload on one
 * interface, TCP-reassembled into the same chunks the socket source produces, so
 * HttpCapture's decoder treats both alike. Its counters are reported in the socket
 * source's shape (seen = packets the program ran on, emitted, ring buffer losses,
 * truncated = payload bytes not copied) so jobs report one completeness format.
 *
 * Per fill of the drain buffer: only the TCP fields reassembly needs are read (no
 * PacketRecord per packet), chunks borrow the payload bytes from the drain buffer and
 * are handed to onChunks before the next fill reuses it (as with the socket source's
 * borrowChunkData: a consumer copies what it keeps), then the ids of connections that
 * ended go to onConnectionsClosed. Of the capture's filter, the TC program checks ports;
 * role and local/remote ports are checked per chunk here (packet-chunk-filter.ts).
 */
import type { CapturedChunk } from "../chunk.ts";
import type { SocketCaptureCounters } from "../socket/socket-capture-source.ts";
import type { SocketCaptureFilter } from "../socket/socket-filter.ts";
import { PacketCaptureSource, type PacketDirectionOption } from "./packet-capture-source.ts";
import { kernelPacketPorts, packetChunkFilter } from "./packet-chunk-filter.ts";
import { TcpSegmentDecoder } from "./packet-record.ts";
import { TcpStreamAssembler } from "./tcp-stream-assembler.ts";

export interface PacketChunkSourceOptions {
  ifname: string;
  netns?: string;
  direction?: PacketDirectionOption;
  /** The HTTP capture's filter; process filters (tgids, cgroups, comm) are refused. */
  filter: SocketCaptureFilter;
  /** Payload bytes copied per packet (the TC program copies at most 4096). */
  payloadBytes: number;
  /** Chunks in stream order per connection direction; their data is valid only during the call. */
  onChunks: (chunks: CapturedChunk[]) => void;
  /** Connections that ended (FIN, RST, idle, evicted), after their last chunks. */
  onConnectionsClosed?: (connIds: string[]) => void;
  /** An exception thrown by onChunks / onConnectionsClosed; default: printed to stderr. */
  onError?: (err: unknown) => void;
  drainIntervalMs?: number;
  /** Ring buffer size; default 8 MiB. */
  ringBufferBytes?: number;
  /** Connections with no packet for this long are flushed and forgotten; default 300. */
  idleConnectionSeconds?: number;
}

export class PacketChunkSource {
  private readonly packets: PacketCaptureSource;
  private readonly assembler: TcpStreamAssembler;
  private readonly segments = new TcpSegmentDecoder();
  private readonly closedConnIds: string[] = [];
  private readonly sweep: NodeJS.Timeout;
  private readonly options: PacketChunkSourceOptions;
  private readonly onError: (err: unknown) => void;
  /** What the kernel's port filter cannot check; null: nothing. */
  private keep: ((chunk: CapturedChunk) => boolean) | null;

  constructor(options: PacketChunkSourceOptions) {
    this.options = options;
    this.keep = packetChunkFilter(options.filter); // throws before anything is loaded
    this.onError = options.onError ?? ((err: unknown) => console.error("packet capture: onChunks failed:", err));
    this.assembler = new TcpStreamAssembler({ onFlowClosed: (connId) => this.closedConnIds.push(connId) });
    this.packets = PacketCaptureSource.open({
      ifname: options.ifname,
      netns: options.netns,
      direction: options.direction ?? "both",
      ports: kernelPacketPorts(options.filter),
      protocols: ["tcp"],
      payloadBytes: Math.min(options.payloadBytes, 4096),
      joinProcesses: true,
      drainIntervalMs: options.drainIntervalMs,
      ringBufferBytes: options.ringBufferBytes,
      onError: this.onError,
      onDrained: (buf, bytes, wallOffsetNs) => {
        const chunks: CapturedChunk[] = [];
        const stats = this.segments.decode(buf, bytes, wallOffsetNs, (s) => this.assembler.pushSegment(s, chunks));
        this.deliver(chunks);
        return stats;
      },
    });
    const idleNs = BigInt(options.idleConnectionSeconds ?? 300) * 1_000_000_000n;
    this.sweep = setInterval(() => this.deliver(this.assembler.expireIdle(BigInt(Date.now()) * 1_000_000n - idleNs)), 10_000);
    this.sweep.unref();
  }

  updateFilter(filter: SocketCaptureFilter): void {
    const keep = packetChunkFilter(filter); // throws before anything changes
    this.packets.updateFilter({ ports: kernelPacketPorts(filter) });
    this.keep = keep;
  }

  counters(): SocketCaptureCounters {
    const c = this.packets.counters();
    return {
      syscallsSeen: c.seen,
      chunksEmitted: c.emitted,
      ringbufFull: c.ringbufFull,
      truncated: c.payloadUncopied > 0n ? 1n : 0n,
      bytesUncopied: c.payloadUncopied,
      connsTracked: 0n,
      connsHttp: 0n,
      connsNotHttp: 0n,
      readErrors: 0n,
      recordsDrained: c.recordsDrained,
      recordsMalformed: c.recordsMalformed,
    };
  }

  /** Chunks first, then the connections that ended with them (the decoder forgets those). */
  private deliver(chunks: CapturedChunk[]): void {
    try {
      const kept = this.keep === null ? chunks : chunks.filter(this.keep);
      if (kept.length) this.options.onChunks(kept);
      if (this.closedConnIds.length) this.options.onConnectionsClosed?.(this.closedConnIds.slice());
    } catch (err) {
      this.onError(err);
    } finally {
      this.closedConnIds.length = 0;
    }
  }

  /** Drains the ring, delivers what every connection still holds, detaches. */
  close(): void {
    clearInterval(this.sweep);
    this.packets.close();
    this.deliver(this.assembler.flushAll());
  }
}
