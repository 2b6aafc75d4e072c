/**
 * Socket capture against the real kernel: real sockets, real programs; the
 * bytes reassembled from chunks must equal the bytes on the wire exactly.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import type { CapturedChunk } from "../../src/capture/chunk.ts";
import {
  type Capture,
  chunksOfSocket,
  createNetnsPair,
  describeChunks,
  onlyConnId,
  rawExchange,
  runChild,
  sleep,
  startCapture,
  startRawServer,
  streamBytes,
} from "./capture-harness.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const RESPONSE = Buffer.from(
  "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Hdrcap: raw\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n",
);

let capture: Capture | undefined;
const cleanups: (() => unknown)[] = [];

afterEach(async () => {
  capture?.source.close();
  capture = undefined;
  for (const c of cleanups.splice(0).reverse()) await c();
});

function request(pathname: string, extra = ""): Buffer {
  return Buffer.from(`GET ${pathname} HTTP/1.1\r\nHost: hdrcap.test\r\nX-Trace: ${pathname}\r\n${extra}Connection: close\r\n\r\n`);
}

const hasBytes = (chunks: CapturedChunk[], localPort: number, direction: "ingress" | "egress", n: number) =>
  chunksOfSocket(chunks, localPort)
    .filter((c) => c.direction === direction)
    .reduce((sum, c) => sum + c.data.length, 0) >= n;

describe("socket capture", { timeout: 30_000 }, () => {
  it("captures both ends of a Node http exchange over IPv4 loopback byte for byte", async () => {
    const server = http.createServer((_req, res) => {
      res.setHeader("X-Reply", "1");
      res.end("hello");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    cleanups.push(() => new Promise((r) => server.close(r)));
    const port = (server.address() as net.AddressInfo).port;
    capture = startCapture({ ports: [port] });

    const before = BigInt(Date.now()) * 1_000_000n;
    const req = request("/ipv4");
    const ex = await rawExchange("127.0.0.1", port, [req]);
    const after = BigInt(Date.now()) * 1_000_000n;
    await capture.waitFor((c) => hasBytes(c, ex.localPort, "ingress", ex.response.length) && hasBytes(c, port, "egress", ex.response.length), "both ends");

    const client = chunksOfSocket(capture.chunks, ex.localPort, port);
    const srv = chunksOfSocket(capture.chunks, port, ex.localPort);
    const clientConn = onlyConnId(client);
    const serverConn = onlyConnId(srv);
    expect(clientConn).not.toBe(serverConn);

    expect(streamBytes(client, clientConn, "egress", 0, req.length)).toEqual(req);
    expect(streamBytes(client, clientConn, "ingress", 0, ex.response.length)).toEqual(ex.response);
    expect(streamBytes(srv, serverConn, "ingress", 0, req.length)).toEqual(req);
    expect(streamBytes(srv, serverConn, "egress", 0, ex.response.length)).toEqual(ex.response);

    for (const c of client) {
      expect(c.role).toBe("client");
      expect(c.local).toEqual({ ip: "127.0.0.1", port: ex.localPort });
      expect(c.remote).toEqual({ ip: "127.0.0.1", port });
    }
    for (const c of srv) {
      expect(c.role).toBe("server");
      expect(c.local).toEqual({ ip: "127.0.0.1", port });
      expect(c.remote).toEqual({ ip: "127.0.0.1", port: ex.localPort });
    }
    for (const c of capture.chunks) {
      expect(c.tgid).toBe(process.pid);
      expect(c.pid).toBe(process.pid); // the event loop thread does the I/O
      expect(c.comm.startsWith("node") || c.comm.startsWith("MainThread")).toBe(true);
      expect(c.tsNs >= before - 50_000_000n && c.tsNs <= after + 50_000_000n).toBe(true);
      expect(typeof c.cgroupId).toBe("bigint");
    }
  });

  it("captures curl and a Node http.request client against a raw server over IPv6 loopback", async () => {
    const server = await startRawServer("::1", RESPONSE);
    cleanups.push(() => server.close());
    capture = startCapture({ ports: [server.port] });

    const curl = await runChild("curl", ["-sS", "-H", "X-From: curl", `http://[::1]:${server.port}/curl`]);
    expect(curl.code).toBe(0);
    expect(curl.stdout.toString()).toBe("ok\n");

    const nodeRes = await new Promise<number>((resolve, reject) => {
      const r = http.request({ host: "::1", port: server.port, path: "/node", headers: { "X-From": "node" } }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      });
      r.on("error", reject);
      r.end();
    });
    expect(nodeRes).toBe(200);

    expect(server.received.size).toBe(2);
    for (const [clientPort, sent] of server.received) {
      await capture.waitFor((c) => hasBytes(c, clientPort, "ingress", RESPONSE.length), `client ${clientPort}`);
      const client = chunksOfSocket(capture.chunks, clientPort, server.port);
      const srv = chunksOfSocket(capture.chunks, server.port, clientPort);
      const cc = onlyConnId(client);
      const sc = onlyConnId(srv);
      expect(streamBytes(client, cc, "egress", 0, sent.length)).toEqual(sent);
      expect(streamBytes(client, cc, "ingress", 0, RESPONSE.length)).toEqual(RESPONSE);
      expect(streamBytes(srv, sc, "ingress", 0, sent.length)).toEqual(sent);
      expect(streamBytes(srv, sc, "egress", 0, RESPONSE.length)).toEqual(RESPONSE);
      for (const c of [...client, ...srv]) {
        expect(c.local.ip).toBe("::1");
        expect(c.remote.ip).toBe("::1");
      }
      for (const c of client) expect(c.role).toBe("client");
      for (const c of srv) expect(c.role).toBe("server");
      const isCurl = sent.includes("X-From: curl");
      for (const c of client) expect(c.tgid).toBe(isCurl ? curl.pid : process.pid);
      if (isCurl) for (const c of client) expect(c.comm).toBe("curl");
    }
  });

  it("captures traffic between two network namespaces over veth, IPv4 and IPv6", async () => {
    const ns = createNetnsPair("t1");
    cleanups.push(() => ns.remove());
    const port = 18080;
    capture = startCapture({ ports: [port] });

    for (const [family, serverIp, clientIp, urlHost] of [
      ["ipv4", ns.ipv4.a, ns.ipv4.b, ns.ipv4.a],
      ["ipv6", ns.ipv6.a, ns.ipv6.b, `[${ns.ipv6.a}]`],
    ] as const) {
      const [cmd, ...args] = ns.exec(ns.a, process.execPath, [path.join(here, "fixtures/raw-http-server.mjs"), serverIp, String(port)]);
      const server = spawn(cmd as string, args, { stdio: ["ignore", "pipe", "inherit"] });
      const lines: string[] = [];
      let buffered = "";
      server.stdout.on("data", (d: Buffer) => {
        buffered += d.toString();
        const parts = buffered.split("\n");
        buffered = parts.pop() ?? "";
        lines.push(...parts);
      });
      const exited = new Promise<void>((r) => server.on("close", () => r()));
      cleanups.push(() => server.kill("SIGKILL"));
      const deadline = Date.now() + 10000;
      while (!lines.some((l) => l.includes("ready"))) {
        if (Date.now() > deadline) throw new Error(`${family}: netns server did not start`);
        await sleep(20);
      }
      const [ccmd, ...cargs] = ns.exec(ns.b, "curl", ["-sS", "-H", `X-Family: ${family}`, `http://${urlHost}:${port}/${family}`]);
      const curl = await runChild(ccmd as string, cargs);
      expect(curl.code).toBe(0);
      await exited;
      const report = JSON.parse(lines.find((l) => l.includes("received")) ?? "{}") as {
        remotePort: number;
        received: string;
        sent: string;
      };
      const sent = Buffer.from(report.received, "base64");
      const response = Buffer.from(report.sent, "base64");

      await capture.waitFor((c) => hasBytes(c, report.remotePort, "ingress", response.length) && hasBytes(c, port, "egress", response.length), `${family} exchange`);
      const client = chunksOfSocket(capture.chunks, report.remotePort, port);
      const srv = chunksOfSocket(capture.chunks, port, report.remotePort);
      const cc = onlyConnId(client);
      const sc = onlyConnId(srv);
      expect(streamBytes(client, cc, "egress", 0, sent.length)).toEqual(sent);
      expect(streamBytes(srv, sc, "ingress", 0, sent.length)).toEqual(sent);
      expect(streamBytes(srv, sc, "egress", 0, response.length)).toEqual(response);
      expect(streamBytes(client, cc, "ingress", 0, response.length)).toEqual(response);
      for (const c of client) {
        expect(c).toMatchObject({ role: "client", local: { ip: clientIp }, remote: { ip: serverIp, port } });
        expect(c.comm).toBe("curl");
      }
      for (const c of srv) {
        expect(c).toMatchObject({ role: "server", local: { ip: serverIp, port }, remote: { ip: clientIp } });
        expect(c.tgid).toBe(server.pid); // `ip netns exec` execs node in place
      }
    }
  });

  it("keeps stream offsets exact across nginx's writev headers and sendfile bodies on a keep-alive connection", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "hdrcap-nginx-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const fileSize = 100 * 1024 + 17;
    writeFileSync(path.join(dir, "body.bin"), Buffer.alloc(fileSize, 0x61));
    const port = 18090;
    writeFileSync(
      path.join(dir, "nginx.conf"),
      `daemon off; master_process off; worker_processes 1; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 64; }
http {
  access_log off; sendfile on; tcp_nopush off; keepalive_timeout 10;
  client_body_temp_path ${dir}/cb; proxy_temp_path ${dir}/px; fastcgi_temp_path ${dir}/fc; uwsgi_temp_path ${dir}/uw; scgi_temp_path ${dir}/sc;
  server { listen 127.0.0.1:${port}; root ${dir}; }
}
`,
    );
    capture = startCapture({ ports: [port] });
    const nginx = spawn("nginx", ["-c", path.join(dir, "nginx.conf"), "-p", dir], { stdio: "ignore" });
    cleanups.push(() => nginx.kill("SIGKILL"));
    for (let i = 0; ; i++) {
      const ok = await new Promise<boolean>((resolve) => {
        const s = net.connect(port, "127.0.0.1", () => {
          s.destroy();
          resolve(true);
        });
        s.on("error", () => resolve(false));
      });
      if (ok) break;
      if (i > 100) throw new Error("nginx did not start");
      await sleep(50);
    }
    await capture.settle(50);
    capture.chunks.length = 0;

    const url = `http://127.0.0.1:${port}/body.bin`;
    const curl = await runChild("curl", ["-sS", "-o", "/dev/null", "-o", "/dev/null", url, url]);
    expect(curl.code).toBe(0);

    const starts = (c: CapturedChunk[]) => c.filter((x) => x.data.subarray(0, 9).toString() === "HTTP/1.1 ");
    await capture.waitFor(
      (c) => starts(chunksOfSocket(c, port).filter((x) => x.direction === "egress")).length === 2,
      "two nginx responses",
    );
    const srv = chunksOfSocket(capture.chunks, port).filter((c) => c.tgid === nginx.pid);
    const sc = onlyConnId(srv);
    const responses = starts(srv.filter((c) => c.direction === "egress")).sort((a, b) => a.streamOffset - b.streamOffset);
    const [first, second] = responses as [CapturedChunk, CapturedChunk];
    const head1 = first.data.subarray(0, first.data.indexOf("\r\n\r\n") + 4);
    expect(first.streamOffset).toBe(0);
    // The second header block starts right after the first response's body,
    // which went out with sendfile and was never copied.
    expect(second.streamOffset).toBe(head1.length + fileSize);

    // curl's side of the same TCP stream has the same offsets.
    const clientPort = srv[0]?.remote.port ?? 0;
    await capture.waitFor((c) => chunksOfSocket(c, clientPort, port).some((x) => x.streamOffset === second.streamOffset), "curl second response");
    const cc = onlyConnId(chunksOfSocket(capture.chunks, clientPort, port));
    const head2 = second.data.subarray(0, second.data.indexOf("\r\n\r\n") + 4);
    expect(streamBytes(capture.chunks, cc, "ingress", 0, head1.length)).toEqual(head1);
    expect(streamBytes(capture.chunks, cc, "ingress", second.streamOffset, head2.length)).toEqual(head2);
    expect(streamBytes(srv, sc, "ingress", 0, 20)).toEqual(Buffer.from("GET /body.bin HTTP/1"));
    expect(capture.source.counters().bytesUncopied).toBeGreaterThanOrEqual(BigInt(2 * fileSize));
  });

  it("does not capture non-HTTP traffic on a filtered port", async () => {
    const server = await startRawServer("127.0.0.1", RESPONSE);
    cleanups.push(() => server.close());
    capture = startCapture({ ports: [server.port] });
    const notHttp = await rawExchange("127.0.0.1", server.port, [Buffer.from("HELLO hdrcap\r\nthis is not http\r\n\r\n")]);
    expect(notHttp.response).toEqual(RESPONSE);
    // A positive control on the same port after it, so "nothing" means something.
    const req = request("/control");
    const control = await rawExchange("127.0.0.1", server.port, [req]);
    await capture.waitFor((c) => hasBytes(c, control.localPort, "ingress", RESPONSE.length), "the HTTP control exchange");
    await capture.settle();
    expect(chunksOfSocket(capture.chunks, notHttp.localPort)).toEqual([]);
    expect(capture.chunks.filter((c) => c.remote.port === notHttp.localPort)).toEqual([]);
    expect(capture.source.counters().connsNotHttp).toBeGreaterThanOrEqual(2n);
  });

  it("applies port and tgid filter changes while running", async () => {
    const s1 = await startRawServer("127.0.0.1", RESPONSE);
    const s2 = await startRawServer("127.0.0.1", RESPONSE);
    cleanups.push(() => s1.close(), () => s2.close());
    capture = startCapture({ ports: [s1.port] });
    const ports = (chunks: CapturedChunk[]) => new Set(chunks.flatMap((c) => [c.local.port, c.remote.port]));

    // Only s1.
    const a1 = await rawExchange("127.0.0.1", s1.port, [request("/a1")]);
    const a2 = await rawExchange("127.0.0.1", s2.port, [request("/a2")]);
    await capture.waitFor((c) => hasBytes(c, a1.localPort, "ingress", RESPONSE.length), "s1 exchange");
    await capture.settle();
    expect(ports(capture.chunks).has(s1.port)).toBe(true);
    expect(ports(capture.chunks).has(s2.port)).toBe(false);
    expect(ports(capture.chunks).has(a2.localPort)).toBe(false);

    // Switch to s2 while running.
    capture.source.updateFilter({ ports: [s2.port] });
    capture.chunks.length = 0;
    const b1 = await rawExchange("127.0.0.1", s1.port, [request("/b1")]);
    const b2 = await rawExchange("127.0.0.1", s2.port, [request("/b2")]);
    await capture.waitFor((c) => hasBytes(c, b2.localPort, "ingress", RESPONSE.length), "s2 exchange");
    await capture.settle();
    expect(ports(capture.chunks).has(s2.port)).toBe(true);
    expect(ports(capture.chunks).has(b1.localPort)).toBe(false);

    // A tgid filter that excludes this process: nothing, then include it again.
    capture.source.updateFilter({ ports: [], tgids: [1] });
    capture.chunks.length = 0;
    await rawExchange("127.0.0.1", s1.port, [request("/c1")]);
    await capture.settle();
    expect(describeChunks(capture.chunks)).toBe("no chunks");
    capture.source.updateFilter({ tgids: [process.pid] });
    const d1 = await rawExchange("127.0.0.1", s1.port, [request("/d1")]);
    await capture.waitFor((c) => hasBytes(c, d1.localPort, "ingress", RESPONSE.length), "tgid-included exchange");
    expect(capture.chunks.every((c) => c.tgid === process.pid)).toBe(true);
    expect(capture.source.currentFilter()).toMatchObject({ ports: [], tgids: [process.pid] });
  });

  it("captures a 20 KiB header block sent in several writes completely with a 64 KiB capture length", async () => {
    const server = await startRawServer("127.0.0.1", RESPONSE);
    cleanups.push(() => server.close());
    capture = startCapture({ ports: [server.port], captureBytes: 64 * 1024 });
    const lines: string[] = [];
    for (let i = 0; lines.join("").length < 20 * 1024; i++) lines.push(`X-Big-${i}: ${String(i).padStart(4, "0")}-${"v".repeat(90)}\r\n`);
    const block = Buffer.from(`POST /big HTTP/1.1\r\nHost: hdrcap.test\r\n${lines.join("")}Content-Length: 0\r\n\r\n`);
    expect(block.length).toBeGreaterThan(20 * 1024);
    const pieces = [0, 1, 2, 3, 4].map((i) => block.subarray(Math.floor((i * block.length) / 5), Math.floor(((i + 1) * block.length) / 5)));
    const ex = await rawExchange("127.0.0.1", server.port, pieces, 20);
    await capture.waitFor((c) => hasBytes(c, server.port, "ingress", block.length) && hasBytes(c, ex.localPort, "egress", block.length), "the big header block");
    const client = chunksOfSocket(capture.chunks, ex.localPort, server.port);
    const srv = chunksOfSocket(capture.chunks, server.port, ex.localPort);
    expect(streamBytes(client, onlyConnId(client), "egress", 0, block.length)).toEqual(block);
    expect(streamBytes(srv, onlyConnId(srv), "ingress", 0, block.length)).toEqual(block);
    expect(client.filter((c) => c.direction === "egress").length).toBeGreaterThanOrEqual(5);

    // The same block in one write: split into chunk events of at most 16 KiB.
    capture.chunks.length = 0;
    const one = await rawExchange("127.0.0.1", server.port, [block]);
    await capture.waitFor((c) => hasBytes(c, one.localPort, "egress", block.length), "the single-write block");
    const single = chunksOfSocket(capture.chunks, one.localPort, server.port).filter((c) => c.direction === "egress");
    expect(streamBytes(single, onlyConnId(single), "egress", 0, block.length)).toEqual(block);
    expect(single.length).toBe(2);
    expect(single.map((c) => [c.streamOffset, c.data.length, c.length])).toEqual([
      [0, 16384, 16384],
      [16384, block.length - 16384, block.length - 16384],
    ]);
  });

  it("with the default 4 KiB capture length marks the uncopied rest of a 20 KiB write as a gap and counts it", async () => {
    const server = await startRawServer("127.0.0.1", null);
    cleanups.push(() => server.close());
    capture = startCapture({ ports: [server.port] });
    const big = Buffer.from(`GET /gap HTTP/1.1\r\nX-Pad: ${"p".repeat(20 * 1024)}\r\n\r\n`);
    const next = request("/after-gap");
    const s = net.connect(server.port, "127.0.0.1");
    cleanups.push(() => s.destroy());
    await new Promise<void>((r) => s.once("connect", () => r()));
    await new Promise<void>((r) => s.write(big, () => r()));
    await sleep(30);
    await new Promise<void>((r) => s.write(next, () => r()));
    await capture.waitFor((c) => chunksOfSocket(c, s.localPort ?? 0).filter((x) => x.direction === "egress").length >= 2, "both writes");
    const egress = chunksOfSocket(capture.chunks, s.localPort ?? 0).filter((c) => c.direction === "egress");
    expect(egress.map((c) => [c.streamOffset, c.data.length, c.length])).toEqual([
      [0, 4096, big.length],
      [big.length, next.length, next.length],
    ]);
    expect(egress[0]?.data).toEqual(big.subarray(0, 4096));
    expect(egress[1]?.data).toEqual(next);
    const counters = capture.source.counters();
    expect(counters.truncated).toBeGreaterThanOrEqual(1n);
    expect(counters.bytesUncopied).toBeGreaterThanOrEqual(BigInt(big.length - 4096));
  });

  it("captures sendmsg/recvmsg with several iovecs (Python client)", async () => {
    const server = await startRawServer("127.0.0.1", RESPONSE);
    cleanups.push(() => server.close());
    capture = startCapture({ ports: [server.port] });
    const script = `
import socket, sys, json
s = socket.create_connection(("127.0.0.1", ${server.port}))
parts = [b"GET /iov HTTP/1.1\\r\\n", b"Host: hdrcap.test\\r\\n", b"X-Iov: ", b"several", b"\\r\\nConnection: close\\r\\n\\r\\n"]
s.sendmsg(parts)
got = b""
while True:
    a, b = bytearray(7), bytearray(4096)
    n = s.recvmsg_into([a, b])[0]
    if n == 0:
        break
    got += (bytes(a) + bytes(b))[:n]
print(json.dumps({"port": s.getsockname()[1], "got": got.decode("latin1")}))
`;
    const py = await runChild("python3", ["-c", script]);
    expect(py.code).toBe(0);
    const { port: clientPort, got } = JSON.parse(py.stdout.toString()) as { port: number; got: string };
    expect(Buffer.from(got, "latin1")).toEqual(RESPONSE);
    const sent = Buffer.from("GET /iov HTTP/1.1\r\nHost: hdrcap.test\r\nX-Iov: several\r\nConnection: close\r\n\r\n");
    await capture.waitFor((c) => hasBytes(c, clientPort, "ingress", RESPONSE.length), "python exchange");
    const client = chunksOfSocket(capture.chunks, clientPort, server.port);
    const cc = onlyConnId(client);
    expect(streamBytes(client, cc, "egress", 0, sent.length)).toEqual(sent);
    expect(streamBytes(client, cc, "ingress", 0, RESPONSE.length)).toEqual(RESPONSE);
    for (const c of client) expect(c).toMatchObject({ role: "client", tgid: py.pid, comm: "python3" });
  });

  it("reports summed per-CPU counters", async () => {
    const server = await startRawServer("127.0.0.1", RESPONSE);
    cleanups.push(() => server.close());
    capture = startCapture({ ports: [server.port] });
    const ex = await rawExchange("127.0.0.1", server.port, [request("/count")]);
    await capture.waitFor((c) => hasBytes(c, ex.localPort, "ingress", RESPONSE.length), "exchange");
    const counters = capture.source.counters();
    expect(counters.chunksEmitted).toBe(BigInt(capture.chunks.length));
    expect(counters.recordsDrained).toBe(BigInt(capture.chunks.length));
    expect(counters.connsHttp).toBe(2n);
    expect(counters.syscallsSeen).toBeGreaterThanOrEqual(4n);
    expect(counters.ringbufFull).toBe(0n);
    expect(counters.recordsMalformed).toBe(0n);
  });
});
