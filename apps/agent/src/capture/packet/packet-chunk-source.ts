/**
 * The packet-level source of HTTP capture: TC (tcx) packets with payload on one
 * interface, TCP-reassembled into the same chunks the socket source produces, so
 * HttpCapture's decoder treats both alike. Its counters are reported in the socket
 * source's shape (seen = packets the program ran on, emitted, ring buffer losses,
 * truncated = payload bytes not copied) so jobs report one completeness format.
 */
import type { CapturedChunk } from "../chunk.ts";
import type { SocketCaptureCounters } from "../socket/socket-capture-source.ts";
import { PacketCaptureSource, type PacketDirectionOption } from "./packet-capture-source.ts";
import { TcpStreamAssembler } from "./tcp-stream-assembler.ts";

export interface PacketChunkSourceOptions {
  ifname: string;
  netns?: string;
  direction?: PacketDirectionOption;
  ports?: number[];
  /** Payload bytes copied per packet (the TC program copies at most 4096). */
  payloadBytes: number;
  onChunks: (chunks: CapturedChunk[]) => void;
  drainIntervalMs?: number;
}

export class PacketChunkSource {
  private readonly packets: PacketCaptureSource;
  private readonly assembler = new TcpStreamAssembler();

  constructor(options: PacketChunkSourceOptions) {
    this.packets = PacketCaptureSource.open({
      ifname: options.ifname,
      netns: options.netns,
      direction: options.direction ?? "both",
      ports: options.ports,
      protocols: ["tcp"],
      payloadBytes: Math.min(options.payloadBytes, 4096),
      joinProcesses: true,
      drainIntervalMs: options.drainIntervalMs,
      onPackets: (packets) => {
        const chunks = this.assembler.push(packets);
        if (chunks.length) options.onChunks(chunks);
      },
    });
  }

  updateFilter(filter: { ports?: number[] }): void {
    this.packets.updateFilter({ ports: filter.ports });
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

  close(): void {
    this.packets.close();
  }
}
