/**
 * Turns captured TCP packets (with payload) into the CapturedChunk stream
 * that every capture source hands to the HTTP decoder: one flow per
 * connection as seen from this host, one TcpReassembler per direction.
 *
 * Perspective: egress packets are the local side's sending direction, so a
 * flow's local endpoint is the source of its egress packets and the
 * destination of its ingress packets. On loopback each packet passes both
 * hooks and so belongs to both sockets' flows, as with the socket source.
 * Role is learnt from the handshake (a local SYN-ACK or a remote SYN makes
 * the local side the server); without a handshake it stays "unknown".
 * Process fields are whatever the packet carried (0 / "" unless joined).
 */
import type { CapturedChunk, Direction, Role } from "../chunk.ts";
import { IPPROTO_TCP, type PacketRecord, TCP_FLAGS } from "./packet-record.ts";
import { type StreamPiece, TcpReassembler, type TcpReassemblerCounters, type TcpReassemblerOptions } from "./tcp-reassembler.ts";

export interface TcpStreamAssemblerOptions extends TcpReassemblerOptions {
  /** Flows tracked at once (least recently active evicted); default 65,536. */
  maxFlows?: number;
  /** Prefix of connection ids, to keep them distinct from other sources'; default "pkt-" + start time. */
  connIdPrefix?: string;
}

export interface TcpStreamAssemblerCounters extends TcpReassemblerCounters {
  flowsOpened: number;
  flowsEvicted: number;
  flowsExpired: number;
  /** Packets that were not TCP with a usable header (ignored). */
  packetsIgnored: number;
  /** Pieces delivered as chunks. */
  chunks: number;
}

interface Flow {
  key: string;
  connId: string;
  localIp: string;
  localPort: number;
  remoteIp: string;
  remotePort: number;
  role: Role;
  dirs: Record<Direction, TcpReassembler>;
  /** SYN sequence numbers seen per direction, to notice a new connection on the same 4-tuple. */
  synSeq: Partial<Record<Direction, number>>;
  lastSeenNs: bigint;
  lastPacket: PacketRecord;
}

export class TcpStreamAssembler {
  /** Iteration order is least recently active first (entries are re-inserted on use). */
  private readonly flows = new Map<string, Flow>();
  private readonly options: TcpStreamAssemblerOptions;
  private readonly maxFlows: number;
  private readonly connIdPrefix: string;
  private nextConnSeq = 1;
  private readonly stats: TcpStreamAssemblerCounters = {
    flowsOpened: 0,
    flowsEvicted: 0,
    flowsExpired: 0,
    packetsIgnored: 0,
    chunks: 0,
    duplicateSegments: 0,
    trimmedSegments: 0,
    heldSegments: 0,
    gaps: 0,
    gapBytes: 0,
  };
  /** Counters of reassemblers of flows that are gone. */
  private readonly retired: TcpReassemblerCounters = {
    duplicateSegments: 0,
    trimmedSegments: 0,
    heldSegments: 0,
    gaps: 0,
    gapBytes: 0,
  };

  constructor(options: TcpStreamAssemblerOptions = {}) {
    this.options = options;
    this.maxFlows = options.maxFlows ?? 65_536;
    this.connIdPrefix = options.connIdPrefix ?? `pkt-${Date.now().toString(36)}-`;
  }

  /** Packets in capture order → the chunks they made deliverable, in stream order per direction. */
  push(packets: Iterable<PacketRecord>): CapturedChunk[] {
    const out: CapturedChunk[] = [];
    for (const p of packets) this.pushPacket(p, out);
    return out;
  }

  pushPacket(p: PacketRecord, out: CapturedChunk[]): void {
    const tcp = p.tcp;
    if (p.protocol !== IPPROTO_TCP || !tcp) {
      this.stats.packetsIgnored++;
      return;
    }
    const egress = p.direction === "egress";
    const local = egress ? { ip: p.src, port: p.srcPort } : { ip: p.dst, port: p.dstPort };
    const remote = egress ? { ip: p.dst, port: p.dstPort } : { ip: p.src, port: p.srcPort };
    const key = `${local.ip}|${local.port}|${remote.ip}|${remote.port}`;
    const syn = (tcp.flags & TCP_FLAGS.SYN) !== 0;
    const ack = (tcp.flags & TCP_FLAGS.ACK) !== 0;
    let flow = this.flows.get(key);
    if (flow && syn) {
      const seen = flow.synSeq[p.direction];
      if (seen !== undefined && seen !== tcp.seq) {
        // A new connection on the same 4-tuple: finish the old one.
        this.finish(flow, out);
        flow = undefined;
      }
    }
    if (!flow) {
      flow = this.openFlow(key, local, remote, p);
    } else {
      this.flows.delete(key);
      this.flows.set(key, flow);
    }
    flow.lastSeenNs = p.tsNs;
    flow.lastPacket = p;
    if (syn) {
      flow.synSeq[p.direction] = tcp.seq;
      // Local SYN-ACK or remote bare SYN: the local side listens.
      if ((egress && ack) || (!egress && !ack)) flow.role = "server";
      else flow.role = "client";
    }
    const pieces = flow.dirs[p.direction].push({
      seq: tcp.seq,
      syn,
      length: p.payloadLength,
      data: p.payload,
    });
    this.emit(flow, p.direction, pieces, p, out);
    if (tcp.flags & TCP_FLAGS.RST) this.finish(flow, out);
  }

