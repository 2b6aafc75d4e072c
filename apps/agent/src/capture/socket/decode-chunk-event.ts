/**
 * Decodes the shim's drain output (records of u32 length, u32 zero, record
 * bytes, padded to 8) holding struct hdrcap_chunk_event records into
 * CapturedChunk objects, using the layout generated from the BPF object's
 * BTF. Malformed records are counted and skipped, never thrown.
 */
import type { CapturedChunk, Direction, Endpoint, Role } from "../chunk.ts";
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

/** Field offsets as plain constants: read on every record. */
const OFF_CGROUP_ID = F.cgroup_id.offset;
const OFF_COMM = F.comm.offset;
const OFF_CONN_ID = F.conn_id.offset;
const OFF_DATA_LEN = F.data_len.offset;
const OFF_DIRECTION = F.direction.offset;
const OFF_FAMILY = F.family.offset;
const OFF_FLAGS = F.flags.offset;
const OFF_LENGTH = F.length.offset;
const OFF_LOCAL_ADDR = F.local_addr.offset;
const OFF_LOCAL_PORT = F.local_port.offset;
const OFF_PID = F.pid.offset;
const OFF_REMOTE_ADDR = F.remote_addr.offset;
const OFF_REMOTE_PORT = F.remote_port.offset;
const OFF_ROLE = F.role.offset;
const OFF_STREAM_OFFSET = F.stream_offset.offset;
const OFF_TGID = F.tgid.offset;
const OFF_TS_BOOT_NS = F.ts_boot_ns.offset;

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

/** What a record's connection id stands for, decoded once per connection. */
interface ConnectionView {
  /** conn_id as two u32 halves (the cache key is the low 30 bits: a small integer, cheap to hash). */
  low: number;
  high: number;
  family: number;
  connId: string;
  /** The raw address bytes and ports the strings below were made from, as u32 words. */
  words: Uint32Array;
  local: Endpoint;
  remote: Endpoint;
}

interface CommView {
  words: Uint32Array;
  comm: string;
}

/** u32 words of the record compared to reuse a connection view: both addresses and both ports. */
const ENDPOINT_WORDS = (OFF_REMOTE_PORT + 2 - OFF_LOCAL_ADDR) / 4;
const COMM_WORDS = F.comm.size / 4;
/** Caches are dropped wholesale past this many entries (connections and threads come and go). */
const MAX_CACHED = 16_384;

/**
 * Decodes chunk event records. Keeps what repeats on every record of a
 * connection or thread (connection id string, endpoints, comm) and reuses it
 * while the record's bytes still say the same thing, so a record costs a few
 * reads and one object instead of a dozen strings and a data copy.
 */
export class ChunkEventDecoder {
  private readonly connections = new Map<number, ConnectionView>();
  private readonly comms = new Map<number, CommView>();
  private readonly borrowData: boolean;

  /**
   * borrowData: a chunk's data is a view of the drain buffer instead of a
   * copy, valid only until that buffer is reused (the consumer must copy what
   * it keeps). Saves a copy and a pooled allocation per record.
   */
  constructor(options: { borrowData?: boolean } = {}) {
    this.borrowData = options.borrowData ?? false;
  }

