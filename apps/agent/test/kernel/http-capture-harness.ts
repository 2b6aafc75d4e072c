/**
 * Shared pieces of the record-level kernel tests (http-capture.*.kernel.test.ts):
 * an HttpCapture that collects records, a deliberately simple wire parser that
 * turns the exact bytes an endpoint sent or received into the records the
 * capture must produce, exact comparison of both sides of an exchange, child
 * processes, nginx in a temp dir and network namespaces (prefix "hck-").
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { expect } from "vitest";
import type { HeaderField, HttpRecord } from "@hdrcap/api/records";
import { HttpCapture, type HttpCaptureCounters, type HttpCaptureOptions } from "../../src/capture/http-capture.ts";

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Exactness tests compare values byte for byte: nothing is redacted. */
export const CLEAR_POLICY = { redactMode: "mask", allowSensitive: true, redactQuery: false } as const;

export interface RecordCapture {
  capture: HttpCapture;
  records: HttpRecord[];
  /** Polls until predicate(records) holds; throws after timeoutMs with what is there. */
  waitFor(predicate: (records: HttpRecord[]) => boolean, what: string, timeoutMs?: number): Promise<void>;
  /** Waits long enough for late records to have been drained (several drain ticks). */
  settle(ms?: number): Promise<void>;
  counters(): HttpCaptureCounters;
  stop(): void;
}

