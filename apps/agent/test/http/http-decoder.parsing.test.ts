import { describe, expect, it } from "vitest";
import { createHeaderPolicy } from "../../src/capture/http/header-policy.ts";
import { HttpDecoder } from "../../src/capture/http/http-decoder.ts";
import { bytes, CaptureScript, LOCAL, MS, REMOTE, splitAt, T0 } from "./capture-script.ts";

const keepEverything = createHeaderPolicy({ redactMode: "mask", allowSensitive: true });

function decoder(): HttpDecoder {
  return new HttpDecoder({ policy: keepEverything });
}

describe("HttpDecoder parsing header blocks", () => {
  it("parses a realistic request into an exact record with headers in wire order and original case", () => {
    const script = new CaptureScript("conn-7", "client");
    const request =
      "GET /api/v1/items?page=2 HTTP/1.1\r\n" +
      "Host: api.example.com\r\n" +
      "User-Agent: curl/8.5.0\r\n" +
      "Accept: */*\r\n" +
      "X-Trace:  a  \r\n" +
      "x-TRACE:b\r\n" +
      "X-Empty:\r\n" +
      "\r\n";
    const records = decoder().push([script.send(request)]);
    expect(records).toEqual([
      {
        ts: "2025-01-01T00:00:00.000Z",
        connectionId: "conn-7",
        kind: "request",
        role: "client",
        src: LOCAL,
        dst: REMOTE,
        pid: 4200,
        comm: "curl",
        method: "GET",
        path: "/api/v1/items?page=2",
        version: "HTTP/1.1",
        status: null,
        reason: null,
        latencyMs: null,
        headers: [
          { name: "Host", value: "api.example.com" },
          { name: "User-Agent", value: "curl/8.5.0" },
          { name: "Accept", value: "*/*" },
          { name: "X-Trace", value: "a" },
          { name: "x-TRACE", value: "b" },
          { name: "X-Empty", value: "" },
        ],
        headerBytes: request.length,
        redacted: [],
      },
    ]);
  });

  it("parses the response, keeps duplicate headers and pairs it with the request", () => {
    const script = new CaptureScript();
    const http = decoder();
    http.push([script.send("POST /login HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc")]);
    const response =
      "HTTP/1.1 404 Not Found Here\r\nContent-Type: application/json\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 2\r\n\r\n";
    const [record] = http.push([script.receive(`${response}{}`, { tsNs: T0 + 12n * MS })]);
    expect(record).toMatchObject({
      ts: "2025-01-01T00:00:00.012Z",
      kind: "response",
      src: REMOTE,
      dst: LOCAL,
      method: null,
      path: null,
      version: "HTTP/1.1",
      status: 404,
      reason: "Not Found Here",
      latencyMs: 12,
      headerBytes: response.length,
      headers: [
        { name: "Content-Type", value: "application/json" },
        { name: "Set-Cookie", value: "a=1" },
        { name: "Set-Cookie", value: "b=2" },
        { name: "Content-Length", value: "2" },
      ],
    });
  });

  it("takes src and dst from the direction, so a traced server sees requests coming from the remote side", () => {
    const script = new CaptureScript("srv", "server");
    const [request] = decoder().push([script.receive("GET / HTTP/1.1\r\nHost: x\r\n\r\n")]);
    expect(request).toMatchObject({ kind: "request", role: "server", src: REMOTE, dst: LOCAL });
  });

  it("parses HTTP/1.0 messages and a status line without a reason phrase", () => {
    const script = new CaptureScript();
    const http = decoder();
    const records = http.push([
      script.send("GET /old HTTP/1.0\r\n\r\n"),
      script.receive("HTTP/1.0 200\r\nServer: tiny\r\n\r\nbody until close"),
    ]);
    expect(records.map((r) => [r.kind, r.version, r.method, r.status, r.reason])).toEqual([
      ["request", "HTTP/1.0", "GET", null, null],
      ["response", "HTTP/1.0", null, 200, ""],
    ]);
    expect(http.counters().bytesSkipped).toBe("body until close".length);
  });

  it("joins obs-fold continuation lines to the previous value with a single space", () => {
    const script = new CaptureScript();
    const [record] = decoder().push([
      script.send("GET / HTTP/1.1\r\nX-Folded: first\r\n   second  \r\n\tthird\r\nHost: h\r\n\r\n"),
    ]);
    expect(record?.headers).toEqual([
      { name: "X-Folded", value: "first second third" },
      { name: "Host", value: "h" },
    ]);
  });

  it("tolerates bare LF line endings", () => {
    const script = new CaptureScript();
    const text = "PUT /x HTTP/1.1\nHost: h\nContent-Length: 2\n\nokHTTP/1.1 200 OK\n\n";
    const records = decoder().push([script.send(text)]);
    expect(records.map((r) => [r.method ?? r.status, r.headers])).toEqual([
      ["PUT", [{ name: "Host", value: "h" }, { name: "Content-Length", value: "2" }]],
      [200, []],
    ]);
    expect(records[0]?.headerBytes).toBe("PUT /x HTTP/1.1\nHost: h\nContent-Length: 2\n\n".length);
  });

  it("reassembles a header block split byte by byte, stamped with the chunk carrying its first byte", () => {
    const script = new CaptureScript();
    const text = bytes("GET /split HTTP/1.1\r\nHost: h\r\nAccept: a\r\n\r\n");
    const chunks = splitAt(script, "egress", text, [...text.keys()]);
    chunks.forEach((chunk, i) => {
      chunk.tsNs = T0 + BigInt(i) * MS;
    });
    const records = decoder().push(chunks);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ path: "/split", ts: "2025-01-01T00:00:00.000Z", headerBytes: text.length });
  });

  it("parses a 20 KiB header block delivered in MSS-sized chunks", () => {
    const script = new CaptureScript();
    const headers = Array.from({ length: 200 }, (_, i) => ({ name: `X-Field-${i}`, value: "v".repeat(90) }));
    const text = bytes(`GET /big HTTP/1.1\r\n${headers.map((h) => `${h.name}: ${h.value}\r\n`).join("")}\r\n`);
    expect(text.length).toBeGreaterThan(20 * 1024);
    const cuts = Array.from({ length: Math.ceil(text.length / 1448) }, (_, i) => i * 1448);
    const http = decoder();
    const records = http.push(splitAt(script, "egress", text, cuts));
    expect(records).toHaveLength(1);
    expect(records[0]?.headers).toEqual(headers);
    expect(records[0]?.headerBytes).toBe(text.length);
    expect(http.retainedBytes()).toBeLessThanOrEqual(4096);
  });

  it("skips empty lines between messages", () => {
    const script = new CaptureScript();
    const records = decoder().push([
      script.send("GET /a HTTP/1.1\r\n\r\n\r\n"),
      script.send("\r\nGET /b HTTP/1.1\r\n\r\n"),
    ]);
    expect(records.map((r) => r.path)).toEqual(["/a", "/b"]);
  });

  it("applies the default policy, masking credentials unless told otherwise", () => {
    const script = new CaptureScript();
    const [record] = new HttpDecoder().push([
      script.send("GET /?access_token=abc&q=1 HTTP/1.1\r\nAuthorization: Bearer x\r\nAccept: */*\r\n\r\n"),
    ]);
    expect(record?.path).toBe("/?access_token=[REDACTED]&q=1");
    expect(record?.headers).toEqual([
      { name: "Authorization", value: "[REDACTED]" },
      { name: "Accept", value: "*/*" },
    ]);
    expect(record?.redacted).toEqual(["Authorization", "?access_token"]);
  });
});
