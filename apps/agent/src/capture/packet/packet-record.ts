/**
 * PacketRecord, the agent's typed view of one captured packet's header
 * elements, and its decoding from struct hdrcap_packet_event records (the
 * shim's drain output) with the layout generated from the BPF object's BTF.
 * Malformed records are counted and skipped, never thrown.
 */
import type { Direction } from "../chunk.ts";
import { formatIpv4, formatIpv6 } from "../socket/decode-chunk-event.ts";
import {
  HDRCAP_PKT_DIR_EGRESS,
  HDRCAP_PKT_DIR_INGRESS,
  HDRCAP_PKT_F_FRAGMENT,
  HDRCAP_PKT_F_GSO,
  HDRCAP_PKT_F_L4_TRUNCATED,
  HDRCAP_PKT_F_PAYLOAD_TRUNCATED,
  HDRCAP_PKT_F_TCP_MSS,
  HDRCAP_PKT_F_TCP_SACK,
  HDRCAP_PKT_F_TCP_SACK_PERM,
  HDRCAP_PKT_F_TCP_TIMESTAMPS,
  HDRCAP_PKT_F_TCP_WSCALE,
  HDRCAP_PKT_PAYLOAD_MAX,
  hdrcapPacketEventLayout,
} from "./packet-layout.generated.ts";

const F = hdrcapPacketEventLayout.fields;
/** Bytes before payload[]: the shortest valid record. */
export const PACKET_EVENT_HEADER_SIZE = F.payload.offset;

export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
const AF_INET = 2;
const AF_INET6 = 10;

export type TcpFlagName = "FIN" | "SYN" | "RST" | "PSH" | "ACK" | "URG" | "ECE" | "CWR" | "AE";

export const TCP_FLAGS: Readonly<Record<TcpFlagName, number>> = {
  FIN: 0x01,
  SYN: 0x02,
  RST: 0x04,
  PSH: 0x08,
  ACK: 0x10,
  URG: 0x20,
  ECE: 0x40,
  CWR: 0x80,
  AE: 0x100,
};

export interface TcpOptions {
  mss?: number;
  windowScale?: number;
  sackPermitted: boolean;
  timestamps?: { tsval: number; tsecr: number };
  /** Blocks in a SACK option, when the segment carries one. */
  sackBlocks?: number;
}

export interface TcpHeader {
  seq: number;
  ack: number;
  /** Raw flag bits: FIN 0x01 .. CWR 0x80, AE 0x100. */
  flags: number;
  /** The set flags by name, in bit order. */
  flagNames: TcpFlagName[];
  /** Window field as on the wire (not scaled). */
  window: number;
  /** Header length in bytes (data offset * 4). */
  headerLength: number;
  options: TcpOptions;
}

export interface PacketRecord {
  /** Wall-clock time, nanoseconds since the Unix epoch. */
  tsNs: bigint;
  ifindex: number;
  direction: Direction;
  family: 4 | 6;
  src: string;
  dst: string;
  /** 0 when the packet has no TCP/UDP header. */
  srcPort: number;
  dstPort: number;
  /** IP protocol number (upper-layer protocol after IPv6 extension headers). */
  protocol: number;
  /** IPv4 TTL or IPv6 hop limit. */
  ttl: number;
  dscp: number;
  ecn: number;
  /** IPv4 total length, IPv6 payload length + 40; 0 for jumbo/BIG TCP aggregates. */
  ipTotalLength: number;
  /** IPv4 identification (0 for IPv6). */
  ipId: number;
  /** IPv4 flags + fragment offset field, host order (0 for IPv6). */
  ipFragOff: number;
  /** IPv6 flow label (0 for IPv4). */
  flowLabel: number;
  /** Bytes of the packet from its L2 header on, as the hook saw it. */
  skbLength: number;
  tcp?: TcpHeader;
  udp?: { length: number };
  /** L4 payload bytes the packet carries. */
  payloadLength: number;
  /** The captured prefix of the payload (empty unless payload capture is on). */
  payload: Buffer;
  payloadTruncated: boolean;
  /** A non-first IPv4/IPv6 fragment: no L4 header. */
  fragment: boolean;
  /** The L4 header was cut short. */
  l4Truncated: boolean;
  /** A GSO/GRO aggregate of several wire segments. */
  gso: boolean;
  /** Egress: the kernel socket cookie of the local sending socket; 0 on ingress or without a socket. */
  socketCookie: bigint;
  /** Egress: the sending socket's process when it could be joined (see joinProcesses); 0 / "" otherwise. */
  tgid: number;
  comm: string;
}

