/**
 * The ring buffer path against the real kernel: records that wrap around the
 * end of a small ring come out whole (the shim maps the data area once and
 * copies a wrapping record in two parts), and each ended HTTP connection
 * yields exactly one close notice, after its chunks.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type Capture, chunksOfSocket, onlyConnId, rawExchange, startCapture, startRawServer, streamBytes } from "./capture-harness.ts";

const RESPONSE = Buffer.from("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");

let capture: Capture | undefined;
const cleanups: (() => unknown)[] = [];

afterEach(async () => {
  capture?.source.close();
  capture = undefined;
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("socket capture ring buffer", { timeout: 60_000 }, () => {
  it("delivers records that wrap around the end of a 64 KiB ring byte for byte, and one close notice per connection", async () => {
    const server = await startRawServer("127.0.0.1", RESPONSE);
    cleanups.push(() => server.close());
    const closed: string[] = [];
    capture = startCapture({
      localPorts: [server.port],
      captureBytes: 8192,
      ringBufferBytes: 64 * 1024,
      onConnectionsClosed: (ids) => closed.push(...ids),
    });

    const connIds: string[] = [];
    let total = 0;
    // ~3 passes over the ring with sizes that do not divide it: some records must straddle its end.
    for (let i = 0; total < 200 * 1024; i++) {
      const filler = "x".repeat(700 + ((i * 977) % 4000));
      const req = Buffer.from(`GET /wrap/${i} HTTP/1.1\r\nHost: hdrcap.test\r\nX-Filler: ${filler}\r\nConnection: close\r\n\r\n`);
      total += req.length;
      const ex = await rawExchange("127.0.0.1", server.port, [req]);
      await capture.waitFor(
        (c) => chunksOfSocket(c, server.port, ex.localPort).reduce((n, k) => n + (k.direction === "ingress" ? k.data.length : 0), 0) >= req.length,
        `request ${i}`,
      );
      const chunks = chunksOfSocket(capture.chunks, server.port, ex.localPort);
      const connId = onlyConnId(chunks);
      expect(streamBytes(chunks, connId, "ingress", 0, req.length)).toEqual(req);
      expect(streamBytes(chunks, connId, "egress", 0, RESPONSE.length)).toEqual(RESPONSE);
      connIds.push(connId);
    }
    await capture.waitFor(() => connIds.every((id) => closed.includes(id)), "close notices");
    await capture.settle();
    expect([...closed].sort()).toEqual([...connIds].sort());
    const counters = capture.source.counters();
    expect(counters.ringbufFull).toBe(0n);
    expect(counters.recordsMalformed).toBe(0n);
    expect(counters.recordsDrained).toBe(BigInt(capture.chunks.length));
  });
});