export function startRecordCapture(options: Omit<HttpCaptureOptions, "onRecords"> & { keep?: boolean }): RecordCapture {
  const records: HttpRecord[] = [];
  const capture = HttpCapture.start({
    policy: CLEAR_POLICY,
    drainIntervalMs: 10,
    ...options,
    onRecords: (batch) => {
      if (options.keep !== false) records.push(...batch);
    },
  });
  return {
    capture,
    records,
    async waitFor(predicate, what, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(records)) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; have ${describeRecords(records)}`);
        await sleep(10);
      }
    },
    settle: (ms = 120) => sleep(ms),
    counters: () => capture.counters(),
    stop: () => capture.stop(),
  };
}

export function describeRecords(records: HttpRecord[]): string {
  if (records.length === 0) return "no records";
  const lines = records
    .slice(0, 20)
    .map(
      (r) =>
        `[${r.role} ${r.kind} ${r.src.ip}:${r.src.port}->${r.dst.ip}:${r.dst.port} pid=${r.pid} ${r.comm} ${r.method ?? r.status} ${r.path ?? r.reason} headers=${r.headers.length}]`,
    );
  return `${records.length} records:\n${lines.join("\n")}`;
}

// ---- the wire, parsed independently of the decoder --------------------------

/** The fields of a record that follow from the bytes on the wire alone. */
export interface WireHead {
  kind: "request" | "response";
  method: string | null;
  path: string | null;
  version: string;
  status: number | null;
  reason: string | null;
  headers: HeaderField[];
  headerBytes: number;
}

function headerValue(headers: HeaderField[], name: string): string | undefined {
  return headers.find((h) => h.name.toLowerCase() === name)?.value;
}

/**
 * Splits one direction's byte stream into header blocks. Deliberately minimal
 * (CRLF only, Content-Length or chunked bodies, no body for HEAD answers and
 * 1xx/204/304): the tests only send what it understands, and it shares no
 * code with the decoder under test.
 */
export function parseWire(stream: Buffer, kind: "request" | "response", requestMethods: string[] = []): WireHead[] {
  const out: WireHead[] = [];
  let pos = 0;
  while (pos < stream.length) {
    const end = stream.indexOf("\r\n\r\n", pos, "latin1");
    if (end < 0) throw new Error(`parseWire: incomplete header block at ${pos}`);
    const lines = stream.toString("latin1", pos, end).split("\r\n");
    const start = lines[0]!;
    const headers = lines.slice(1).map((line) => {
      const colon = line.indexOf(":");
      return { name: line.slice(0, colon), value: line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "") };
    });
    let head: WireHead;
    if (kind === "request") {
      const [method, target, version] = start.split(" ");
      head = { kind, method: method!, path: target!, version: version!, status: null, reason: null, headers, headerBytes: end + 4 - pos };
    } else {
      const sp1 = start.indexOf(" ");
      const sp2 = start.indexOf(" ", sp1 + 1);
      head = {
        kind,
        method: null,
        path: null,
        version: start.slice(0, sp1),
        status: Number(start.slice(sp1 + 1, sp2 < 0 ? undefined : sp2)),
        reason: sp2 < 0 ? "" : start.slice(sp2 + 1),
        headers,
        headerBytes: end + 4 - pos,
      };
    }
    out.push(head);
    pos = end + 4;
    const status = head.status ?? 0;
    const method = kind === "response" ? requestMethods[out.filter((h) => (h.status ?? 0) >= 200).length - 1] : undefined;
    if (kind === "response" && (status < 200 || status === 204 || status === 304 || method === "HEAD")) continue;
    const te = headerValue(headers, "transfer-encoding");
    if (te?.toLowerCase() === "chunked") {
      for (;;) {
        const lineEnd = stream.indexOf("\r\n", pos, "latin1");
        const size = parseInt(stream.toString("latin1", pos, lineEnd), 16);
        pos = lineEnd + 2;
        if (size === 0) {
          pos = stream.indexOf("\r\n", pos, "latin1") + 2; // no trailers in these tests
          break;
        }
        pos += size + 2;
      }
    } else {
      pos += Number(headerValue(headers, "content-length") ?? 0);
    }
  }
  return out;
}

// ---- exact comparison --------------------------------------------------------

export interface Endpoint {
  ip: string;
  port: number;
}

export interface ProcessId {
  pid: number;
  comm: string;
}

/** What a record must say, field by field (connectionId and ts excepted). */
interface ExpectedRecord extends WireHead {
  role: "client" | "server";
  src: Endpoint;
  dst: Endpoint;
  pid: number;
  comm: string;
}

function project(r: HttpRecord): ExpectedRecord {
  return {
    kind: r.kind,
    method: r.method,
    path: r.path,
    version: r.version,
    status: r.status,
    reason: r.reason,
    headers: r.headers,
    headerBytes: r.headerBytes,
    role: r.role as "client" | "server",
    src: r.src,
    dst: r.dst,
    pid: r.pid,
    comm: r.comm,
  };
}

/** The records one side (client or server) of the connection from `client` produced, in order. */
export function recordsOfSide(records: HttpRecord[], role: "client" | "server", client: Endpoint): HttpRecord[] {
  return records.filter((r) => {
    if (r.role !== role) return false;
    const peer = r.kind === "request" ? r.src : r.dst;
    return peer.port === client.port && peer.ip === client.ip;
  });
}

export interface Exchange {
  client: Endpoint;
  server: Endpoint;
  /** Every byte the client sent on the connection, and every byte the server sent. */
  requestBytes: Buffer;
  responseBytes: Buffer;
  /** The processes of each end, or null when that end is not expected to be captured. */
  clientProcess: ProcessId | null;
  serverProcess: ProcessId | null;
}

/**
 * Both ends of one connection produced exactly the records its bytes imply:
 * requests and responses in wire order, every field equal, one connection id
 * per side, every final response paired (latency set, >= 0), nothing extra.
 */
export function expectExchange(records: HttpRecord[], x: Exchange): void {
  const requests = parseWire(x.requestBytes, "request");
  const responses = parseWire(x.responseBytes, "response", requests.map((r) => r.method!));
  for (const [role, proc] of [
    ["client", x.clientProcess],
    ["server", x.serverProcess],
  ] as const) {
    const side = recordsOfSide(records, role, x.client);
    if (proc === null) {
      expect(side, `${role} side must not be captured`).toEqual([]);
      continue;
    }
    const expected = (heads: WireHead[], src: Endpoint, dst: Endpoint): ExpectedRecord[] =>
      heads.map((h) => ({ ...h, role, src, dst, pid: proc.pid, comm: proc.comm }));
    expect(side.filter((r) => r.kind === "request").map(project), `${role} side requests`).toEqual(
      expected(requests, x.client, x.server),
    );
    expect(side.filter((r) => r.kind === "response").map(project), `${role} side responses`).toEqual(
      expected(responses, x.server, x.client),
    );
    expect(new Set(side.map((r) => r.connectionId)).size, `${role} side: one connection id`).toBe(1);
    for (const r of side) {
      if (r.kind === "request") expect(r.latencyMs).toBeNull();
      else {
        expect(r.latencyMs, `${role} response latency`).not.toBeNull();
        expect(r.latencyMs!).toBeGreaterThanOrEqual(0);
      }
      expect(r.redacted).toEqual([]);
    }
  }
}

/** The comm of a process's main thread (what the kernel reports for its syscalls). */
export function commOf(pid: number): string {
  return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
}

export function self(): ProcessId {
  return { pid: process.pid, comm: commOf(process.pid) };
}

// ---- sockets -------------------------------------------------------------------

export interface RawServer {
  port: number;
  /** Per accepted connection, keyed by "ip:port" of the client: bytes received and sent. */
  conns: Map<string, { received: Buffer; sent: Buffer }>;
  close(): Promise<void>;
}

/**
 * A TCP server that answers every complete request head (ended by CRLFCRLF;
 * requests have no bodies) with `respond(n)`, n counting from 0 per
 * connection, and records both byte streams exactly.
 */
export async function startRawServer(host: string, respond: (n: number) => Buffer, options: { closeAfter?: number } = {}): Promise<RawServer> {
  const conns = new Map<string, { received: Buffer; sent: Buffer }>();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    const key = `${s.remoteAddress}:${s.remotePort}`;
    const state = { received: Buffer.alloc(0), sent: Buffer.alloc(0) };
    conns.set(key, state);
    let scanned = 0;
    let answered = 0;
    s.on("data", (d) => {
      state.received = Buffer.concat([state.received, d]);
      const out: Buffer[] = [];
      for (;;) {
        const end = state.received.indexOf("\r\n\r\n", scanned, "latin1");
        if (end < 0) break;
        scanned = end + 4;
        out.push(respond(answered++));
      }
      if (out.length > 0) {
        const bytes = Buffer.concat(out);
        state.sent = Buffer.concat([state.sent, bytes]);
        if (options.closeAfter !== undefined && answered >= options.closeAfter) s.end(bytes);
        else s.write(bytes);
      }
    });
    s.on("error", () => {});
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    conns,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A connected client socket that collects what it receives. */
export interface RawClient {
  socket: net.Socket;
  local: Endpoint;
  received(): Buffer;
  /** Writes one buffer as one write and waits until it is handed to the kernel. */
  write(b: Buffer): Promise<void>;
  /** Resolves once `n` bytes have arrived in total (or rejects after timeoutMs). */
  waitBytes(n: number, timeoutMs?: number): Promise<void>;
  /** Resolves once `pattern` occurs `count` times in what arrived. */
  waitCount(pattern: string, count: number, timeoutMs?: number): Promise<void>;
  close(): void;
}

export async function rawConnect(host: string, port: number, localAddress?: string): Promise<RawClient> {
  const socket = net.connect({ host, port, localAddress, noDelay: true });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", () => resolve());
    socket.once("error", reject);
  });
  const parts: Buffer[] = [];
  let total = 0;
  let waiter: (() => void) | null = null;
  socket.on("data", (d: Buffer) => {
    parts.push(d);
    total += d.length;
    waiter?.();
  });
  socket.on("error", () => {});
  const received = () => {
    if (parts.length > 1) parts.splice(0, parts.length, Buffer.concat(parts));
    return parts[0] ?? Buffer.alloc(0);
  };
  const waitUntil = (ok: () => boolean, what: string, timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      if (ok()) return resolve();
      const timer = setTimeout(() => {
        waiter = null;
        reject(new Error(`timed out waiting for ${what}; received ${total} bytes`));
      }, timeoutMs);
      waiter = () => {
        if (!ok()) return;
        clearTimeout(timer);
        waiter = null;
        resolve();
      };
    });
  const countOf = (pattern: string) => {
    const buf = received();
    let n = 0;
    for (let i = buf.indexOf(pattern); i >= 0; i = buf.indexOf(pattern, i + 1)) n++;
    return n;
  };
  return {
    socket,
    local: { ip: socket.localAddress!, port: socket.localPort! },
    received,
    write: (b) => new Promise<void>((resolve, reject) => socket.write(b, (err) => (err ? reject(err) : resolve()))),
    waitBytes: (n, timeoutMs = 5000) => waitUntil(() => total >= n, `${n} bytes`, timeoutMs),
    waitCount: (pattern, count, timeoutMs = 5000) => waitUntil(() => countOf(pattern) >= count, `${count} x ${pattern}`, timeoutMs),
    close: () => socket.destroy(),
  };
}

export async function waitForPort(host: string, port: number, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, host, () => {
        s.destroy();
        resolve(true);
      });
      s.on("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port}`);
    await sleep(25);
  }
}

