/**
 * Record-level capture of the hard framing cases: header blocks larger than a
 * chunk event sent in several writes, truncation at the default capture
 * length, pipelined requests and a long keep-alive connection.
 */
import { afterEach, describe, expect, it } from "vitest";
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

function response(n: number): Buffer {
  const body = `r${n}`;
  return Buffer.from(`HTTP/1.1 200 OK\r\nX-Seq: ${n}\r\nContent-Length: ${body.length}\r\n\r\n${body}`, "latin1");
}

function smallRequest(path: string, n: number): Buffer {
  return Buffer.from(`GET ${path} HTTP/1.1\r\nHost: hck.test\r\nX-Seq: ${n}\r\n\r\n`, "latin1");
}

/** A request head of about `size` bytes: many distinct headers, last one ending the block. */
function bigRequest(size: number, tag: string): Buffer {
  const lines = [`GET /big/${tag} HTTP/1.1`, "Host: hck.test"];
  let n = 0;
  let len = lines.join("\r\n").length;
  while (len < size - 64) {
    const line = `X-Pad-${tag}-${n}: ${"v".repeat(90)}${n}`;
    lines.push(line);
    len += line.length + 2;
    n++;
  }
  lines.push("X-Last: end");
  return Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1");
}

/** Splits b into `parts` nearly equal pieces. */
function split(b: Buffer, parts: number): Buffer[] {
  const size = Math.ceil(b.length / parts);
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size));
  return out;
}