const DIRECTIONS: Record<number, Direction> = {
  [HDRCAP_PKT_DIR_INGRESS]: "ingress",
  [HDRCAP_PKT_DIR_EGRESS]: "egress",
};

export function tcpFlagNames(flags: number): TcpFlagName[] {
  const names: TcpFlagName[] = [];
  for (const [name, bit] of Object.entries(TCP_FLAGS) as [TcpFlagName, number][]) if (flags & bit) names.push(name);
  return names;
}

function readComm(rec: Buffer): string {
  const start = F.comm.offset;
  const end = start + F.comm.size;
  const nul = rec.indexOf(0, start);
  return rec.toString("latin1", start, nul >= start && nul < end ? nul : end);
}

/**
 * One record (without the drain framing) → PacketRecord, or null when malformed.
 * `wallOffsetNs` is CLOCK_REALTIME - CLOCK_BOOTTIME.
 */
export function decodePacketEvent(rec: Buffer, wallOffsetNs: bigint): PacketRecord | null {
  if (rec.length < PACKET_EVENT_HEADER_SIZE) return null;
  const capturedLen = rec.readUInt16LE(F.captured_len.offset);
  const payloadLength = rec.readUInt32LE(F.payload_len.offset);
  const familyRaw = rec.readUInt16LE(F.family.offset);
  const direction = DIRECTIONS[rec.readUInt8(F.direction.offset)];
  if (
    capturedLen > HDRCAP_PKT_PAYLOAD_MAX ||
    capturedLen > payloadLength ||
    rec.length < PACKET_EVENT_HEADER_SIZE + capturedLen ||
    (familyRaw !== AF_INET && familyRaw !== AF_INET6) ||
    direction === undefined
  ) {
    return null;
  }
  const flags = rec.readUInt32LE(F.flags.offset);
  const fmt = familyRaw === AF_INET ? formatIpv4 : formatIpv6;
  const protocol = rec.readUInt8(F.ip_proto.offset);
  const fragment = (flags & HDRCAP_PKT_F_FRAGMENT) !== 0;
  const l4Truncated = (flags & HDRCAP_PKT_F_L4_TRUNCATED) !== 0;
  const hasL4 = !fragment && !l4Truncated;
  const record: PacketRecord = {
    tsNs: rec.readBigUInt64LE(F.ts_boot_ns.offset) + wallOffsetNs,
    ifindex: rec.readUInt32LE(F.ifindex.offset),
    direction,
    family: familyRaw === AF_INET ? 4 : 6,
    src: fmt(rec, F.saddr.offset),
    dst: fmt(rec, F.daddr.offset),
    srcPort: rec.readUInt16LE(F.sport.offset),
    dstPort: rec.readUInt16LE(F.dport.offset),
    protocol,
    ttl: rec.readUInt8(F.ttl.offset),
    dscp: rec.readUInt8(F.dscp.offset),
    ecn: rec.readUInt8(F.ecn.offset),
    ipTotalLength: rec.readUInt16LE(F.ip_total_len.offset),
    ipId: rec.readUInt16LE(F.ip_id.offset),
    ipFragOff: rec.readUInt16LE(F.frag_off.offset),
    flowLabel: rec.readUInt32LE(F.flow_label.offset),
    skbLength: rec.readUInt32LE(F.skb_len.offset),
    payloadLength,
    // Copy: the drain buffer is reused by the next drain.
    payload: Buffer.from(rec.subarray(PACKET_EVENT_HEADER_SIZE, PACKET_EVENT_HEADER_SIZE + capturedLen)),
    payloadTruncated: (flags & HDRCAP_PKT_F_PAYLOAD_TRUNCATED) !== 0,
    fragment,
    l4Truncated,
    gso: (flags & HDRCAP_PKT_F_GSO) !== 0,
    socketCookie: rec.readBigUInt64LE(F.socket_cookie.offset),
    tgid: rec.readUInt32LE(F.tgid.offset),
    comm: readComm(rec),
  };
  if (hasL4 && protocol === IPPROTO_TCP) {
    const tcpFlags = rec.readUInt16LE(F.tcp_flags.offset);
    const options: TcpOptions = { sackPermitted: (flags & HDRCAP_PKT_F_TCP_SACK_PERM) !== 0 };
    if (flags & HDRCAP_PKT_F_TCP_MSS) options.mss = rec.readUInt16LE(F.mss.offset);
    if (flags & HDRCAP_PKT_F_TCP_WSCALE) options.windowScale = rec.readUInt8(F.wscale.offset);
    if (flags & HDRCAP_PKT_F_TCP_TIMESTAMPS)
      options.timestamps = { tsval: rec.readUInt32LE(F.tsval.offset), tsecr: rec.readUInt32LE(F.tsecr.offset) };
    if (flags & HDRCAP_PKT_F_TCP_SACK) options.sackBlocks = rec.readUInt8(F.sack_blocks.offset);
    record.tcp = {
      seq: rec.readUInt32LE(F.seq.offset),
      ack: rec.readUInt32LE(F.ack_seq.offset),
      flags: tcpFlags,
      flagNames: tcpFlagNames(tcpFlags),
      window: rec.readUInt16LE(F.window.offset),
      headerLength: rec.readUInt8(F.tcp_hdr_len.offset),
      options,
    };
  } else if (hasL4 && protocol === IPPROTO_UDP) {
    record.udp = { length: rec.readUInt16LE(F.udp_len.offset) };
  }
  return record;
}

