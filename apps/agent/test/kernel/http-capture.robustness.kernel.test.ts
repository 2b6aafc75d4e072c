/**
 * What is not HTTP stays out: a non-HTTP protocol on a filtered port yields no
 * records (the kernel classifies and skips it) while HTTP on the next port is
 * recorded; garbage sent to an HTTP port never yields a record, never throws,
 * and is accounted in the decoder's counters.
 */
import { randomBytes } from "node:crypto";
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { HttpCaptureCounters } from "../../src/capture/http-capture.ts";
import {
  Cleanups,
  type RecordCapture,
  expectExchange,
  rawConnect,
  recordsOfSide,
  self,
  sleep,
  startRawServer,
  startRecordCapture,
} from "./http-capture-harness.ts";

const cleanups = new Cleanups();
let rc: RecordCapture | undefined;

afterEach(async () => {
  rc?.stop();
  rc = undefined;
  await cleanups.run();
});

const HOST = "127.0.0.1";

/** Listens on two consecutive free ports; `onConn` serves the first, the second is HTTP. */
async function listenPair(onConn: (s: net.Socket) => void): Promise<{ port: number; servers: net.Server[] }> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const first = net.createServer(onConn);
    await new Promise<void>((r) => first.listen(0, HOST, r));
    const port = (first.address() as net.AddressInfo).port;
    const second = net.createServer();
    const ok = await new Promise<boolean>((resolve) => {
      second.once("error", () => resolve(false));
      second.listen(port + 1, HOST, () => resolve(true));
    });
    if (ok) {
      second.close();
      return { port, servers: [first] };
    }
    first.close();
  }
  throw new Error("no two consecutive free ports");
}

async function exchange(port: number, send: Buffer, expectBytes: number): Promise<Buffer> {
  const c = await rawConnect(HOST, port);
  await c.write(send);
  await c.waitBytes(expectBytes);
  c.close();
  return c.received();
}

describe("HttpCapture keeps non-HTTP out", { timeout: 30_000 }, () => {
  it("records nothing for binary echo, Redis and SMTP on one port, counts them as not HTTP, and records HTTP on the next port", async () => {
    // Port P: speaks SMTP first when the client says nothing within 30 ms, otherwise echoes.
    const { port, servers } = await listenPair((s) => {
      let spoke = false;
      const greet = setTimeout(() => {
        if (!spoke) s.write("220 hck.test ESMTP ready\r\n");
      }, 30);
      s.on("data", (d) => {
        spoke = true;
        clearTimeout(greet);
        if (d.toString("latin1").startsWith("*1\r\n$4\r\nPING")) s.write("+PONG\r\n");
        else if (d.toString("latin1").startsWith("EHLO")) s.write("250-hck.test\r\n250 OK\r\n");
        else s.write(d);
      });
      s.on("error", () => {});
    });
    cleanups.add(() => servers.forEach((s) => s.close()));
    const http = await startRawServer(HOST, () => Buffer.from("HTTP/1.1 204 No Content\r\nX-Next-Port: yes\r\n\r\n"));
    cleanups.add(() => http.close());
    // The HTTP server listens wherever it could; the filter covers both.
    rc = startRecordCapture({ filter: { ports: [port, port + 1, http.port] } });
    const before = rc.counters().kernel;

    const binary = Buffer.concat([Buffer.from([0x00, 0xff, 0x13, 0x37]), randomBytes(2000)]);
    expect((await exchange(port, binary, binary.length)).equals(binary)).toBe(true);
    expect((await exchange(port, Buffer.from("*1\r\n$4\r\nPING\r\n"), 7)).toString()).toBe("+PONG\r\n");
    const smtp = await rawConnect(HOST, port);
    await smtp.waitBytes(26);
    await smtp.write(Buffer.from("EHLO client.hck.test\r\n"));
    await smtp.waitBytes(26 + 22);
    smtp.close();

    const client = await rawConnect(HOST, http.port);
    cleanups.add(() => client.close());
    const req = Buffer.from(`GET /next-port HTTP/1.1\r\nHost: ${HOST}:${http.port}\r\n\r\n`);
    await client.write(req);
    await client.waitCount("204", 1);
    await rc.waitFor((r) => r.length >= 4, "the HTTP exchange on both ends");
    await rc.settle(150);

    expect(rc.records.filter((r) => r.src.port === port || r.dst.port === port)).toEqual([]);
    expect(rc.records.length).toBe(4);
    expectExchange(rc.records, {
      client: client.local,
      server: { ip: HOST, port: http.port },
      requestBytes: req,
      responseBytes: client.received(),
      clientProcess: self(),
      serverProcess: self(),
    });
    const after = rc.counters().kernel;
    // Three connections, each seen from both ends.
    expect(after.connsNotHttp - before.connsNotHttp).toBe(6n);
    expect(after.connsHttp - before.connsHttp).toBe(2n);
  });
});

