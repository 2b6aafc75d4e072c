/**
 * The whole capture path at the record level: real servers and clients (Node
 * http, raw sockets, curl, Python http.client) over IPv4 and IPv6 loopback and
 * across a veth pair between two network namespaces. Every record both ends
 * produce must equal what the wire carried, field by field.
 */
import { spawn } from "node:child_process";
import http from "node:http";
import type net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import {
  Cleanups,
  type RecordCapture,
  createNetnsPair,
  expectExchange,
  rawConnect,
  recordsOfSide,
  runChild,
  self,
  startRawServer,
  startRecordCapture,
} from "./http-capture-harness.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const cleanups = new Cleanups();
let rc: RecordCapture | undefined;

afterEach(async () => {
  rc?.stop();
  rc = undefined;
  await cleanups.run();
});

/** Request heads with odd case, duplicates, OWS and an empty value: what a parser could get wrong. */
function request(n: number, host: string): Buffer {
  return Buffer.from(
    `GET /exact/${n}?a=1&b=%20x HTTP/1.1\r\nHost: ${host}\r\nuser-agent: hck-raw/${n}\r\nX-Dup: one\r\nx-dup: two\r\nX-OWS: \t spaced value \t\r\nX-Empty:\r\nAccept: */*\r\n\r\n`,
    "latin1",
  );
}

