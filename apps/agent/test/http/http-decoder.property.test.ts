import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { httpRecordSchema, type HttpRecord } from "@hdrcap/api/records";
import type { CapturedChunk, Direction } from "../../src/capture/chunk.ts";
import { createHeaderPolicy } from "../../src/capture/http/header-policy.ts";
import { HttpDecoder } from "../../src/capture/http/http-decoder.ts";
import { bytes, CaptureScript, LOCAL, MS, REMOTE, splitAt, T0 } from "./capture-script.ts";

const keepEverything = createHeaderPolicy({ redactMode: "mask", allowSensitive: true });

describe("HttpDecoder on arbitrary input", () => {
  const fragment = fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
    fc
      .constantFrom(
        "GET / HTTP/1.1\r\n",
        "HEAD /h HTTP/1.0\n",
        "CONNECT a:1 HTTP/1.1\r\n",
        "HTTP/1.1 200 OK\r\n",
        "HTTP/1.1 101 Switching\r\n",
        "HTTP/1.1 100 Continue\r\n\r\n",
        "Content-Length: 5\r\n",
        "Content-Length: 123456\r\n",
        "Transfer-Encoding: chunked\r\n",
        "X: y\r\n",
        " folded\r\n",
        "\r\n",
        "\n",
        "5\r\nhello\r\n",
        "0\r\n",
        "ffffffffffffffffff\r\n",
        "G",
      )
      .map((s) => bytes(s)),
  );
  const step = fc.record({
    conn: fc.constantFrom("a", "b", "c"),
    direction: fc.constantFrom<Direction>("ingress", "egress"),
    parts: fc.array(fragment, { maxLength: 6 }),
    jump: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: -64, max: 100_000 })),
    uncapturedTail: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 1, max: 100_000 })),
    action: fc.constantFrom("push", "push", "push", "push", "push", "push", "close", "expire"),
    tsMs: fc.integer({ min: 0, max: 1000 }),
  });

  it("never throws, keeps memory bounded and emits only schema-valid records", () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 40 }), fc.constantFrom(256, 4096, 65_536), (steps, maxHeaderBytes) => {
        const http = new HttpDecoder({ maxHeaderBytes, maxPendingRequests: 8 });
        const offsets = new Map<string, number>();
        for (const s of steps) {
          if (s.action === "close") {
            http.closeConnection(s.conn);
            offsets.delete(`${s.conn}/ingress`);
            offsets.delete(`${s.conn}/egress`);
            continue;
          }
          if (s.action === "expire") {
            http.expireIdle(T0 + BigInt(s.tsMs) * MS);
            continue;
          }
          const key = `${s.conn}/${s.direction}`;
          const data = Buffer.concat(s.parts);
          const offset = Math.max(0, (offsets.get(key) ?? 0) + s.jump);
          const length = data.length + s.uncapturedTail;
          offsets.set(key, offset + length);
          const chunk: CapturedChunk = {
            tsNs: T0 + BigInt(s.tsMs) * MS,
            pid: 1,
            tgid: 1,
            comm: "x",
            cgroupId: 0n,
            connId: s.conn,
            local: LOCAL,
            remote: REMOTE,
            direction: s.direction,
            role: "unknown",
            streamOffset: offset,
            data,
            length,
          };
          for (const record of http.push([chunk])) httpRecordSchema.parse(record);
          expect(http.retainedBytes()).toBeLessThanOrEqual(http.connectionCount * 2 * maxHeaderBytes);
          expect(http.connectionCount).toBeLessThanOrEqual(3);
        }
        const counters = http.counters();
        expect(counters.internalErrors).toBe(0);
        for (const value of Object.values(counters)) expect(value).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 400 },
    );
  });

  it("accepts impossible chunks without throwing and counts them", () => {
    const http = new HttpDecoder();
    const script = new CaptureScript();
    const chunk = script.send("GET / HTTP/1.1\r\n\r\n");
    expect(http.push([{ ...chunk, streamOffset: Number.NaN }, { ...chunk, length: -1 }, { ...chunk, streamOffset: -5 }])).toEqual([]);
    expect(http.counters().invalidChunks).toBe(3);
  });
});

// ---- Valid message sequences and their model ----

interface GeneratedMessage {
  wire: Buffer;
  expected: HttpRecord;
}

const EOLS = ["\r\n", "\n"] as const;
const headerName = fc
  .stringMatching(/^[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]{0,15}$/)
  .filter((n) => !["content-length", "transfer-encoding"].includes(n.toLowerCase()));