export interface PacketDecodeStats {
  records: number;
  malformed: number;
}

/**
 * Walks drain output in buf[0 .. bytes) (u32 length, u32 zero, record, padded to 8), calling
 * visit(offset, length) per record; visit returns false for a malformed record. Broken
 * framing ends the walk (nothing after it can be trusted).
 */
function walkDrained(buf: Buffer, bytes: number, visit: (at: number, len: number) => boolean): PacketDecodeStats {
  const stats: PacketDecodeStats = { records: 0, malformed: 0 };
  const end = Math.min(bytes, buf.length);
  let pos = 0;
  while (pos + 8 <= end) {
    const len = buf.readUInt32LE(pos);
    stats.records++;
    if (pos + 8 + len > end) {
      stats.malformed++;
      break;
    }
    if (!visit(pos + 8, len)) stats.malformed++;
    pos += (8 + len + 7) & ~7;
  }
  return stats;
}

/** Decodes buf[0 .. bytes) of drain output, appending to out. */
export function decodeDrainedPackets(buf: Buffer, bytes: number, wallOffsetNs: bigint, out: PacketRecord[]): PacketDecodeStats {
  return walkDrained(buf, bytes, (at, len) => {
    const packet = decodePacketEvent(buf.subarray(at, at + len), wallOffsetNs);
    if (packet) out.push(packet);
    return packet !== null;
  });
}

/**
 * The fields of one TCP packet that stream reassembly needs. Produced by
 * `decodeDrainedTcpSegments` into one reused object whose `payload` is a view
 * of the drain buffer: valid only during the callback.
 */
export interface TcpSegmentEvent {
  tsNs: bigint;
  direction: Direction;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  seq: number;
  /** Raw TCP flag bits (TCP_FLAGS). */
  flags: number;
  payloadLength: number;
  payload: Buffer;
  /** Egress packets of joined sockets: the sender's process; 0 / "" otherwise. */
  tgid: number;
  comm: string;
}

/**
 * Address text by address bytes, so a busy flow's addresses are formatted once, not per packet.
 * Bounded: cleared when full (a scan of many addresses only costs the formatting again).
 */
class AddressCache {
  private readonly v4 = new Map<number, string>();
  private readonly v6 = new Map<string, string>();

  text(rec: Buffer, offset: number, v4: boolean): string {
    return v4 ? cached(this.v4, rec.readUInt32LE(offset), () => formatIpv4(rec, offset)) : cached(this.v6, rec.toString("latin1", offset, offset + 16), () => formatIpv6(rec, offset));
  }
}

