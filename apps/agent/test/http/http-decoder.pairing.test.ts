import { describe, expect, it } from "vitest";
import { createHeaderPolicy } from "../../src/capture/http/header-policy.ts";
import { HttpDecoder } from "../../src/capture/http/http-decoder.ts";
import { CaptureScript, MS, T0 } from "./capture-script.ts";

const keepEverything = createHeaderPolicy({ redactMode: "mask", allowSensitive: true });

describe("HttpDecoder pairing responses with requests", () => {
  it("pairs three pipelined requests from one chunk with their three responses in order, with latency", () => {
    const script = new CaptureScript();
    const http = new HttpDecoder({ policy: keepEverything });
    const records = http.push([
      script.send("GET /1 HTTP/1.1\r\nHost: h\r\n\r\nHEAD /2 HTTP/1.1\r\nHost: h\r\n\r\nGET /3 HTTP/1.1\r\nHost: h\r\n\r\n", {
        tsNs: T0,
      }),
      script.receive("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\none", { tsNs: T0 + 5n * MS }),
      script.receive("HTTP/1.1 200 OK\r\nContent-Length: 9999\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", {
        tsNs: T0 + 7n * MS,
      }),
    ]);
    expect(records.map((r) => [r.kind, r.method ?? r.status, r.latencyMs])).toEqual([
      ["request", "GET", null],
      ["request", "HEAD", null],
      ["request", "GET", null],
      ["response", 200, 5],
      ["response", 200, 7],
      ["response", 404, 7],
    ]);
    expect(http.counters()).toMatchObject({ paired: 3, unpairedResponses: 0, resyncs: 0 });
  });

  it("emits a 100 Continue interim response and still pairs the final response with the same request", () => {
    const script = new CaptureScript();
    const http = new HttpDecoder({ policy: keepEverything });
    const records = http.push([
      script.send("PUT /upload HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", { tsNs: T0 }),
      script.receive("HTTP/1.1 100 Continue\r\n\r\n", { tsNs: T0 + 1n * MS }),
      script.send("hello", { tsNs: T0 + 2n * MS }),
      script.receive("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", { tsNs: T0 + 3n * MS }),
      script.send("GET /after HTTP/1.1\r\n\r\n", { tsNs: T0 + 4n * MS }),
      script.receive("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", { tsNs: T0 + 6n * MS }),
    ]);
    expect(records.map((r) => [r.method ?? r.status, r.reason, r.latencyMs])).toEqual([
      ["PUT", null, null],
      [100, "Continue", 1],
      [201, "Created", 3],
      ["GET", null, null],
      [200, "OK", 2],
    ]);
    expect(http.counters()).toMatchObject({ interimResponses: 1, paired: 3 });
  });

  it("keeps 1,000 requests on one keep-alive connection paired and in order", () => {
    const script = new CaptureScript();
    const http = new HttpDecoder({ policy: keepEverything });
    const records = [];
    for (let i = 0; i < 1000; i++) {
      const sent = T0 + BigInt(i) * 10n * MS;
      records.push(
        ...http.push([
          script.send(`POST /items/${i} HTTP/1.1\r\nHost: h\r\nContent-Length: ${String(i).length}\r\n\r\n${i}`, {
            tsNs: sent,
          }),
          script.receive(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${(i % 50 + 1).toString(16)}\r\n${"r".repeat(i % 50 + 1)}\r\n0\r\n\r\n`, {
            tsNs: sent + 2n * MS,
          }),
        ]),
      );
    }
    expect(records).toHaveLength(2000);
    records.forEach((record, k) => {
      const i = Math.floor(k / 2);
      if (k % 2 === 0) expect(record).toMatchObject({ kind: "request", path: `/items/${i}`, latencyMs: null });
      else expect(record).toMatchObject({ kind: "response", status: 200, latencyMs: 2 });
    });
    expect(http.counters()).toMatchObject({ messages: 2000, paired: 1000, resyncs: 0, malformed: 0, unansweredRequests: 0 });
    expect(http.connectionCount).toBe(1);
  });

  it("leaves a response unpaired when the only pending request was sent after it", () => {
    const script = new CaptureScript();
    script.seek("ingress", 5000);
    const http = new HttpDecoder({ policy: keepEverything });
    const records = http.push([
      script.receive("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", { tsNs: T0 + 1n * MS }),
      script.send("GET /next HTTP/1.1\r\n\r\n", { tsNs: T0 + 2n * MS }),
      script.receive("HTTP/1.1 204 No Content\r\n\r\n", { tsNs: T0 + 5n * MS }),
    ]);
    expect(records.map((r) => [r.method ?? r.status, r.latencyMs])).toEqual([
      [200, null],
      ["GET", null],
      [204, 3],
    ]);
    expect(http.counters()).toMatchObject({ unpairedResponses: 1, paired: 1 });
  });

  it("after losing responses in a gap, pairs the next response with the latest request", () => {
    const script = new CaptureScript();
    const http = new HttpDecoder({ policy: keepEverything });
    http.push([
      script.send("GET /a HTTP/1.1\r\n\r\n", { tsNs: T0 }),
      script.receive("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12", { tsNs: T0 + 1n * MS }),
      script.send("GET /b HTTP/1.1\r\n\r\n", { tsNs: T0 + 2n * MS }),
    ]);
    script.skip("ingress", 4000); // the rest of /a's response and all of /b's response
    const records = http.push([
      script.send("GET /c HTTP/1.1\r\n\r\n", { tsNs: T0 + 10n * MS }),
      script.receive("HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", { tsNs: T0 + 13n * MS }),
    ]);
    expect(records.map((r) => [r.method ?? r.status, r.latencyMs])).toEqual([
      ["GET", null],
      [202, 3],
    ]);
    expect(http.counters()).toMatchObject({ unansweredRequests: 1, resyncs: 1 });
  });
});

describe("HttpDecoder connection lifecycle", () => {
  it("forgets closed connections and counts what was left unanswered", () => {
    const http = new HttpDecoder({ policy: keepEverything });
    const script = new CaptureScript("c1");
    http.push([script.send("GET / HTTP/1.1\r\n\r\nGET /partial HTTP/1.1\r\nHo")]);
    expect(http.closeConnection("c1")).toBe(true);
    expect(http.closeConnection("c1")).toBe(false);
    expect(http.connectionCount).toBe(0);
    expect(http.counters()).toMatchObject({ connectionsClosed: 1, unansweredRequests: 1, incompleteAtClose: 1 });
  });

  it("expires connections idle since before the given time", () => {
    const http = new HttpDecoder({ policy: keepEverything });
    const old = new CaptureScript("old");
    const fresh = new CaptureScript("fresh");
    http.push([old.send("GET / HTTP/1.1\r\n\r\n", { tsNs: T0 }), fresh.send("GET / HTTP/1.1\r\n\r\n", { tsNs: T0 + 60_000n * MS })]);
    expect(http.expireIdle(T0 + 30_000n * MS)).toBe(1);
    expect(http.connectionCount).toBe(1);
    expect(http.counters().connectionsExpired).toBe(1);
  });

  it("evicts the least recently active connection beyond the connection limit", () => {
    const http = new HttpDecoder({ policy: keepEverything, maxConnections: 2 });
    const a = new CaptureScript("a");
    const b = new CaptureScript("b");
    const c = new CaptureScript("c");
    http.push([a.send("GET /a1 HTTP/1.1\r\n\r\n"), b.send("GET /b1 HTTP/1.1\r\n\r\n"), a.send("GET /a2 HTTP/1.1\r\n\r\n")]);
    http.push([c.send("GET /c1 HTTP/1.1\r\n\r\n")]);
    expect(http.connectionCount).toBe(2);
    expect(http.counters()).toMatchObject({ connectionsEvicted: 1, connectionsOpened: 3 });
    expect(http.closeConnection("b")).toBe(false);
    expect(http.closeConnection("a")).toBe(true);
  });
});