const headerValue = fc.stringMatching(/^([\x21-\x7e\xa0-\xff]([\x20-\x7e\xa0-\xff]{0,30}[\x21-\x7e\xa0-\xff])?)?$/);
const headerSpec = fc.record({
  nameIndex: fc.nat(),
  value: headerValue,
  fold: fc.option(headerValue.filter((v) => v !== ""), { nil: undefined }),
  spaceBefore: fc.constantFrom("", " ", "  ", "\t"),
});
const bodySpec = fc.oneof(
  fc.constant({ kind: "none" as const }),
  fc.record({
    kind: fc.constant("length" as const),
    body: fc.oneof(fc.uint8Array({ maxLength: 120 }), fc.constant(bytes("\r\n\r\nGET / HTTP/1.1\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"))),
    name: fc.constantFrom("Content-Length", "content-length", "CONTENT-LENGTH"),
  }),
  fc.record({
    kind: fc.constant("chunked" as const),
    chunks: fc.array(fc.uint8Array({ minLength: 1, maxLength: 40 }), { maxLength: 4 }),
    upper: fc.boolean(),
    extension: fc.boolean(),
    trailers: fc.array(fc.tuple(headerName, headerValue), { maxLength: 2 }),
    name: fc.constantFrom("Transfer-Encoding", "transfer-encoding"),
  }),
);
type BodySpec = typeof bodySpec extends fc.Arbitrary<infer T> ? T : never;

function buildMessage(
  startLine: string,
  eol: string,
  names: string[],
  specs: (typeof headerSpec extends fc.Arbitrary<infer T> ? T : never)[],
  body: BodySpec,
  bodyAllowed: boolean,
): { head: string; body: Buffer; headers: { name: string; value: string }[] } {
  let head = startLine + eol;
  const headers: { name: string; value: string }[] = [];
  for (const spec of specs) {
    const name = names[spec.nameIndex % names.length]!;
    head += `${name}:${spec.spaceBefore}${spec.value}${eol}`;
    let value = spec.value;
    if (spec.fold !== undefined) {
      head += ` ${spec.fold}${eol}`;
      value = value === "" ? spec.fold : `${value} ${spec.fold}`;
    }
    headers.push({ name, value });
  }
  const parts: Buffer[] = [];
  if (body.kind === "length") {
    head += `${body.name}: ${body.body.length}${eol}`;
    headers.push({ name: body.name, value: String(body.body.length) });
    if (bodyAllowed) parts.push(Buffer.from(body.body));
  } else if (body.kind === "chunked") {
    head += `${body.name}: chunked${eol}`;
    headers.push({ name: body.name, value: "chunked" });
    if (bodyAllowed) {
      for (const chunk of body.chunks) {
        const size = chunk.length.toString(16);
        parts.push(bytes(`${body.upper ? size.toUpperCase() : size}${body.extension ? ";name=val" : ""}\r\n`));
        parts.push(Buffer.from(chunk), bytes("\r\n"));
      }
      parts.push(bytes(`0\r\n${body.trailers.map(([n, v]) => `${n}: ${v}\r\n`).join("")}\r\n`));
    }
  }
  head += eol;
  return { head, body: Buffer.concat(parts), headers };
}

const exchangeSpec = fc.record({
  method: fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"),
  path: fc.stringMatching(/^\/[A-Za-z0-9._~%/-]{0,30}(\?[A-Za-z0-9=&]{0,20})?$/),
  version: fc.constantFrom("1.0", "1.1"),
  requestEol: fc.constantFrom(...EOLS),
  requestHeaders: fc.array(headerSpec, { maxLength: 8 }),
  requestBody: bodySpec,
  interim: fc.boolean(),
  status: fc.constantFrom(200, 201, 204, 301, 304, 404, 500),
  reason: fc.stringMatching(/^[A-Za-z][A-Za-z ]{0,12}$|^$/),
  responseEol: fc.constantFrom(...EOLS),
  responseHeaders: fc.array(headerSpec, { maxLength: 8 }),
  responseBody: bodySpec.filter((b) => b.kind !== "none"),
});

const REQUEST_TS = T0;
const RESPONSE_TS = T0 + 5n * MS;

function baseRecord(kind: "request" | "response"): Omit<HttpRecord, "method" | "path" | "version" | "status" | "reason" | "headers" | "headerBytes"> {
  const egress = kind === "request";
  return {
    ts: new Date(Number((egress ? REQUEST_TS : RESPONSE_TS) / MS)).toISOString(),
    connectionId: "conn-1",
    kind,
    role: "client",
    src: egress ? LOCAL : REMOTE,
    dst: egress ? REMOTE : LOCAL,
    pid: 4200,
    comm: "curl",
    latencyMs: egress ? null : 5,
    redacted: [],
  };
}

