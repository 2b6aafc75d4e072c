/**
 * Load: 50,000 keep-alive requests from a separate Node process to nginx.
 * Every request and response is captured on both ends (200,000 records),
 * checked as it arrives (exact request heads, in order per connection;
 * response heads by name and value where they are fixed) and counted, so
 * captured = sent exactly, with the kernel's loss counters at zero.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import type { HttpRecord } from "@hdrcap/api/records";
import { HttpCapture } from "../../src/capture/http-capture.ts";
import { CLEAR_POLICY, Cleanups, runChild, sleep, startNginx } from "./http-capture-harness.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const cleanups = new Cleanups();

afterEach(() => cleanups.run());

const CONNS = 50;
const PER_CONN = 1000;
/** Requests per second: 50,000 in about 12 s, leaving CPU for the capture on a 2-CPU host. */
const RATE = 4000;
const BODY = Buffer.from("load test body\n");
const RESPONSE_NAMES = ["Server", "Date", "Content-Type", "Content-Length", "Last-Modified", "Connection", "ETag", "Accept-Ranges"];

describe("HttpCapture under load", { timeout: 90_000 }, () => {
  it(`captures ${CONNS * PER_CONN} keep-alive requests to nginx and their responses on both ends, nothing lost`, async () => {
    const nginx = await startNginx({ "load.txt": BODY });
    cleanups.add(() => nginx.stop());
    const [worker] = nginx.workerPids();

    const problems: string[] = [];
    const problem = (msg: string, r: HttpRecord) => {
      if (problems.length < 5) problems.push(`${msg}: ${JSON.stringify(r).slice(0, 600)}`);
    };
    /** Next expected sequence number per side and connection ("role port"). */
    const nextSeq = new Map<string, number>();
    const counts = { request: 0, response: 0 };
    let clientPid = 0;
    const check = (r: HttpRecord) => {
      counts[r.kind]++;
      const clientPort = r.kind === "request" ? r.src.port : r.dst.port;
      const key = `${r.role} ${r.kind} ${clientPort}`;
      const seq = nextSeq.get(key) ?? 0;
      nextSeq.set(key, seq + 1);
      const serverEnd = r.role === "server";
      if (r.pid !== (serverEnd ? worker : r.pid) || r.comm !== (serverEnd ? "nginx" : "node")) problem("process", r);
      if (!serverEnd) {
        if (clientPid === 0) clientPid = r.pid;
        else if (r.pid !== clientPid) problem("client pid", r);
      }
      if (r.kind === "request") {
        const m = /^\/load\.txt\?c=(\d+)&s=(\d+)$/.exec(r.path ?? "");
        if (
          !m ||
          Number(m[2]) !== seq ||
          r.method !== "GET" ||
          r.version !== "HTTP/1.1" ||
          r.latencyMs !== null ||
          JSON.stringify(r.headers) !==
            JSON.stringify([
              { name: "Host", value: "hck-load" },
              { name: "X-Load", value: `${m[1]}/${m[2]}` },
            ])
        )
          problem(`request ${seq}`, r);
      } else if (
        r.status !== 200 ||
        r.reason !== "OK" ||
        r.latencyMs === null ||
        r.latencyMs < 0 ||
        r.headers.map((h) => h.name).join() !== RESPONSE_NAMES.join() ||
        r.headers[3]!.value !== String(BODY.length) ||
        r.headers[2]!.value !== "application/octet-stream" ||
        r.headers[5]!.value !== "keep-alive" ||
        !r.headers[0]!.value.startsWith("nginx")
      ) {
        problem("response", r);
      }
    };

    const capture = HttpCapture.start({
      filter: { ports: [nginx.port] },
      policy: CLEAR_POLICY,
      onRecords: (records) => {
        for (const r of records) check(r);
      },
    });
    cleanups.add(() => capture.stop());

    const started = Date.now();
    const load = await runChild(
      process.execPath,
      [path.join(here, "fixtures/load-client.mjs"), "127.0.0.1", String(nginx.port), String(CONNS), String(PER_CONN), "/load.txt", String(RATE)],
      60_000,
    );
    expect(load.code, load.stderr).toBe(0);
    const out = JSON.parse(load.stdout.toString()) as { pid: number; sent: number; completed: number; ports: number[]; ms: number };
    const total = CONNS * PER_CONN;
    expect(out.sent).toBe(total);
    expect(out.completed).toBe(total);
    const deadline = Date.now() + 10_000;
    while (counts.request + counts.response < 4 * total && Date.now() < deadline) await sleep(20);
    await sleep(100);
    capture.stop();
    const c = capture.counters();
    const rate = Math.round(total / (out.ms / 1000));
    console.log(`load: ${total} requests in ${out.ms} ms (${rate}/s), total ${Date.now() - started} ms; kernel`, c.kernel);

    expect(c.kernel.ringbufFull).toBe(0n);
    expect(c.kernel.truncated).toBe(0n);
    expect(c.kernel.recordsMalformed).toBe(0n);
    expect(problems).toEqual([]);
    expect(clientPid).toBe(out.pid);
    expect(counts).toEqual({ request: 2 * total, response: 2 * total });
    // Per connection and end: every request and every response, in order.
    expect(nextSeq.size).toBe(4 * CONNS);
    for (const port of out.ports)
      for (const key of ["client request", "client response", "server request", "server response"])
        expect(nextSeq.get(`${key} ${port}`), `${key} ${port}`).toBe(PER_CONN);
    expect(c.decoder.paired).toBe(2 * total);
    expect(c.decoder.malformed + c.decoder.resyncs + c.decoder.unpairedResponses + c.decoder.internalErrors).toBe(0);
    // sendfile bodies are gaps in nginx's egress stream, all inside a known Content-Length.
    expect(c.decoder.gaps).toBe(c.decoder.gapsBridged);
  });
});