  /** Flushes and forgets flows with no packet at or after olderThanNs; returns the chunks their held data made. */
  expireIdle(olderThanNs: bigint): CapturedChunk[] {
    const out: CapturedChunk[] = [];
    for (const flow of [...this.flows.values()]) {
      if (flow.lastSeenNs >= olderThanNs) break; // least recently active first
      this.finish(flow, out);
      this.stats.flowsExpired++;
    }
    return out;
  }

  /** Flushes every flow (held segments delivered after their gaps). Flows stay tracked. */
  flushAll(): CapturedChunk[] {
    const out: CapturedChunk[] = [];
    for (const flow of this.flows.values()) {
      for (const d of ["ingress", "egress"] as const) this.emit(flow, d, flow.dirs[d].flush(), flow.lastPacket, out);
    }
    return out;
  }

  get flowCount(): number {
    return this.flows.size;
  }

  counters(): TcpStreamAssemblerCounters {
    const c = { ...this.stats };
    const add = (s: TcpReassemblerCounters) => {
      c.duplicateSegments += s.duplicateSegments;
      c.trimmedSegments += s.trimmedSegments;
      c.heldSegments += s.heldSegments;
      c.gaps += s.gaps;
      c.gapBytes += s.gapBytes;
    };
    add(this.retired);
    for (const f of this.flows.values()) {
      add(f.dirs.ingress.stats);
      add(f.dirs.egress.stats);
    }
    return c;
  }

  private openFlow(key: string, local: { ip: string; port: number }, remote: { ip: string; port: number }, p: PacketRecord): Flow {
    if (this.flows.size >= this.maxFlows) {
      const oldest = this.flows.values().next().value;
      if (oldest) {
        this.finish(oldest, []);
        this.stats.flowsEvicted++;
      }
    }
    const flow: Flow = {
      key,
      connId: `${this.connIdPrefix}${this.nextConnSeq++}`,
      localIp: local.ip,
      localPort: local.port,
      remoteIp: remote.ip,
      remotePort: remote.port,
      role: "unknown",
      dirs: { ingress: new TcpReassembler(this.options), egress: new TcpReassembler(this.options) },
      synSeq: {},
      lastSeenNs: p.tsNs,
      lastPacket: p,
    };
    this.flows.set(key, flow);
    this.stats.flowsOpened++;
    return flow;
  }

  private finish(flow: Flow, out: CapturedChunk[]): void {
    for (const d of ["ingress", "egress"] as const) {
      this.emit(flow, d, flow.dirs[d].flush(), flow.lastPacket, out);
      const s = flow.dirs[d].stats;
      this.retired.duplicateSegments += s.duplicateSegments;
      this.retired.trimmedSegments += s.trimmedSegments;
      this.retired.heldSegments += s.heldSegments;
      this.retired.gaps += s.gaps;
      this.retired.gapBytes += s.gapBytes;
    }
    this.flows.delete(flow.key);
  }

  private emit(flow: Flow, direction: Direction, pieces: StreamPiece[], p: PacketRecord, out: CapturedChunk[]): void {
    for (const piece of pieces) {
      out.push({
        tsNs: p.tsNs,
        pid: p.tgid,
        tgid: p.tgid,
        comm: p.comm,
        cgroupId: 0n,
        connId: flow.connId,
        local: { ip: flow.localIp, port: flow.localPort },
        remote: { ip: flow.remoteIp, port: flow.remotePort },
        direction,
        role: flow.role,
        streamOffset: piece.streamOffset,
        data: piece.data,
        length: piece.length,
      });
      this.stats.chunks++;
    }
  }
}