function generateConversation(
  names: string[],
  exchanges: (typeof exchangeSpec extends fc.Arbitrary<infer T> ? T : never)[],
): { requests: GeneratedMessage[]; responses: GeneratedMessage[] } {
  const requests: GeneratedMessage[] = [];
  const responses: GeneratedMessage[] = [];
  for (const x of exchanges) {
    const version = `HTTP/${x.version}`;
    const req = buildMessage(`${x.method} ${x.path} ${version}`, x.requestEol, names, x.requestHeaders, x.requestBody, true);
    requests.push({
      wire: Buffer.concat([bytes(req.head), req.body]),
      expected: {
        ...baseRecord("request"),
        method: x.method,
        path: x.path,
        version,
        status: null,
        reason: null,
        headers: req.headers,
        headerBytes: req.head.length,
      },
    });
    if (x.interim) {
      const head = `HTTP/1.1 100 Continue${x.responseEol}${x.responseEol}`;
      responses.push({
        wire: bytes(head),
        expected: { ...baseRecord("response"), method: null, path: null, version: "HTTP/1.1", status: 100, reason: "Continue", headers: [], headerBytes: head.length },
      });
    }
    const bodyAllowed = x.method !== "HEAD" && x.status !== 204 && x.status !== 304;
    const statusLine = x.reason === "" ? `${version} ${x.status}` : `${version} ${x.status} ${x.reason}`;
    const res = buildMessage(statusLine, x.responseEol, names, x.responseHeaders, x.responseBody, bodyAllowed);
    responses.push({
      wire: Buffer.concat([bytes(res.head), res.body]),
      expected: {
        ...baseRecord("response"),
        method: null,
        path: null,
        version,
        status: x.status,
        reason: x.reason,
        headers: res.headers,
        headerBytes: res.head.length,
      },
    });
  }
  return { requests, responses };
}

function decodeConversation(requests: Buffer, responses: Buffer, requestCuts: number[], responseCuts: number[]): { records: HttpRecord[]; http: HttpDecoder } {
  const script = new CaptureScript();
  const http = new HttpDecoder({ policy: keepEverything });
  const egress = splitAt(script, "egress", requests, requestCuts).map((c) => ({ ...c, tsNs: REQUEST_TS }));
  const ingress = splitAt(script, "ingress", responses, responseCuts).map((c) => ({ ...c, tsNs: RESPONSE_TS }));
  return { records: http.push([...egress, ...ingress]), http };
}

describe("HttpDecoder on valid message sequences", () => {
  it("parses any split of a generated conversation exactly like the whole conversation and like the model", () => {
    fc.assert(
      fc.property(
        fc.array(headerName, { minLength: 1, maxLength: 4 }),
        fc.array(exchangeSpec, { minLength: 1, maxLength: 5 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (names, exchanges, requestCutPoints, responseCutPoints) => {
          const { requests, responses } = generateConversation(names, exchanges);
          const requestStream = Buffer.concat(requests.map((m) => m.wire));
          const responseStream = Buffer.concat(responses.map((m) => m.wire));
          const model = [...requests, ...responses].map((m) => m.expected);
          const cuts = (points: number[], stream: Buffer) => points.map((p) => p % (stream.length + 1));

          const whole = decodeConversation(requestStream, responseStream, [], []);
          expect(whole.records).toEqual(model);
          const split = decodeConversation(
            requestStream,
            responseStream,
            cuts(requestCutPoints, requestStream),
            cuts(responseCutPoints, responseStream),
          );
          expect(split.records).toEqual(model);
          expect(split.http.counters()).toMatchObject({ malformed: 0, resyncs: 0, oversize: 0, unpairedResponses: 0 });
        },
      ),
      { numRuns: 500 },
    );
  });

  it("parses a generated conversation delivered one byte per chunk", () => {
    fc.assert(
      fc.property(fc.array(headerName, { minLength: 1, maxLength: 3 }), fc.array(exchangeSpec, { minLength: 1, maxLength: 2 }), (names, exchanges) => {
        const { requests, responses } = generateConversation(names, exchanges);
        const requestStream = Buffer.concat(requests.map((m) => m.wire));
        const responseStream = Buffer.concat(responses.map((m) => m.wire));
        const everyByte = (b: Buffer) => [...b.keys()];
        const { records } = decodeConversation(requestStream, responseStream, everyByte(requestStream), everyByte(responseStream));
        expect(records).toEqual([...requests, ...responses].map((m) => m.expected));
      }),
      { numRuns: 50 },
    );
  });
});
