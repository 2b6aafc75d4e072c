/**
 * Decodes the shim's drain output (records of u32 length, u32 zero, record
 * bytes, padded to 8) holding struct hdrcap_chunk_event records into
 * CapturedChunk objects, using the layout generated from the BPF object's
 * BTF. Malformed records are counted and skipped, never thrown.
 */
import type { CapturedChunk, Direction, Role } from "../chunk.ts";
import {
  HDRCAP_CHUNK_F_HTTP_START,
  HDRCAP_CHUNK_MAX,
  HDRCAP_DIR_EGRESS,
  HDRCAP_DIR_INGRESS,
  HDRCAP_ROLE_CLIENT,
  HDRCAP_ROLE_SERVER,
  HDRCAP_ROLE_UNKNOWN,
  hdrcapChunkEventLayout,
} from "../record-layout.generated.ts";

const F = hdrcapChunkEventLayout.fields;
/** Bytes before data[]: the shortest valid record. */
export const CHUNK_EVENT_HEADER_SIZE = F.data.offset;

const AF_INET = 2;
const AF_INET6 = 10;

const ROLES: Record<number, Role> = {
  [HDRCAP_ROLE_UNKNOWN]: "unknown",
  [HDRCAP_ROLE_CLIENT]: "client",
  [HDRCAP_ROLE_SERVER]: "server",
};
const DIRECTIONS: Record<number, Direction> = {
  [HDRCAP_DIR_INGRESS]: "ingress",
  [HDRCAP_DIR_EGRESS]: "egress",
};

export function formatIpv4(b: Buffer, offset: number): string {
  return `${b[offset]}.${b[offset + 1]}.${b[offset + 2]}.${b[offset + 3]}`;
}

/** RFC 5952 text form; IPv4-mapped addresses as ::ffff:a.b.c.d (as Node prints them). */
export function formatIpv6(b: Buffer, offset: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(b.readUInt16BE(offset + 2 * i));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${formatIpv4(b, offset + 12)}`;
  }
  let bestStart = -1;
  let bestLen = 1; // a single zero group is not compressed
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  const head = hex.slice(0, bestStart).join(":");
  const tail = hex.slice(bestStart + bestLen).join(":");
  return `${head}::${tail}`;
}

function readComm(rec: Buffer): string {
  const start = F.comm.offset;
  const end = start + F.comm.size;
  const nul = rec.indexOf(0, start);
  return rec.toString("latin1", start, nul >= start && nul < end ? nul : end);
}

/**
 * One record (without the drain framing) → chunk, or null when malformed.
 * `wallOffsetNs` is CLOCK_REALTIME - CLOCK_BOOTTIME.
 */
export function decodeChunkEvent(rec: Buffer, wallOffsetNs: bigint): CapturedChunk | null {
  if (rec.length < CHUNK_EVENT_HEADER_SIZE) return null;
  const dataLen = rec.readUInt32LE(F.data_len.offset);
  const length = rec.readUInt32LE(F.length.offset);
  const family = rec.readUInt16LE(F.family.offset);
  const direction = DIRECTIONS[rec.readUInt8(F.direction.offset)];
  const role = ROLES[rec.readUInt8(F.role.offset)];
  if (
    dataLen > HDRCAP_CHUNK_MAX ||
    dataLen > length ||
    rec.length < CHUNK_EVENT_HEADER_SIZE + dataLen ||
    (family !== AF_INET && family !== AF_INET6) ||
    direction === undefined ||
    role === undefined
  ) {
    return null;
  }
  const fmt = family === AF_INET ? formatIpv4 : formatIpv6;
  const streamOffset = rec.readBigUInt64LE(F.stream_offset.offset);
  if (streamOffset > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  return {
    tsNs: rec.readBigUInt64LE(F.ts_boot_ns.offset) + wallOffsetNs,
    pid: rec.readUInt32LE(F.pid.offset),
    tgid: rec.readUInt32LE(F.tgid.offset),
    comm: readComm(rec),
    cgroupId: rec.readBigUInt64LE(F.cgroup_id.offset),
    connId: rec.readBigUInt64LE(F.conn_id.offset).toString(),
    local: { ip: fmt(rec, F.local_addr.offset), port: rec.readUInt16LE(F.local_port.offset) },
    remote: { ip: fmt(rec, F.remote_addr.offset), port: rec.readUInt16LE(F.remote_port.offset) },
    direction,
    role,
    streamOffset: Number(streamOffset),
    // Copy: the drain buffer is reused by the next drain.
    data: Buffer.from(rec.subarray(CHUNK_EVENT_HEADER_SIZE, CHUNK_EVENT_HEADER_SIZE + dataLen)),
    length,
    startsMessage: (rec.readUInt32LE(F.flags.offset) & HDRCAP_CHUNK_F_HTTP_START) !== 0,
  };
}

export interface DecodeStats {
  records: number;
  malformed: number;
}

/** Decodes buf[0 .. bytes) of drain output, appending chunks to out. */
export function decodeDrainedRecords(buf: Buffer, bytes: number, wallOffsetNs: bigint, out: CapturedChunk[]): DecodeStats {
  const stats: DecodeStats = { records: 0, malformed: 0 };
  let pos = 0;
  const end = Math.min(bytes, buf.length);
  while (pos + 8 <= end) {
    const len = buf.readUInt32LE(pos);
    const next = pos + ((8 + len + 7) & ~7);
    stats.records++;
    if (pos + 8 + len > end) {
      stats.malformed++;
      break; // framing is broken: nothing after this can be trusted
    }
    const chunk = decodeChunkEvent(buf.subarray(pos + 8, pos + 8 + len), wallOffsetNs);
    if (chunk) out.push(chunk);
    else stats.malformed++;
    pos = next;
  }
  return stats;
}
