/**
 * Synthetic captured traffic for decoder-only measurements (no kernel): what
 * the socket source hands the decoder when it watches an nginx server (role
 * server) under wrk: keep-alive connections that the server closes after a
 * fixed number of requests, a request read and a response head written per
 * exchange (the body goes out with sendfile, so it is an uncopied gap), and
 * chunks delivered in drain-sized batches that interleave the connections.
 */
import type { CapturedChunk } from "../../src/capture/chunk.ts";
import {
  HDRCAP_CHUNK_F_HTTP_START,
  HDRCAP_DIR_EGRESS,
  HDRCAP_DIR_INGRESS,
  HDRCAP_ROLE_CLIENT,
  HDRCAP_ROLE_SERVER,
  HDRCAP_ROLE_UNKNOWN,
  hdrcapChunkEventLayout,
} from "../../src/capture/record-layout.generated.ts";

export interface SyntheticTrafficOptions {
  /** Connections open at once (wrk -c). */
  concurrent: number;
  /** Requests per connection before it is replaced (nginx keepalive_requests). */
  requestsPerConnection: number;
  /** Chunks per batch handed to the decoder (one drain tick). */
  chunksPerBatch: number;
}

const REQUEST = Buffer.from(
  "GET /index.html HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk-bench/1.0\r\n" +
    "Accept: text/html,application/xhtml+xml\r\nAccept-Language: en-US,en;q=0.9\r\n" +
    "Accept-Encoding: gzip, deflate\r\nX-Request-Id: 3f2a9c1e-0d4b-4c8e-9f1a-7b6d5e4c3b2a\r\n\r\n",
  "latin1",
);
const BODY_BYTES = 1024;
const RESPONSE = Buffer.from(
  "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Wed, 25 Nov 2026 15:39:28 GMT\r\n" +
    "Content-Type: text/html\r\nContent-Length: 1024\r\nLast-Modified: Wed, 25 Nov 2026 15:00:00 GMT\r\n" +
    "Connection: keep-alive\r\nETag: \"6565a0c0-400\"\r\nAccept-Ranges: bytes\r\n\r\n",
  "latin1",
);

/** Connection ids stay unique across calls, so several runs can feed one decoder. */
let nextId = 1;

interface Conn {
  id: string;
  done: number;
  ingress: number;
  egress: number;
  local: { ip: string; port: number };
  remote: { ip: string; port: number };
}

/** Yields batches of chunks for `exchanges` request/response pairs; onClose is told of each ended connection. */
export function* syntheticServerTraffic(
  exchanges: number,
  options: SyntheticTrafficOptions,
  onClose: (connId: string) => void = () => {},
): Generator<CapturedChunk[]> {
  const open = (): Conn => {
    const id = nextId++;
    return {
      id: String(1_700_000_000_000_000_000n + BigInt(id)),
      done: 0,
      ingress: 0,
      egress: 0,
      local: { ip: "127.0.0.1", port: 8080 },
      remote: { ip: "127.0.0.1", port: 30_000 + (id % 30_000) },
    };
  };
  const conns: Conn[] = [];
  for (let i = 0; i < options.concurrent; i++) {
    // Staggered, as in a real run: connections do not all end in the same batch.
    const c = open();
    c.done = Math.floor((i * options.requestsPerConnection) / options.concurrent);
    conns.push(c);
  }
  let tsNs = 1_764_085_168_000_000_000n;
  let batch: CapturedChunk[] = [];
  let sent = 0;
  let turn = 0;
  const chunk = (c: Conn, direction: "ingress" | "egress", data: Buffer, length: number): CapturedChunk => {
    const streamOffset = direction === "ingress" ? c.ingress : c.egress;
    if (direction === "ingress") c.ingress += length;
    else c.egress += length;
    tsNs += 20_000n;
    return {
      tsNs,
      pid: 4242,
      tgid: 4242,
      comm: "nginx",
      cgroupId: 1n,
      connId: c.id,
      local: c.local,
      remote: c.remote,
      direction,
      role: "server",
      streamOffset,
      // A fresh Buffer per chunk, as the drain decoder makes.
      data: Buffer.from(data),
      length,
      startsMessage: true,
    };
  };
  while (sent < exchanges) {
    const slot = turn++ % conns.length;
    const c = conns[slot]!;
    batch.push(chunk(c, "ingress", REQUEST, REQUEST.length));
    // writev of the head, then sendfile of the body: one chunk with the head, the body a gap.
    batch.push(chunk(c, "egress", RESPONSE, RESPONSE.length + BODY_BYTES));
    sent++;
    if (++c.done >= options.requestsPerConnection) {
      onClose(c.id);
      conns[slot] = open();
    }
    if (batch.length >= options.chunksPerBatch) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
}

/**
 * Encodes chunks as the ring-buffer drain shim outputs them (u32 length, u32
 * zero, struct hdrcap_chunk_event truncated after data_len bytes, padded to
 * 8), so decoding can be measured and tested without the kernel.
 * `wallOffsetNs` is subtracted from each chunk's time (ts_boot_ns = ts - offset).
 */
export function encodeDrainBuffer(chunks: readonly CapturedChunk[], wallOffsetNs: bigint): Buffer {
  const F = hdrcapChunkEventLayout.fields;
  let size = 0;
  for (const c of chunks) size += (8 + F.data.offset + c.data.length + 7) & ~7;
  const out = Buffer.alloc(size);
  let pos = 0;
  for (const c of chunks) {
    const len = F.data.offset + c.data.length;
    out.writeUInt32LE(len, pos);
    const r = pos + 8;
    out.writeBigUInt64LE(c.tsNs - wallOffsetNs, r + F.ts_boot_ns.offset);
    out.writeBigUInt64LE(BigInt(c.connId), r + F.conn_id.offset);
    out.writeBigUInt64LE(c.cgroupId, r + F.cgroup_id.offset);
    out.writeBigUInt64LE(BigInt(c.streamOffset), r + F.stream_offset.offset);
    out.writeUInt32LE(c.pid, r + F.pid.offset);
    out.writeUInt32LE(c.tgid, r + F.tgid.offset);
    out.writeUInt32LE(c.length, r + F.length.offset);
    out.writeUInt32LE(c.data.length, r + F.data_len.offset);
    const ipv4 = (ip: string, at: number) => ip.split(".").forEach((p, i) => out.writeUInt8(Number(p), at + i));
    ipv4(c.local.ip, r + F.local_addr.offset);
    ipv4(c.remote.ip, r + F.remote_addr.offset);
    out.writeUInt16LE(c.local.port, r + F.local_port.offset);
    out.writeUInt16LE(c.remote.port, r + F.remote_port.offset);
    out.writeUInt16LE(2, r + F.family.offset);
    out.writeUInt8(c.direction === "ingress" ? HDRCAP_DIR_INGRESS : HDRCAP_DIR_EGRESS, r + F.direction.offset);
    out.writeUInt8(c.role === "server" ? HDRCAP_ROLE_SERVER : c.role === "client" ? HDRCAP_ROLE_CLIENT : HDRCAP_ROLE_UNKNOWN, r + F.role.offset);
    out.writeUInt32LE(c.startsMessage ? HDRCAP_CHUNK_F_HTTP_START : 0, r + F.flags.offset);
    out.writeUInt32LE(c.length, r + F.syscall_len.offset);
    out.write(c.comm, r + F.comm.offset, F.comm.size - 1, "latin1");
    c.data.copy(out, r + F.data.offset);
    pos += (8 + len + 7) & ~7;
  }
  return out;
}
