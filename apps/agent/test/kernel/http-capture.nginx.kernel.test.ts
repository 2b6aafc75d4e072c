/**
 * nginx from the distribution (writev for headers, sendfile for bodies) as the
 * server: its response header blocks are recorded exactly on both ends of a
 * keep-alive connection, and bodies (some full of text that looks like HTTP)
 * never become records, whether copied (client reads) or not (sendfile).
 */
import { afterEach, describe, expect, it } from "vitest";
import {
  Cleanups,
  type RecordCapture,
  countCompleteMessages,
  expectExchange,
  rawConnect,
  self,
  startNginx,
  startRecordCapture,
} from "./http-capture-harness.ts";

const cleanups = new Cleanups();
let rc: RecordCapture | undefined;

afterEach(async () => {
  rc?.stop();
  rc = undefined;
  await cleanups.run();
});

/** A body of `size` bytes that repeats fake HTTP messages: any that got parsed would be a spurious record. */
function decoyBody(size: number): Buffer {
  const decoy = "GET /decoy HTTP/1.1\r\nHost: decoy\r\n\r\nHTTP/1.1 500 Decoy\r\nContent-Length: 0\r\n\r\n";
  return Buffer.from(decoy.repeat(Math.ceil(size / decoy.length) + 1).slice(0, size), "latin1");
}

const SIZES = [0, 1, 100, 4095, 4096, 16387, 65536, 100 * 1024 + 17, 1024 * 1024 + 3];

describe("HttpCapture with nginx", { timeout: 60_000 }, () => {
  for (const captureBytes of [4096, 65536]) {
    it(`records nginx responses for static files of ${SIZES.length} sizes on one keep-alive connection exactly (capture ${captureBytes} B)`, async () => {
      const files: Record<string, Buffer> = {};
      for (const size of SIZES) files[`f${size}.txt`] = decoyBody(size);
      const nginx = await startNginx(files);
      cleanups.add(() => nginx.stop());
      const [worker] = nginx.workerPids();
      rc = startRecordCapture({ filter: { ports: [nginx.port], captureBytes } });
      const client = await rawConnect("127.0.0.1", nginx.port);
      cleanups.add(() => client.close());

      const requests: Buffer[] = [];
      const methods: string[] = [];
      const send = async (method: string, target: string, extra = "") => {
        const req = Buffer.from(`${method} ${target} HTTP/1.1\r\nHost: hck-nginx\r\nUser-Agent: hck\r\n${extra}\r\n`, "latin1");
        requests.push(req);
        methods.push(method);
        await client.write(req);
        const want = methods.length;
        for (let i = 0; countCompleteMessages(client.received(), "response", methods) < want; i++) {
          if (i > 500) throw new Error(`no complete response to ${method} ${target}`);
          await new Promise((r) => setTimeout(r, 5));
        }
      };
      for (const size of SIZES) await send("GET", `/f${size}.txt`);
      await send("HEAD", `/f${SIZES[5]}.txt`);
      await send("GET", "/missing.txt");
      await send("GET", `/f${SIZES[7]}.txt`, "Range: bytes=10-99\r\n");
      for (const size of SIZES.slice().reverse()) await send("GET", `/f${size}.txt?again`);
      const n = methods.length;
      await rc.waitFor((r) => r.length >= 4 * n, `${4 * n} records`);
      await rc.settle(200);
      expect(rc.records.length).toBe(4 * n);
      expectExchange(rc.records, {
        client: client.local,
        server: { ip: "127.0.0.1", port: nginx.port },
        requestBytes: Buffer.concat(requests),
        responseBytes: client.received(),
        clientProcess: self(),
        serverProcess: { pid: worker!, comm: "nginx" },
      });
      expect(rc.records.filter((r) => r.path === "/decoy" || r.reason === "Decoy")).toEqual([]);
      const c = rc.counters();
      expect(c.decoder.paired).toBe(2 * n);
      expect(c.decoder.malformed + c.decoder.resyncs + c.decoder.unpairedResponses).toBe(0);
      expect(c.kernel.ringbufFull).toBe(0n);
      // "truncated" counts syscalls that start a message and were not copied whole: here
      // the client's reads of a head plus a large body (the head itself always fits).
      if (captureBytes === 65536) expect(c.kernel.truncated).toBe(0n);
      else expect(c.kernel.truncated).toBeGreaterThan(0n);
      // Bodies are stepped over by framing, whether their bytes were copied or not.
      expect(c.decoder.gaps).toBe(c.decoder.gapsBridged);
    });
  }
});
