/**
 * Shared pieces of the socket-capture kernel tests: a capture source that
 * collects chunks, stream reassembly by offset, raw servers/clients that
 * know the exact bytes on the wire, and network namespaces.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import net from "node:net";
import type { CapturedChunk, Direction } from "../../src/capture/chunk.ts";
import { SocketCaptureSource, type SocketCaptureOptions } from "../../src/capture/socket/socket-capture-source.ts";

export interface Capture {
  source: SocketCaptureSource;
  chunks: CapturedChunk[];
  /** Drains until predicate(chunks) holds; throws after timeoutMs. */
  waitFor(predicate: (chunks: CapturedChunk[]) => boolean, what: string, timeoutMs?: number): Promise<void>;
  /** Drains for a while so that late chunks would have arrived. */
  settle(ms?: number): Promise<void>;
}

export function startCapture(options: Omit<SocketCaptureOptions, "onChunks">): Capture {
  const chunks: CapturedChunk[] = [];
  const source = SocketCaptureSource.open({ ...options, onChunks: (c) => chunks.push(...c) });
  return {
    source,
    chunks,
    async waitFor(predicate, what, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        source.drainNow();
        if (predicate(chunks)) return;
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; have ${describeChunks(chunks)}`);
        await sleep(10);
      }
    },
    async settle(ms = 150) {
      await sleep(ms);
      source.drainNow();
    },
  };
}

export function describeChunks(chunks: CapturedChunk[]): string {
  if (chunks.length === 0) return "no chunks";
  return chunks
    .slice(0, 30)
    .map(
      (c) =>
        `[conn ${c.connId} ${c.direction} ${c.role} ${c.local.ip}:${c.local.port}->${c.remote.ip}:${c.remote.port} off=${c.streamOffset} len=${c.length} data=${c.data.length} ${JSON.stringify(c.data.subarray(0, 24).toString("latin1"))}]`,
    )
    .join("\n");
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Chunks of the connection whose local port is `localPort` (and remote, if given). */
export function chunksOfSocket(chunks: CapturedChunk[], localPort: number, remotePort?: number): CapturedChunk[] {
  return chunks.filter((c) => c.local.port === localPort && (remotePort === undefined || c.remote.port === remotePort));
}

/**
 * The bytes [start, start + len) of one direction of one connection, put
 * together by stream offset. Throws if any byte of the range was not copied.
 */
export function streamBytes(chunks: CapturedChunk[], connId: string, direction: Direction, start: number, len: number): Buffer {
  const out = Buffer.alloc(len);
  const covered = new Uint8Array(len);
  for (const c of chunks) {
    if (c.connId !== connId || c.direction !== direction) continue;
    const from = Math.max(start, c.streamOffset);
    const to = Math.min(start + len, c.streamOffset + c.data.length);
    if (from >= to) continue;
    c.data.copy(out, from - start, from - c.streamOffset, to - c.streamOffset);
    covered.fill(1, from - start, to - start);
  }
  const gap = covered.indexOf(0);
  if (gap >= 0) throw new Error(`stream ${connId}/${direction} has no bytes at offset ${start + gap}`);
  return out;
}

/** The single connection id among chunks; throws when there are none or several. */
export function onlyConnId(chunks: CapturedChunk[]): string {
  const ids = [...new Set(chunks.map((c) => c.connId))];
  if (ids.length !== 1) throw new Error(`expected one connection, got ${ids.length}: ${describeChunks(chunks)}`);
  return ids[0] as string;
}

export interface RawServer {
  port: number;
  /** Bytes received per accepted connection, keyed by the client's port. */
  received: Map<number, Buffer>;
  close(): Promise<void>;
}

/**
 * A TCP server that records what it receives and, once a blank line has
 * arrived, answers with `response` and closes (or keeps reading if
 * response is null). Knowing both byte streams exactly is the point.
 */
export async function startRawServer(host: string, response: Buffer | null, port = 0): Promise<RawServer> {
  const received = new Map<number, Buffer>();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    const key = s.remotePort ?? 0;
    let buf = Buffer.alloc(0);
    let answered = false;
    s.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      received.set(key, buf);
      if (response && !answered && buf.includes("\r\n\r\n")) {
        answered = true;
        s.end(response);
      }
    });
    s.on("error", () => {});
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export interface RawExchange {
  localPort: number;
  remotePort: number;
  localAddress: string;
  response: Buffer;
}

/** Connects, writes each piece as its own write (with a pause between), reads until the server closes. */
export async function rawExchange(host: string, port: number, pieces: Buffer[], pauseMs = 0): Promise<RawExchange> {
  const s = net.connect({ host, port, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    s.once("connect", () => resolve());
    s.once("error", reject);
  });
  // Read now: a closed socket no longer reports its addresses.
  const localPort = s.localPort ?? 0;
  const remotePort = s.remotePort ?? 0;
  const localAddress = s.localAddress ?? "";
  const parts: Buffer[] = [];
  s.on("data", (d) => parts.push(d));
  const ended = new Promise<void>((resolve) => s.on("close", () => resolve()));
  for (const p of pieces) {
    await new Promise<void>((resolve, reject) => s.write(p, (err) => (err ? reject(err) : resolve())));
    if (pauseMs > 0) await sleep(pauseMs);
  }
  await ended;
  return { localPort, remotePort, localAddress, response: Buffer.concat(parts) };
}

export function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** Runs a command to completion, resolving with its pid and stdout. */
export function runChild(cmd: string, args: string[]): Promise<{ pid: number; stdout: Buffer; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] });
    const out: Buffer[] = [];
    child.stdout?.on("data", (d: Buffer) => out.push(d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ pid: child.pid ?? 0, stdout: Buffer.concat(out), code }));
  });
}

/** Two network namespaces joined by a veth pair, with IPv4 and IPv6 (documentation) addresses. */
export interface NetnsPair {
  a: string;
  b: string;
  ipv4: { a: string; b: string };
  ipv6: { a: string; b: string };
  exec(ns: string, cmd: string, args: string[]): string[];
  remove(): void;
}

export function createNetnsPair(tag: string): NetnsPair {
  const a = `hdrcap-${tag}-a`;
  const b = `hdrcap-${tag}-b`;
  const remove = () => {
    for (const ns of [a, b]) {
      try {
        run("ip", ["netns", "del", ns]);
      } catch {
        // absent
      }
    }
  };
  remove();
  const ipv4 = { a: "192.0.2.1", b: "192.0.2.2" };
  const ipv6 = { a: "2001:db8::1", b: "2001:db8::2" };
  try {
    run("ip", ["netns", "add", a]);
    run("ip", ["netns", "add", b]);
    run("ip", ["link", "add", `hc${tag}a`, "netns", a, "type", "veth", "peer", "name", `hc${tag}b`, "netns", b]);
    for (const [ns, dev, v4, v6] of [
      [a, `hc${tag}a`, ipv4.a, ipv6.a],
      [b, `hc${tag}b`, ipv4.b, ipv6.b],
    ] as const) {
      run("ip", ["-n", ns, "link", "set", "lo", "up"]);
      run("ip", ["-n", ns, "addr", "add", `${v4}/24`, "dev", dev]);
      run("ip", ["-n", ns, "addr", "add", `${v6}/64`, "dev", dev, "nodad"]);
      run("ip", ["-n", ns, "link", "set", dev, "up"]);
    }
  } catch (err) {
    remove();
    throw err;
  }
  return {
    a,
    b,
    ipv4,
    ipv6,
    exec: (ns, cmd, args) => ["ip", "netns", "exec", ns, cmd, ...args],
    remove,
  };
}