/** A port nothing listens on right now (bound and released). */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

// ---- child processes ------------------------------------------------------------

export interface ChildResult {
  pid: number;
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs a command to completion (killed after timeoutMs). */
export function runChild(cmd: string, args: string[], timeoutMs = 20_000): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    let err = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.stdout?.on("data", (d: Buffer) => out.push(d));
    child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ pid: child.pid ?? 0, code, stdout: Buffer.concat(out), stderr: err });
    });
  });
}

// ---- nginx ------------------------------------------------------------------------

export interface Nginx {
  port: number;
  dir: string;
  /** Pids of the worker processes (they do the socket I/O). */
  workerPids(): number[];
  stop(): Promise<void>;
}

/** nginx from the distribution with its own prefix and config in a temp dir, as root, on a free port. */
export async function startNginx(files: Record<string, Buffer>, options: { workers?: number; host?: string } = {}): Promise<Nginx> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "hck-nginx-"));
  for (const [name, body] of Object.entries(files)) writeFileSync(path.join(dir, name), body);
  const host = options.host ?? "127.0.0.1";
  const port = await freePort(host);
  writeFileSync(
    path.join(dir, "nginx.conf"),
    `daemon off; user root; worker_processes ${options.workers ?? 1}; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 1024; }
http {
  access_log off; sendfile on; tcp_nopush off; keepalive_timeout 30; keepalive_requests 100000;
  default_type application/octet-stream;
  client_body_temp_path ${dir}/cb; proxy_temp_path ${dir}/px; fastcgi_temp_path ${dir}/fc; uwsgi_temp_path ${dir}/uw; scgi_temp_path ${dir}/sc;
  server { listen ${host}:${port}; root ${dir}; }
}
`,
  );
  const master = spawn("nginx", ["-c", path.join(dir, "nginx.conf"), "-p", dir], { stdio: "ignore" });
  const stop = async () => {
    if (master.exitCode === null && master.signalCode === null) {
      const exited = new Promise((r) => master.once("exit", r));
      master.kill("SIGTERM");
      await Promise.race([exited, sleep(2000)]);
      if (master.exitCode === null && master.signalCode === null) master.kill("SIGKILL");
    }
    // Workers of a master killed hard would linger: end any left by pid.
    for (const pid of workers()) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const workers = () => {
    try {
      return execFileSync("pgrep", ["-P", String(master.pid)], { encoding: "utf8" })
        .split("\n")
        .filter(Boolean)
        .map(Number);
    } catch {
      return [];
    }
  };
  try {
    await waitForPort(host, port);
    const deadline = Date.now() + 5000;
    while (workers().length < (options.workers ?? 1)) {
      if (Date.now() > deadline) throw new Error("nginx workers did not start");
      await sleep(20);
    }
  } catch (err) {
    await stop();
    throw new Error(`nginx did not start: ${(err as Error).message}\n${safeRead(path.join(dir, "error.log"))}`);
  }
  return { port, dir, workerPids: workers, stop };
}

