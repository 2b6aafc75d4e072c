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
import type { CapturedChunk, Direction, Endpoint, Role } from "../chunk.ts";
import { IPPROTO_TCP, type PacketRecord, TCP_FLAGS, type TcpSegmentEvent, tcpSegmentOf } from "./packet-record.ts";
import { type StreamPiece, TcpReassembler, type TcpReassemblerCounters, type TcpReassemblerOptions } from "./tcp-reassembler.ts";

export interface TcpStreamAssemblerOptions extends TcpReassemblerOptions {
  /** Flows tracked at once (least recently active evicted); default 65,536. */
  maxFlows?: number;
  /** Prefix of connection ids, to keep them distinct from other sources'; default "pkt-" + start time. */
  connIdPrefix?: string;
  /** Called with the connection id of every flow that ends (RST, FIN, eviction, expiry), after its last chunks. */
  onFlowClosed?: (connId: string) => void;
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
  /** Shared by every chunk of the flow (consumers only read them). */
  local: Endpoint;
  remote: Endpoint;
  role: Role;
  dirs: Record<Direction, TcpReassembler>;
  /** SYN sequence numbers seen per direction, to notice a new connection on the same 4-tuple. */
  synSeq: Partial<Record<Direction, number>>;
  lastSeenNs: bigint;
  /** Process fields of the flow's latest packet that carried them (egress, joined). */
  tgid: number;
  comm: string;
  /** FIN seen per direction. */
  fin: { ingress: boolean; egress: boolean };
  /** A packet seen per direction. */
  seen: { ingress: boolean; egress: boolean };
}

export class TcpStreamAssembler {
  /** Iteration order is least recently active first (entries are re-inserted on use). */
  private readonly flows = new Map<string, Flow>();
  /** local port × 65,536 + remote port → the flow last seen with them (a lookup without building a key). */
  private readonly byPorts = new Map<number, Flow>();
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
    this.pushSegment(tcpSegmentOf({ ...p, tcp }), out);
  }

  /**
   * One TCP segment → chunks appended to out. The segment is only read during the call:
   * its payload may be a view of a buffer the caller reuses (held segments are copied),
   * and the chunks appended borrow it the same way.
   */
  pushSegment(s: TcpSegmentEvent, out: CapturedChunk[]): void {
    const egress = s.direction === "egress";
    const localIp = egress ? s.src : s.dst;
    const localPort = egress ? s.srcPort : s.dstPort;
    const remoteIp = egress ? s.dst : s.src;
    const remotePort = egress ? s.dstPort : s.srcPort;
    const ports = localPort * 65_536 + remotePort;
    const flags = s.flags;
    const syn = (flags & TCP_FLAGS.SYN) !== 0;
    const ack = (flags & TCP_FLAGS.ACK) !== 0;
    // The flow last seen with these ports is nearly always the one (address strings come
    // from a cache, so equal addresses are usually the same string); else the full key.
    let flow = this.byPorts.get(ports);
    let key: string;
    if (flow !== undefined && flow.local.ip === localIp && flow.remote.ip === remoteIp) key = flow.key;
    else {
      key = `${localIp}|${localPort}|${remoteIp}|${remotePort}`;
      flow = this.flows.get(key);
    }
    if (flow && syn) {
      const seen = flow.synSeq[s.direction];
      if (seen !== undefined && seen !== s.seq) {
        // A new connection on the same 4-tuple: finish the old one.
        this.finish(flow, out);
        flow = undefined;
      }
    }
    if (!flow) {
      // A bare ACK or FIN of a flow not tracked (ended, or from before the capture) starts nothing.
      if (!syn && s.payloadLength <= 0) {
        this.stats.packetsIgnored++;
        return;
      }
      flow = this.openFlow(key, localIp, localPort, remoteIp, remotePort, s.tsNs);
    } else if (s.payloadLength > 0 || syn) {
      // Least recently active first: only packets that move the stream count as activity
      // (re-inserting on every bare ACK costs more than it tells).
      this.flows.delete(key);
      this.flows.set(key, flow);
    }
    this.byPorts.set(ports, flow);
    flow.lastSeenNs = s.tsNs;
    flow.seen[s.direction] = true;
    if (s.tgid !== 0) {
      flow.tgid = s.tgid;
      flow.comm = s.comm;
    }
    if (syn) {
      flow.synSeq[s.direction] = s.seq;
      // Local SYN-ACK or remote bare SYN: the local side listens.
      if ((egress && ack) || (!egress && !ack)) flow.role = "server";
      else flow.role = "client";
    }
    const pieces = flow.dirs[s.direction].push({ seq: s.seq, syn, length: s.payloadLength, data: s.payload });
    this.emit(flow, s.direction, pieces, s.tsNs, out);
    if (flags & TCP_FLAGS.RST) {
      this.finish(flow, out);
      return;
    }
    if (flags & TCP_FLAGS.FIN) {
      flow.fin[s.direction] = true;
      // Both directions closed, or the only direction this hook sees (e.g. ingress only on lo).
      const other = egress ? "ingress" : "egress";
      if (flow.fin[other] || !flow.seen[other]) this.finish(flow, out);
    }
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
      for (const d of ["ingress", "egress"] as const) this.emit(flow, d, flow.dirs[d].flush(), flow.lastSeenNs, out);
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

  private openFlow(key: string, localIp: string, localPort: number, remoteIp: string, remotePort: number, tsNs: bigint): Flow {
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
      local: { ip: localIp, port: localPort },
      remote: { ip: remoteIp, port: remotePort },
      role: "unknown",
      dirs: { ingress: new TcpReassembler(this.options), egress: new TcpReassembler(this.options) },
      synSeq: {},
      lastSeenNs: tsNs,
      tgid: 0,
      comm: "",
      fin: { ingress: false, egress: false },
      seen: { ingress: false, egress: false },
    };
    this.flows.set(key, flow);
    this.stats.flowsOpened++;
    return flow;
  }

  private finish(flow: Flow, out: CapturedChunk[]): void {
    for (const d of ["ingress", "egress"] as const) {
      this.emit(flow, d, flow.dirs[d].flush(), flow.lastSeenNs, out);
      const s = flow.dirs[d].stats;
      this.retired.duplicateSegments += s.duplicateSegments;
      this.retired.trimmedSegments += s.trimmedSegments;
      this.retired.heldSegments += s.heldSegments;
      this.retired.gaps += s.gaps;
      this.retired.gapBytes += s.gapBytes;
    }
    this.flows.delete(flow.key);
    const ports = flow.local.port * 65_536 + flow.remote.port;
    if (this.byPorts.get(ports) === flow) this.byPorts.delete(ports);
    this.options.onFlowClosed?.(flow.connId);
  }

  private emit(flow: Flow, direction: Direction, pieces: StreamPiece[], tsNs: bigint, out: CapturedChunk[]): void {
    for (const piece of pieces) {
      out.push({
        tsNs,
        pid: flow.tgid,
        tgid: flow.tgid,
        comm: flow.comm,
        cgroupId: 0n,
        connId: flow.connId,
        local: flow.local,
        remote: flow.remote,
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