describe("HttpCapture framing", { timeout: 60_000 }, () => {
  it("records a 40 KiB header block sent in three writes exactly with a 64 KiB capture length", async () => {
    const server = await startRawServer(HOST, response);
    cleanups.add(() => server.close());
    rc = startRecordCapture({ filter: { ports: [server.port], captureBytes: 65536 } });
    const client = await rawConnect(HOST, server.port);
    cleanups.add(() => client.close());
    const big = bigRequest(40 * 1024, "a");
    expect(big.length).toBeGreaterThan(40 * 1024 - 100);
    const pieces = split(big, 3);
    for (const p of pieces) {
      await client.write(p);
      await sleep(20); // separate syscalls on both ends
    }
    await client.waitCount("HTTP/1.1 200", 1);
    const after = smallRequest("/after", 1);
    await client.write(after);
    await client.waitCount("HTTP/1.1 200", 2);
    await rc.waitFor((r) => r.length >= 8, "both exchanges on both ends");
    await rc.settle();
    expect(rc.records.length).toBe(8);
    const state = server.conns.get(`${client.local.ip}:${client.local.port}`)!;
    expect(state.received).toEqual(Buffer.concat([big, after]));
    expectExchange(rc.records, {
      client: client.local,
      server: { ip: HOST, port: server.port },
      requestBytes: state.received,
      responseBytes: state.sent,
      clientProcess: self(),
      serverProcess: self(),
    });
    const bigRecord = recordsOfSide(rc.records, "server", client.local)[0]!;
    expect(bigRecord.headerBytes).toBe(big.length);
    const c = rc.counters();
    expect(c.kernel.truncated).toBe(0n);
    expect(c.kernel.bytesUncopied).toBe(0n);
    expect(c.decoder.gaps + c.decoder.resyncs + c.decoder.malformed + c.decoder.oversize).toBe(0);
  });

  it("with the default 4 KiB capture drops a 20 KiB header block, counts the truncation and records the rest exactly", async () => {
    const server = await startRawServer(HOST, response);
    cleanups.add(() => server.close());
    rc = startRecordCapture({ filter: { ports: [server.port] } });
    const client = await rawConnect(HOST, server.port);
    cleanups.add(() => client.close());

    const before = smallRequest("/before", 0);
    await client.write(before);
    await client.waitCount("HTTP/1.1 200", 1);
    const big = bigRequest(20 * 1024, "t");
    const [p1, p2] = split(big, 2) as [Buffer, Buffer];
    await client.write(p1);
    // The server must read the two halves with separate reads: wait until it has the first.
    const key = `${client.local.ip}:${client.local.port}`;
    for (let i = 0; server.conns.get(key)!.received.length < before.length + p1.length; i++) {
      if (i > 200) throw new Error("server did not receive the first half");
      await sleep(5);
    }
    await client.write(p2);
    await client.waitCount("HTTP/1.1 200", 2);
    const after = smallRequest("/after", 2);
    await client.write(after);
    await client.waitCount("HTTP/1.1 200", 3);
    await rc.waitFor((r) => r.length >= 10, "2 requests + 3 responses on both ends");
    await rc.settle();
    // The big request has no record on either end; everything else is exact.
    expect(rc.records.length).toBe(10);
    const state = server.conns.get(key)!;
    const responses = state.sent;
    for (const role of ["client", "server"] as const) {
      const side = recordsOfSide(rc.records, role, client.local);
      expect(side.map((r) => `${r.kind} ${r.path ?? r.headers.find((h) => h.name === "X-Seq")?.value}`)).toEqual([
        "request /before",
        "response 0",
        "response 1",
        "request /after",
        "response 2",
      ]);
      // The big request's answer is a correct record that simply has no request to pair with.
      expect(side.map((r) => r.latencyMs === null)).toEqual([true, false, true, true, false]);
    }
    // What is recorded is exact: compare with the wire minus the big request and its answer.
    const r0 = response(0);
    const r1 = response(1);
    expect(responses.subarray(0, r0.length + r1.length)).toEqual(Buffer.concat([r0, r1]));
    expectExchange(
      rc.records.filter((r) => !(r.kind === "response" && r.latencyMs === null)),
      {
        client: client.local,
        server: { ip: HOST, port: server.port },
        requestBytes: Buffer.concat([before, after]),
        responseBytes: Buffer.concat([r0, response(2)]),
        clientProcess: self(),
        serverProcess: self(),
      },
    );
    const c = rc.counters();
    // One syscall starting the big message was cut on each end: the client's write and the server's read.
    expect(c.kernel.truncated).toBe(2n);
    expect(c.kernel.bytesUncopied).toBe(BigInt(2 * (p1.length - 4096) + 2 * (p2.length - 4096)));
    expect(c.kernel.ringbufFull).toBe(0n);
    expect(c.decoder.gaps).toBe(4);
    expect(c.decoder.gapBytes).toBe(Number(c.kernel.bytesUncopied));
    expect(c.decoder.unpairedResponses).toBe(2);
    expect(c.decoder.requests).toBe(4);
    expect(c.decoder.responses).toBe(6);
  });

  it("pairs pipelined requests sent in one write with their responses in order", async () => {
    const server = await startRawServer(HOST, response);
    cleanups.add(() => server.close());
    rc = startRecordCapture({ filter: { ports: [server.port] } });
    const client = await rawConnect(HOST, server.port);
    cleanups.add(() => client.close());
    const batch = Buffer.concat(Array.from({ length: 5 }, (_, i) => smallRequest(`/pipe/${i}`, i)));
    await client.write(batch);
    await client.waitCount("HTTP/1.1 200", 5);
    const batch2 = Buffer.concat(Array.from({ length: 3 }, (_, i) => smallRequest(`/pipe/${5 + i}`, 5 + i)));
    await client.write(batch2);
    await client.waitCount("HTTP/1.1 200", 8);
    await rc.waitFor((r) => r.length >= 32, "8 pipelined exchanges on both ends");
    await rc.settle();
    expect(rc.records.length).toBe(32);
    const state = server.conns.get(`${client.local.ip}:${client.local.port}`)!;
    expect(state.received).toEqual(Buffer.concat([batch, batch2]));
    expectExchange(rc.records, {
      client: client.local,
      server: { ip: HOST, port: server.port },
      requestBytes: state.received,
      responseBytes: client.received(),
      clientProcess: self(),
      serverProcess: self(),
    });
    // In order: the n-th response record answers the n-th request (X-Seq on both).
    for (const role of ["client", "server"] as const) {
      const side = recordsOfSide(rc.records, role, client.local);
      const seq = (kind: string) =>
        side.filter((r) => r.kind === kind).map((r) => r.headers.find((h) => h.name === "X-Seq")!.value);
      expect(seq("request")).toEqual(seq("response"));
    }
    expect(rc.counters().decoder.paired).toBe(16);
  });

  it("records 1,000 requests on one keep-alive connection exactly and pairs every response", async () => {
    const server = await startRawServer(HOST, response);
    cleanups.add(() => server.close());
    rc = startRecordCapture({ filter: { ports: [server.port] } });
    const client = await rawConnect(HOST, server.port);
    cleanups.add(() => client.close());
    const N = 1000;
    for (let i = 0; i < N; i++) {
      await client.write(smallRequest(`/ka/${i}?n=${i}`, i));
      await client.waitBytes(responseBytesUpTo(i));
    }
    await rc.waitFor((r) => r.length >= 4 * N, `${4 * N} records`, 10_000);
    await rc.settle();
    expect(rc.records.length).toBe(4 * N);
    const state = server.conns.get(`${client.local.ip}:${client.local.port}`)!;
    expectExchange(rc.records, {
      client: client.local,
      server: { ip: HOST, port: server.port },
      requestBytes: state.received,
      responseBytes: client.received(),
      clientProcess: self(),
      serverProcess: self(),
    });
    const c = rc.counters();
    expect(c.decoder.paired).toBe(2 * N);
    expect(c.decoder.unpairedResponses + c.decoder.unansweredRequests + c.decoder.resyncs).toBe(0);
    expect(c.kernel.ringbufFull + c.kernel.truncated).toBe(0n);
  });
});

let cumulative: number[] = [];
/** Bytes of responses 0..n together. */
function responseBytesUpTo(n: number): number {
  if (n === 0) cumulative = [];
  cumulative[n] = (n > 0 ? cumulative[n - 1]! : 0) + response(n).length;
  return cumulative[n]!;
}