function safeRead(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}

// ---- network namespaces -------------------------------------------------------------

/** Two namespaces "hck-<random>-a|b" joined by a veth pair with 192.0.2.0/24 and 2001:db8::/64 addresses. */
export interface NetnsPair {
  a: string;
  b: string;
  ipv4: { a: string; b: string };
  ipv6: { a: string; b: string };
  /** argv that runs cmd inside namespace ns (ip netns exec keeps the pid: it execs). */
  argv(ns: string, cmd: string, args: string[]): [string, string[]];
  remove(): void;
}

export function createNetnsPair(): NetnsPair {
  const tag = randomBytes(3).toString("hex");
  const a = `hck-${tag}-a`;
  const b = `hck-${tag}-b`;
  const devA = `hck${tag}a`;
  const devB = `hck${tag}b`;
  const ip = (...args: string[]) => execFileSync("ip", args, { stdio: "pipe" });
  const remove = () => {
    for (const ns of [a, b]) {
      try {
        ip("netns", "del", ns); // takes its end of the veth pair with it
      } catch {
        // absent
      }
    }
  };
  const ipv4 = { a: "192.0.2.1", b: "192.0.2.2" };
  const ipv6 = { a: "2001:db8::1", b: "2001:db8::2" };
  try {
    ip("netns", "add", a);
    ip("netns", "add", b);
    ip("link", "add", devA, "netns", a, "type", "veth", "peer", "name", devB, "netns", b);
    for (const [ns, dev, v4, v6] of [
      [a, devA, ipv4.a, ipv6.a],
      [b, devB, ipv4.b, ipv6.b],
    ] as const) {
      ip("-n", ns, "link", "set", "lo", "up");
      ip("-n", ns, "addr", "add", `${v4}/24`, "dev", dev);
      ip("-n", ns, "addr", "add", `${v6}/64`, "dev", dev, "nodad");
      ip("-n", ns, "link", "set", dev, "up");
    }
  } catch (err) {
    remove();
    throw err;
  }
  return { a, b, ipv4, ipv6, argv: (ns, cmd, args) => ["ip", ["netns", "exec", ns, cmd, ...args]], remove };
}

