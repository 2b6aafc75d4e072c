/**
 * The packet capture filter: validation, CIDR parsing, and its encoding into
 * the BPF config map value and the keys of the port set and the two LPM
 * tries (layouts generated from BTF).
 */
import net from "node:net";
import { formatIpv4, formatIpv6 } from "../socket/decode-chunk-event.ts";
import {
  HDRCAP_PKT_CIDR_SET_MAX,
  HDRCAP_PKT_FILTER_CIDR,
  HDRCAP_PKT_FILTER_PORT,
  HDRCAP_PKT_PAYLOAD_MAX,
  HDRCAP_PKT_PORT_SET_MAX,
  HDRCAP_PKT_PROTO_OTHER,
  HDRCAP_PKT_PROTO_TCP,
  HDRCAP_PKT_PROTO_UDP,
  hdrcapCidr4KeyLayout,
  hdrcapCidr6KeyLayout,
  hdrcapPacketConfigLayout,
} from "./packet-layout.generated.ts";

export type PacketProtocol = "tcp" | "udp" | "other";

/** What to capture. Empty arrays and absent fields mean "all". */
export interface PacketCaptureFilter {
  /** A packet matches if its source or its destination port is listed (packets without ports never match). */
  ports?: number[];
  /** A packet matches if its source or destination address is inside one of these ("10.0.0.0/8", "2001:db8::/32", or a bare address). */
  cidrs?: string[];
  protocols?: PacketProtocol[];
  /** Keep one matched packet in N, chosen at random in the kernel; 1 = all. */
  sampleEvery?: number;
  /** Payload prefix copied per packet, 0..4096; default 0. */
  payloadBytes?: number;
}

export interface Cidr {
  family: 4 | 6;
  /** Network address with the host bits cleared. */
  address: Buffer;
  prefixLength: number;
}

export type NormalizedPacketCaptureFilter = Required<PacketCaptureFilter>;

const PROTOCOL_BITS: Record<PacketProtocol, number> = {
  tcp: HDRCAP_PKT_PROTO_TCP,
  udp: HDRCAP_PKT_PROTO_UDP,
  other: HDRCAP_PKT_PROTO_OTHER,
};