function response(n: number): Buffer {
  const body = `body ${n}\n`;
  return Buffer.from(
    `HTTP/1.1 200 OK\r\nServer: hck-raw\r\nSet-Thing: a=1\r\nSet-Thing: b=2\r\nx-lower-case: yes\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    "latin1",
  );
}

async function nodeServer(host: string): Promise<number> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.setHeader("X-Reply-To", req.url ?? "");
      res.setHeader("x-multi", ["1", "2"]);
      res.setHeader("Content-Length", "2");
      res.end("ok");
    });
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  cleanups.add(() => new Promise((r) => server.close(() => r(undefined))));
  cleanups.add(() => server.closeAllConnections());
  return (server.address() as net.AddressInfo).port;
}

describe("HttpCapture records equal the wire", { timeout: 30_000 }, () => {
  for (const host of ["127.0.0.1", "::1"]) {
    it(`records both ends of raw-client ↔ Node http server exchanges exactly over ${host}`, async () => {
      const port = await nodeServer(host);
      rc = startRecordCapture({ filter: { ports: [port] } });
      const client = await rawConnect(host, port);
      cleanups.add(() => client.close());
      const sent: Buffer[] = [];
      for (let i = 0; i < 3; i++) {
        const req = request(i, host);
        sent.push(req);
        await client.write(req);
        await client.waitCount("\r\n\r\nok", i + 1);
      }
      client.close();
      await rc.waitFor((r) => r.length >= 12, "3 requests + 3 responses on both ends");
      await rc.settle();
      expect(rc.records.length).toBe(12);
      const me = self();
      expectExchange(rc.records, {
        client: client.local,
        server: { ip: host, port },
        requestBytes: Buffer.concat(sent),
        responseBytes: client.received(),
        clientProcess: me,
        serverProcess: me,
      });
      const c = rc.counters();
      expect(c.decoder.paired).toBe(6);
      expect(c.decoder.malformed + c.decoder.resyncs + c.decoder.gaps + c.decoder.unpairedResponses).toBe(0);
      expect(c.kernel.ringbufFull + c.kernel.truncated).toBe(0n);
    });
  }

  it("records a Node http.request client and curl against a raw server over IPv6 loopback exactly", async () => {
    const server = await startRawServer("::1", response);
    cleanups.add(() => server.close());
    rc = startRecordCapture({ filter: { ports: [server.port] } });

    const nodeRes = await new Promise<{ local: { ip: string; port: number } }>((resolve, reject) => {
      const req = http.request(
        { host: "::1", port: server.port, path: "/from-node?x=1", method: "PUT", agent: false, headers: { "X-Node": "yes", "Content-Length": "0" } },
        (res) => {
          res.resume();
          res.on("end", () => resolve({ local: { ip: req.socket!.localAddress!, port: req.socket!.localPort! } }));
        },
      );
      req.on("error", reject);
      req.end();
    });
    const curl = await runChild("curl", [
      "-sS",
      "-o",
      "/dev/null",
      "-H",
      "X-Curl: 1",
      "-H",
      "x-curl: 2",
      "-H",
      "Accept:",
      `http://[::1]:${server.port}/from-curl/a?b=c`,
      `http://[::1]:${server.port}/from-curl/second`,
    ]);
    expect(curl.code, curl.stderr).toBe(0);
    await rc.waitFor((r) => r.length >= 12, "node and curl exchanges on both ends");
    await rc.settle();
    expect(rc.records.length).toBe(12);

    const me = self();
    const conns = [...server.conns.entries()];
    expect(conns.length).toBe(2);
    for (const [key, state] of conns) {
      const clientPort = Number(key.slice(key.lastIndexOf(":") + 1));
      const isNode = clientPort === nodeRes.local.port;
      expectExchange(rc.records, {
        client: { ip: "::1", port: clientPort },
        server: { ip: "::1", port: server.port },
        requestBytes: state.received,
        responseBytes: state.sent,
        clientProcess: isNode ? me : { pid: curl.pid, comm: "curl" },
        serverProcess: me,
      });
    }
  });

  it("records Python http.client requests with duplicate and padded headers exactly", async () => {
    const server = await startRawServer("127.0.0.1", response);
    cleanups.add(() => server.close());
    rc = startRecordCapture({ filter: { ports: [server.port] } });
    const py = await runChild("python3", [path.join(here, "fixtures/http-client.py"), "127.0.0.1", String(server.port)]);
    expect(py.code, py.stderr).toBe(0);
    const out = JSON.parse(py.stdout.toString()) as { pid: number; comm: string; local: { ip: string; port: number }; statuses: number[] };
    expect(out.statuses).toEqual([200, 200]);
    await rc.waitFor((r) => r.length >= 8, "python exchange on both ends");
    await rc.settle();
    expect(rc.records.length).toBe(8);
    const state = server.conns.get(`${out.local.ip}:${out.local.port}`)!;
    expectExchange(rc.records, {
      client: out.local,
      server: { ip: "127.0.0.1", port: server.port },
      requestBytes: state.received,
      responseBytes: state.sent,
      clientProcess: { pid: out.pid, comm: out.comm },
      serverProcess: self(),
    });
    // http.client sent the padded value as is; the record carries it without the OWS.
    const req = recordsOfSide(rc.records, "server", out.local).find((r) => r.kind === "request")!;
    expect(req.headers.filter((h) => h.name === "X-Dup")).toEqual([
      { name: "X-Dup", value: "first" },
      { name: "X-Dup", value: "second" },
    ]);
    expect(req.headers.find((h) => h.name === "X-Spaces")?.value).toBe("padded\tvalue");
  });

  for (const family of ["ipv4", "ipv6"] as const) {
    it(`records curl ↔ raw server across a veth pair between two namespaces (${family})`, async () => {
      const ns = createNetnsPair();
      cleanups.add(() => ns.remove());
      const serverIp = ns[family].b;
      const port = 18000 + Math.floor(Math.random() * 2000); // a fresh namespace: every port is free
      const [scmd, sargs] = ns.argv(ns.b, process.execPath, [path.join(here, "fixtures/exact-http-server.mjs"), serverIp, String(port)]);
      const srv = spawn(scmd, sargs, { stdio: ["ignore", "pipe", "inherit"] });
      cleanups.add(() => srv.kill("SIGKILL"));
      const lines: string[] = [];
      let buffered = "";
      let notify: (() => void) | null = null;
      srv.stdout.on("data", (d: Buffer) => {
        buffered += d.toString();
        const parts = buffered.split("\n");
        buffered = parts.pop()!;
        lines.push(...parts.filter(Boolean));
        notify?.();
      });
      const line = (n: number) =>
        new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`server printed ${lines.length} lines`)), 10_000);
          const check = () => {
            if (lines.length > n) {
              clearTimeout(timer);
              notify = null;
              resolve(lines[n]!);
            }
          };
          notify = check;
          check();
        });
      await line(0);
      rc = startRecordCapture({ filter: { ports: [port] } });

      const host = family === "ipv4" ? serverIp : `[${serverIp}]`;
      const [ccmd, cargs] = ns.argv(ns.a, "curl", [
        "-sS",
        "-o",
        "/dev/null",
        "-H",
        "X-Netns: yes",
        `http://${host}:${port}/one`,
        `http://${host}:${port}/two?z=1`,
      ]);
      const curl = await runChild(ccmd, cargs);
      expect(curl.code, curl.stderr).toBe(0);
      const done = JSON.parse(await line(1)) as { pid: number; comm: string; client: { ip: string; port: number }; received: string; sent: string };
      await rc.waitFor((r) => r.length >= 8, "both ends across the veth");
      await rc.settle();
      expect(rc.records.length).toBe(8);
      expect(done.client.ip).toBe(ns[family].a);
      expectExchange(rc.records, {
        client: done.client,
        server: { ip: serverIp, port },
        requestBytes: Buffer.from(done.received, "base64"),
        responseBytes: Buffer.from(done.sent, "base64"),
        clientProcess: { pid: curl.pid, comm: "curl" },
        serverProcess: { pid: done.pid, comm: done.comm },
      });
    });
  }
});