/** Cleanups registered by a test, run in reverse order even when the test failed. */
export class Cleanups {
  private readonly fns: (() => unknown)[] = [];
  add(fn: () => unknown): void {
    this.fns.push(fn);
  }
  async run(): Promise<void> {
    const errors: unknown[] = [];
    for (const fn of this.fns.splice(0).reverse()) {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw errors[0];
  }
}

/**
 * How many complete messages the start of `stream` holds (heads and bodies;
 * same framing rules as parseWire), for clients that wait for responses.
 */
export function countCompleteMessages(stream: Buffer, kind: "request" | "response", requestMethods: string[] = []): number {
  let n = 0;
  let pos = 0;
  for (;;) {
    const end = stream.indexOf("\r\n\r\n", pos, "latin1");
    if (end < 0) return n;
    const head = parseWire(stream.subarray(pos, end + 4), kind, [requestMethods[n] ?? "GET"])[0]!;
    pos = end + 4;
    const status = head.status ?? 0;
    const bodyless = kind === "response" && (status < 200 || status === 204 || status === 304 || requestMethods[n] === "HEAD");
    if (!bodyless) pos += Number(head.headers.find((h) => h.name.toLowerCase() === "content-length")?.value ?? 0);
    if (pos > stream.length) return n;
    n++;
  }
}
