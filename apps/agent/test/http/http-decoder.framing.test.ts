import { describe, expect, it } from "vitest";
import { createHeaderPolicy } from "../../src/capture/http/header-policy.ts";
import { HttpDecoder } from "../../src/capture/http/http-decoder.ts";
import { bytes, CaptureScript, splitAt } from "./capture-script.ts";

const keepEverything = createHeaderPolicy({ redactMode: "mask", allowSensitive: true });

function decoder(maxHeaderBytes?: number): HttpDecoder {
  return new HttpDecoder({ policy: keepEverything, ...(maxHeaderBytes ? { maxHeaderBytes } : {}) });
}

const summary = (r: { kind: string; method: string | null; path: string | null; status: number | null }) =>
  r.kind === "request" ? `${r.method} ${r.path}` : `${r.status}`;

describe("HttpDecoder stepping over bodies", () => {
  it("skips a chunked body with extensions and trailers, split across chunks, and parses the next message", () => {
    const script = new CaptureScript();
    const stream = bytes(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" +
        "5;ext=1\r\nhello\r\n" +
        "1B\r\nGET /fake HTTP/1.1\r\n\r\n12345\r\n" +
        "0\r\nX-Checksum: abc\r\nX-More: 1\r\n\r\n" +
        "HTTP/1.1 204 No Content\r\nServer: s\r\n\r\n",
    );
    for (let cut = 1; cut < stream.length; cut += 7) {
      const s = new CaptureScript();
      const records = decoder().push(splitAt(s, "ingress", stream, [cut, cut + 3, cut + 4]));
      expect(records.map(summary)).toEqual(["200", "204"]);
    }
    const http = decoder();
    expect(http.push([script.receive(stream)]).map(summary)).toEqual(["200", "204"]);
    expect(http.counters()).toMatchObject({ messages: 2, malformed: 0, resyncs: 0, bodyBytes: 5 + 27 });
  });

  it("knows that responses to HEAD and 204 and 304 responses have no body despite Content-Length", () => {
    const script = new CaptureScript();
    const http = decoder();
    const records = http.push([
      script.send("HEAD /file HTTP/1.1\r\nHost: h\r\n\r\nGET /cached HTTP/1.1\r\nHost: h\r\n\r\nDELETE /x HTTP/1.1\r\n\r\n"),
      script.receive(
        "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" +
          "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n" +
          "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
      ),
    ]);
    expect(records.map(summary)).toEqual(["HEAD /file", "GET /cached", "DELETE /x", "200", "304", "204"]);
    expect(http.counters()).toMatchObject({ paired: 3, resyncs: 0, bodyBytes: 0 });
  });

  it("reads a response without length or chunking until close and ignores the rest of that direction", () => {
    const script = new CaptureScript();
    const http = decoder();
    const records = http.push([
      script.send("GET / HTTP/1.1\r\n\r\n"),
      script.receive("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>"),
      script.receive("HTTP/1.1 200 OK\r\n\r\n"),
    ]);
    expect(records.map(summary)).toEqual(["GET /", "200"]);
  });

  it("bridges a sendfile body that was never captured and parses the next header block", () => {
    const script = new CaptureScript("c", "server");
    const http = decoder();
    const head = "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n";
    const records = http.push([
      script.receive("GET /big.iso HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n"),
      script.send(head),
      script.send(Buffer.alloc(0), { length: 1_000_000 }),
      script.send("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    ]);
    expect(records.map(summary)).toEqual(["GET /big.iso", "GET /next", "200", "200"]);
    expect(http.counters()).toMatchObject({ gaps: 1, gapBytes: 1_000_000, gapsBridged: 1, resyncs: 0, paired: 2 });
  });

  it("bridges offset jumps and truncated chunk tails inside bodies, also inside chunked data", () => {
    const script = new CaptureScript();
    const http = decoder();
    const body = "x".repeat(100);
    const records: string[] = [];
    const push = (chunk: Parameters<HttpDecoder["pushChunk"]>[0]) => records.push(...http.push([chunk]).map(summary));
    const head200 = "HTTP/1.1 200 OK\r\nContent-Length: 300\r\n\r\n";
    // 100 body bytes captured, 100 more written by the same syscall, 50 never seen, 50 captured.
    push(script.receive(`${head200}${body}`, { length: head200.length + 200 }));
    script.skip("ingress", 50);
    push(script.receive(body.slice(0, 50)));
    const head201 = "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n";
    push(script.receive(`${head201}400\r\nabc`, { length: head201.length + 5 + 1024 }));
    push(script.receive("\r\n0\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"));
    expect(records).toEqual(["200", "201", "202"]);
    expect(http.counters()).toMatchObject({ gaps: 3, gapsBridged: 3, resyncs: 0 });
  });

  it("resynchronises on the next start line when a gap swallows the end of a body", () => {
    const script = new CaptureScript();
    const http = decoder();
    http.push([script.receive("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345")]);
    script.skip("ingress", 500);
    const records = http.push([
      script.receive("tail of something\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
    ]);
    expect(records.map(summary)).toEqual(["404"]);
    expect(http.counters()).toMatchObject({ gaps: 1, gapsBridged: 0, resyncs: 1 });
  });

  it("resynchronises after a gap inside a header block", () => {
    const script = new CaptureScript();
    const http = decoder();
    http.push([script.send("GET /lost HTTP/1.1\r\nHost: a")]);
    script.skip("egress", 40);
    const records = http.push([script.send("GET /found HTTP/1.1\r\nHost: b\r\n\r\n")]);
    expect(records.map(summary)).toEqual(["GET /found"]);
    expect(http.counters()).toMatchObject({ resyncs: 1, messages: 1 });
  });

  it("attaches mid-stream by discarding bytes up to a plausible start line", () => {
    const script = new CaptureScript("c", "server");
    script.seek("ingress", 123_456);
    script.seek("egress", 654_321);
    const http = decoder();
    const records = http.push([
      script.receive('rest of a JSON body"}\r\nnot GET / HTTP/1.1\r\nPOST /api HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\n{}{}'),
      script.send("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"),
    ]);
    expect(records.map(summary)).toEqual(["POST /api", "201"]);
    expect(http.counters()).toMatchObject({ midStreamStarts: 2, resyncs: 2, malformed: 0, paired: 1 });
  });

  it("counts garbage bytes, emits nothing and never throws", () => {
    const script = new CaptureScript();
    const http = decoder();
    const garbage = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7919 + 13) % 256));
    const records = http.push([script.send(garbage), script.receive("\u0016\u0003\u0001\u0002\u0000 TLS hello\r\n\r\n")]);
    expect(records).toEqual([]);
    const counters = http.counters();
    expect(counters.malformed).toBe(2);
    expect(counters.resyncs).toBe(2);
    expect(counters.bytesSkipped).toBeGreaterThan(5000);
    expect(counters.internalErrors).toBe(0);
  });

  it("drops a malformed header block and finds the message after it", () => {
    const script = new CaptureScript();
    const http = decoder();
    const records = http.push([
      script.send("GET /bad HTTP/1.1\r\nNo colon here\r\n\r\nGET /good HTTP/1.1\r\n\r\n"),
      script.send("GET /conflict HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nGET /after HTTP/1.1\r\n\r\n"),
    ]);
    expect(records.map(summary)).toEqual(["GET /good", "GET /after"]);
    expect(http.counters()).toMatchObject({ malformed: 2, resyncs: 2 });
  });

  it("counts and drops an oversize header block, then parses the next message", () => {
    const script = new CaptureScript();
    const http = decoder();
    const big = `GET /huge HTTP/1.1\r\n${"X-Pad: ".concat("p".repeat(1000), "\r\n").repeat(70)}\r\n`;
    const text = bytes(`${big}GET /small HTTP/1.1\r\n\r\n`);
    const records = http.push(splitAt(script, "egress", text, Array.from({ length: 60 }, (_, i) => i * 1448)));
    expect(records.map(summary)).toEqual(["GET /small"]);
    expect(http.counters()).toMatchObject({ oversize: 1, messages: 1 });
    expect(http.retainedBytes()).toBeLessThanOrEqual(64 * 1024);
  });

  it("honours a configured header block limit, also when the block arrives in one chunk", () => {
    const script = new CaptureScript();
    const http = decoder(256);
    const records = http.push([
      script.send(`GET /a HTTP/1.1\r\nX: ${"a".repeat(300)}\r\n\r\nGET /b HTTP/1.1\r\nX: short\r\n\r\n`),
    ]);
    expect(records.map(summary)).toEqual(["GET /b"]);
    expect(http.counters().oversize).toBe(1);
  });

  it("stops decoding both directions after 101 Switching Protocols", () => {
    const script = new CaptureScript();
    const http = decoder();
    const records = http.push([
      script.send("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
      script.receive("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\u0081\u0005hello"),
      script.send("\u0081\u0085GET / HTTP/1.1\r\n\r\n"),
    ]);
    expect(records.map(summary)).toEqual(["GET /ws", "101"]);
    expect(http.counters()).toMatchObject({ upgrades: 1, malformed: 0 });
  });

  it("treats the bytes after a successful CONNECT as a tunnel", () => {
    const script = new CaptureScript();
    const http = decoder();
    const records = http.push([
      script.send("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
      script.receive("HTTP/1.1 200 Connection Established\r\n\r\n"),
      script.send("\u0016\u0003\u0001 client hello"),
      script.receive("\u0016\u0003\u0003 server hello"),
    ]);
    expect(records.map(summary)).toEqual(["CONNECT example.com:443", "200"]);
    expect(http.counters()).toMatchObject({ upgrades: 1, malformed: 0, resyncs: 0 });
  });

  it("ignores chunks that repeat offsets already seen", () => {
    const script = new CaptureScript();
    const http = decoder();
    const first = script.send("GET /once HTTP/1.1\r\n\r\n");
    const records = http.push([first, { ...first }, script.send("GET /twice HTTP/1.1\r\n\r\n")]);
    expect(records.map(summary)).toEqual(["GET /once", "GET /twice"]);
    expect(http.counters().overlaps).toBe(1);
  });
});