function cached<K>(map: Map<K, string>, key: K, format: () => string): string {
  let s = map.get(key);
  if (s === undefined) {
    if (map.size >= 4096) map.clear();
    s = format();
    map.set(key, s);
  }
  return s;
}

/** The reassembly view of a decoded TCP packet (its `tcp` header must be present). */
export function tcpSegmentOf(p: PacketRecord & { tcp: TcpHeader }): TcpSegmentEvent {
  return {
    tsNs: p.tsNs,
    direction: p.direction,
    src: p.src,
    dst: p.dst,
    srcPort: p.srcPort,
    dstPort: p.dstPort,
    seq: p.tcp.seq,
    flags: p.tcp.flags,
    payloadLength: p.payloadLength,
    payload: p.payload,
    tgid: p.tgid,
    comm: p.comm,
  };
}

/**
 * Decodes the TCP packets in buf[0 .. bytes) of drain output for reassembly, without
 * building a PacketRecord per packet: each usable TCP packet is handed to onSegment in
 * one reused TcpSegmentEvent whose payload borrows `buf`. Other packets (UDP, fragments,
 * truncated L4 headers) are skipped; malformed records are counted, never thrown.
 */
export class TcpSegmentDecoder {
  private readonly addresses = new AddressCache();
  private readonly segment: TcpSegmentEvent = {
    tsNs: 0n,
    direction: "ingress",
    src: "",
    dst: "",
    srcPort: 0,
    dstPort: 0,
    seq: 0,
    flags: 0,
    payloadLength: 0,
    payload: Buffer.alloc(0),
    tgid: 0,
    comm: "",
  };

  decode(buf: Buffer, bytes: number, wallOffsetNs: bigint, onSegment: (s: TcpSegmentEvent) => void): PacketDecodeStats {
    const seg = this.segment;
    return walkDrained(buf, bytes, (at, len) => {
      if (len < PACKET_EVENT_HEADER_SIZE) return false;
      const capturedLen = buf.readUInt16LE(at + F.captured_len.offset);
      const payloadLength = buf.readUInt32LE(at + F.payload_len.offset);
      const family = buf.readUInt16LE(at + F.family.offset);
      const dir = buf[at + F.direction.offset];
      if (
        capturedLen > HDRCAP_PKT_PAYLOAD_MAX ||
        capturedLen > payloadLength ||
        len < PACKET_EVENT_HEADER_SIZE + capturedLen ||
        (family !== AF_INET && family !== AF_INET6) ||
        (dir !== HDRCAP_PKT_DIR_INGRESS && dir !== HDRCAP_PKT_DIR_EGRESS)
      ) {
        return false;
      }
      const flags = buf.readUInt32LE(at + F.flags.offset);
      if (buf[at + F.ip_proto.offset] !== IPPROTO_TCP || (flags & (HDRCAP_PKT_F_FRAGMENT | HDRCAP_PKT_F_L4_TRUNCATED)) !== 0) return true;
      const v4 = family === AF_INET;
      seg.tsNs = buf.readBigUInt64LE(at + F.ts_boot_ns.offset) + wallOffsetNs;
      seg.direction = dir === HDRCAP_PKT_DIR_EGRESS ? "egress" : "ingress";
      seg.src = this.addresses.text(buf, at + F.saddr.offset, v4);
      seg.dst = this.addresses.text(buf, at + F.daddr.offset, v4);
      seg.srcPort = buf.readUInt16LE(at + F.sport.offset);
      seg.dstPort = buf.readUInt16LE(at + F.dport.offset);
      seg.seq = buf.readUInt32LE(at + F.seq.offset);
      seg.flags = buf.readUInt16LE(at + F.tcp_flags.offset);
      seg.payloadLength = payloadLength;
      seg.payload = buf.subarray(at + PACKET_EVENT_HEADER_SIZE, at + PACKET_EVENT_HEADER_SIZE + capturedLen);
      const tgid = buf.readUInt32LE(at + F.tgid.offset);
      seg.tgid = tgid;
      // Only joined egress packets carry a comm: skip the string for the rest.
      seg.comm = tgid === 0 && buf[at + F.comm.offset] === 0 ? "" : readComm(buf.subarray(at, at + len));
      onSegment(seg);
      return true;
    });
  }
}