  /**
   * Decodes buf[0 .. bytes) of drain output, appending chunks to out and the
   * ids of connections that ended to `closed` (close notices are not chunks;
   * without `closed` they are skipped).
   */
  decodeDrained(buf: Buffer, bytes: number, wallOffsetNs: bigint, out: CapturedChunk[], closed?: string[]): DecodeStats {
    const stats: DecodeStats = { records: 0, closeNotices: 0, malformed: 0 };
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
      const at = pos + 8;
      pos = next;
      // length 0: a connection's close notice, not data (no syscall emits an empty chunk).
      if (len >= CHUNK_EVENT_HEADER_SIZE && buf.readUInt32LE(at + OFF_LENGTH) === 0) {
        stats.records--;
        stats.closeNotices++;
        const family = buf.readUInt16LE(at + OFF_FAMILY);
        if (family !== AF_INET && family !== AF_INET6) stats.malformed++;
        else closed?.push(this.connectionView(buf, at, family).connId);
        continue;
      }
      const chunk = this.decodeAt(buf, at, len, wallOffsetNs);
      if (chunk) out.push(chunk);
      else stats.malformed++;
    }
    return stats;
  }

  /** The record at buf[at, at + len) → chunk, or null when malformed. */
  decodeAt(buf: Buffer, at: number, len: number, wallOffsetNs: bigint): CapturedChunk | null {
    if (len < CHUNK_EVENT_HEADER_SIZE) return null;
    const dataLen = buf.readUInt32LE(at + OFF_DATA_LEN);
    const length = buf.readUInt32LE(at + OFF_LENGTH);
    const family = buf.readUInt16LE(at + OFF_FAMILY);
    const direction = DIRECTIONS[buf[at + OFF_DIRECTION]!];
    const role = ROLES[buf[at + OFF_ROLE]!];
    if (
      dataLen > HDRCAP_CHUNK_MAX ||
      dataLen > length ||
      len < CHUNK_EVENT_HEADER_SIZE + dataLen ||
      (family !== AF_INET && family !== AF_INET6) ||
      direction === undefined ||
      role === undefined
    ) {
      return null;
    }
    const offsetHigh = buf.readUInt32LE(at + OFF_STREAM_OFFSET + 4);
    // Above 2^53 - 1 the offset is not a safe integer.
    if (offsetHigh > 0x1fffff) return null;
    const streamOffset = offsetHigh * 0x1_0000_0000 + buf.readUInt32LE(at + OFF_STREAM_OFFSET);
    const conn = this.connectionView(buf, at, family);
    const pid = buf.readUInt32LE(at + OFF_PID);
    const dataStart = at + CHUNK_EVENT_HEADER_SIZE;
    return {
      tsNs: buf.readBigUInt64LE(at + OFF_TS_BOOT_NS) + wallOffsetNs,
      pid,
      tgid: buf.readUInt32LE(at + OFF_TGID),
      comm: this.commOf(buf, at, pid),
      cgroupId: buf.readBigUInt64LE(at + OFF_CGROUP_ID),
      connId: conn.connId,
      local: conn.local,
      remote: conn.remote,
      direction,
      role,
      streamOffset,
      // The drain buffer is reused by the next drain: copied unless the consumer borrows.
      data: this.borrowData ? buf.subarray(dataStart, dataStart + dataLen) : Buffer.from(buf.subarray(dataStart, dataStart + dataLen)),
      length,
      startsMessage: (buf.readUInt32LE(at + OFF_FLAGS) & HDRCAP_CHUNK_F_HTTP_START) !== 0,
    };
  }

  private connectionView(buf: Buffer, at: number, family: number): ConnectionView {
    const low = buf.readUInt32LE(at + OFF_CONN_ID);
    const high = buf.readUInt32LE(at + OFF_CONN_ID + 4);
    const base = at + OFF_LOCAL_ADDR;
    const key = low & 0x3fffffff;
    const cached = this.connections.get(key);
    if (cached !== undefined && cached.low === low && cached.high === high && cached.family === family && sameWords(cached.words, buf, base)) {
      return cached;
    }
    const words = new Uint32Array(ENDPOINT_WORDS);
    for (let i = 0; i < ENDPOINT_WORDS; i++) words[i] = buf.readUInt32LE(base + 4 * i);
    const fmt = family === AF_INET ? formatIpv4 : formatIpv6;
    const view: ConnectionView = {
      low,
      high,
      family,
      connId: buf.readBigUInt64LE(at + OFF_CONN_ID).toString(),
      words,
      local: { ip: fmt(buf, at + OFF_LOCAL_ADDR), port: buf.readUInt16LE(at + OFF_LOCAL_PORT) },
      remote: { ip: fmt(buf, at + OFF_REMOTE_ADDR), port: buf.readUInt16LE(at + OFF_REMOTE_PORT) },
    };
    if (this.connections.size >= MAX_CACHED) this.connections.clear();
    this.connections.set(key, view);
    return view;
  }

  private commOf(buf: Buffer, at: number, pid: number): string {
    const base = at + OFF_COMM;
    const cached = this.comms.get(pid & 0x3fffffff);
    if (cached !== undefined && sameWords(cached.words, buf, base)) return cached.comm;
    const words = new Uint32Array(COMM_WORDS);
    for (let i = 0; i < COMM_WORDS; i++) words[i] = buf.readUInt32LE(base + 4 * i);
    const end = base + F.comm.size;
    const nul = buf.indexOf(0, base);
    const comm = buf.toString("latin1", base, nul >= base && nul < end ? nul : end);
    if (this.comms.size >= MAX_CACHED) this.comms.clear();
    this.comms.set(pid & 0x3fffffff, { words, comm });
    return comm;
  }
}

function sameWords(words: Uint32Array, buf: Buffer, base: number): boolean {
  for (let i = 0; i < words.length; i++) if (words[i] !== buf.readUInt32LE(base + 4 * i)) return false;
  return true;
}

/**
 * One record (without the drain framing) → chunk, or null when malformed.
 * `wallOffsetNs` is CLOCK_REALTIME - CLOCK_BOOTTIME. The data is copied.
 */
export function decodeChunkEvent(rec: Buffer, wallOffsetNs: bigint): CapturedChunk | null {
  return new ChunkEventDecoder().decodeAt(rec, 0, rec.length, wallOffsetNs);
}

export interface DecodeStats {
  /** Chunk records (close notices not included). */
  records: number;
  /** Connection close notices (records of length 0). */
  closeNotices: number;
  malformed: number;
}

/** Decodes buf[0 .. bytes) of drain output, appending chunks (data copied) to out. */
export function decodeDrainedRecords(buf: Buffer, bytes: number, wallOffsetNs: bigint, out: CapturedChunk[]): DecodeStats {
  return new ChunkEventDecoder().decodeDrained(buf, bytes, wallOffsetNs, out);
}