describe("HttpCapture survives garbage on an HTTP port", { timeout: 30_000 }, () => {
  const sum = (c: HttpCaptureCounters) => c.decoder.malformed + c.decoder.resyncs + c.decoder.oversize;

  it("yields no record for garbage, counts it, and records the valid requests that follow exactly", async () => {
    // A sink: reads and never answers, so any response record would be bogus too.
    const server = await startRawServer(HOST, () => Buffer.alloc(0));
    cleanups.add(() => server.close());
    rc = startRecordCapture({ filter: { ports: [server.port], captureBytes: 65536 } });
    const me = self();

    const cases: { name: string; garbage: Buffer[] }[] = [
      { name: "binary after a method token", garbage: [Buffer.concat([Buffer.from("GET "), randomBytes(3000)])] },
      { name: "truncated start line", garbage: [Buffer.from("GET /x HTT\r\n\r\n")] },
      { name: "header line without a colon", garbage: [Buffer.from("GET /bad HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n")] },
      { name: "prose after a status-like start", garbage: [Buffer.from("HTTP/1.1 abc nope\r\nnot: a response\r\n\r\n")] },
      {
        name: "a 100 KiB header line",
        garbage: [Buffer.from(`POST /huge HTTP/1.1\r\nX-Huge: ${"h".repeat(100 * 1024)}\r\n\r\n`)],
      },
      {
        name: "a header block over the 64 KiB limit in several writes",
        garbage: Array.from({ length: 5 }, (_, i) =>
          Buffer.from(`${i === 0 ? "GET /big HTTP/1.1\r\n" : ""}${`X-Fill-${i}: ${"f".repeat(16000)}\r\n`}`),
        ),
      },
    ];
    let expectedRecords = 0;
    for (const [i, tc] of cases.entries()) {
      const before = sum(rc.counters());
      const client = await rawConnect(HOST, server.port);
      cleanups.add(() => client.close());
      for (const g of tc.garbage) {
        await client.write(g);
        await sleep(5);
      }
      await sleep(30);
      // A valid request in its own write on the same connection: the decoder must find it again.
      const valid = Buffer.from(`GET /valid/${i} HTTP/1.1\r\nHost: hck\r\nX-Case: ${tc.name}\r\n\r\n`);
      await client.write(valid);
      expectedRecords += 2;
      await rc.waitFor((r) => r.length >= expectedRecords, `the valid request after ${tc.name}`);
      await rc.settle(60);
      for (const role of ["client", "server"] as const) {
        const side = recordsOfSide(rc.records, role, client.local);
        expect(side.map((r) => r.path), `${tc.name}: ${role} side`).toEqual([`/valid/${i}`]);
        expect(side[0]!.headers).toEqual([
          { name: "Host", value: "hck" },
          { name: "X-Case", value: tc.name },
        ]);
        expect(side[0]!.pid).toBe(me.pid);
      }
      expect(sum(rc.counters()), `${tc.name} is counted`).toBeGreaterThanOrEqual(before + 2);
      client.close();
    }
    expect(rc.records.length).toBe(expectedRecords);
    const c = rc.counters();
    expect(c.decoder.internalErrors).toBe(0);
    expect(c.decoder.oversize).toBeGreaterThanOrEqual(2);
    expect(c.decoder.malformed).toBeGreaterThanOrEqual(4);

    // Random binary from the first byte: the kernel classifies the connection and the decoder never sees it.
    const notHttpBefore = rc.counters().kernel.connsNotHttp;
    for (let i = 0; i < 3; i++) {
      const junk = await rawConnect(HOST, server.port);
      await junk.write(Buffer.concat([Buffer.from([0x16, 0x03, 0x01]), randomBytes(1500)]));
      await sleep(20);
      junk.close();
    }
    await rc.settle(100);
    expect(rc.counters().kernel.connsNotHttp - notHttpBefore).toBe(6n);
    expect(rc.records.length).toBe(expectedRecords);
  });
});