/** IPv4 or IPv6 text → network-order bytes (4 or 16), or null. */
export function parseIpAddress(text: string): Buffer | null {
  if (net.isIPv4(text)) return Buffer.from(text.split(".").map(Number));
  if (!net.isIPv6(text)) return null;
  let s = text.replace(/%.*$/, "");
  // A trailing dotted quad becomes two groups.
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4?.[1]) {
    const b = v4[1].split(".").map(Number) as [number, number, number, number];
    s = `${s.slice(0, -v4[1].length)}${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head, tail] = s.includes("::") ? (s.split("::") as [string, string]) : [s, undefined];
  const groups = (part: string) => (part === "" ? [] : part.split(":").map((g) => Number.parseInt(g, 16)));
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  if (all.length !== 8) return null;
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, 2 * i));
  return out;
}

export function parseCidr(text: string): Cidr {
  const [addr, len, extra] = text.trim().split("/");
  const address = addr === undefined ? null : parseIpAddress(addr);
  if (!address || extra !== undefined) throw new RangeError(`invalid CIDR ${JSON.stringify(text)}`);
  const family = address.length === 4 ? 4 : 6;
  const max = address.length * 8;
  const prefixLength = len === undefined ? max : Number(len);
  if (!/^\d+$/.test(len ?? String(max)) || prefixLength > max)
    throw new RangeError(`invalid prefix length in CIDR ${JSON.stringify(text)}`);
  for (let bit = prefixLength; bit < max; bit++) address[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return { family, address, prefixLength };
}

/** Canonical text form: network address (RFC 5952 for IPv6) and prefix length. */
export function formatCidr(c: Cidr): string {
  return `${c.family === 4 ? formatIpv4(c.address, 0) : formatIpv6(c.address, 0)}/${c.prefixLength}`;
}

export function normalizePacketFilter(f: PacketCaptureFilter): NormalizedPacketCaptureFilter {
  const ports = [...new Set(f.ports ?? [])];
  for (const p of ports) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new RangeError(`ports: invalid port ${p}`);
  if (ports.length > HDRCAP_PKT_PORT_SET_MAX) throw new RangeError(`ports: more than ${HDRCAP_PKT_PORT_SET_MAX} ports`);
  const cidrs = [...new Set((f.cidrs ?? []).map((c) => formatCidr(parseCidr(c))))];
  const v4 = cidrs.filter((c) => !c.includes(":")).length;
  if (v4 > HDRCAP_PKT_CIDR_SET_MAX || cidrs.length - v4 > HDRCAP_PKT_CIDR_SET_MAX)
    throw new RangeError(`cidrs: more than ${HDRCAP_PKT_CIDR_SET_MAX} per address family`);
  const protocols = [...new Set(f.protocols ?? [])];
  for (const p of protocols) if (!(p in PROTOCOL_BITS)) throw new RangeError(`protocols: invalid protocol ${String(p)}`);
  const sampleEvery = f.sampleEvery ?? 1;
  if (!Number.isInteger(sampleEvery) || sampleEvery < 1 || sampleEvery > 0xffffffff)
    throw new RangeError(`sampleEvery must be a positive integer, got ${sampleEvery}`);
  const payloadBytes = f.payloadBytes ?? 0;
  if (!Number.isInteger(payloadBytes) || payloadBytes < 0 || payloadBytes > HDRCAP_PKT_PAYLOAD_MAX)
    throw new RangeError(`payloadBytes must be an integer in 0..${HDRCAP_PKT_PAYLOAD_MAX}, got ${payloadBytes}`);
  return { ports, cidrs, protocols, sampleEvery, payloadBytes };
}

export function encodePacketConfig(f: NormalizedPacketCaptureFilter): Buffer {
  const L = hdrcapPacketConfigLayout.fields;
  const buf = Buffer.alloc(hdrcapPacketConfigLayout.size);
  let flags = 0;
  if (f.ports.length) flags |= HDRCAP_PKT_FILTER_PORT;
  if (f.cidrs.length) flags |= HDRCAP_PKT_FILTER_CIDR;
  buf.writeUInt32LE(flags, L.filter_flags.offset);
  buf.writeUInt32LE(
    f.protocols.reduce((m, p) => m | PROTOCOL_BITS[p], 0),
    L.protocols.offset,
  );
  buf.writeUInt32LE(f.sampleEvery, L.sample_every.offset);
  buf.writeUInt32LE(f.payloadBytes, L.payload_bytes.offset);
  return buf;
}

export function encodeCidrKey(c: Cidr): Buffer {
  const layout = c.family === 4 ? hdrcapCidr4KeyLayout : hdrcapCidr6KeyLayout;
  const buf = Buffer.alloc(layout.size);
  buf.writeUInt32LE(c.prefixLength, layout.fields.prefixlen.offset);
  c.address.copy(buf, layout.fields.addr.offset);
  return buf;
}

export type PacketFilterMap = "pkt_ports" | "pkt_cidr4" | "pkt_cidr6";

/** The encoded keys of every filter set, per BPF map. */
export function packetFilterSetKeys(f: NormalizedPacketCaptureFilter): Record<PacketFilterMap, Buffer[]> {
  const cidrs = f.cidrs.map(parseCidr);
  return {
    pkt_ports: f.ports.map((p) => {
      const b = Buffer.alloc(2);
      b.writeUInt16LE(p);
      return b;
    }),
    pkt_cidr4: cidrs.filter((c) => c.family === 4).map(encodeCidrKey),
    pkt_cidr6: cidrs.filter((c) => c.family === 6).map(encodeCidrKey),
  };
}
