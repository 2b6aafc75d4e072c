import { execFileSync } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { RecordOutput } from "../../src/cli/record-output.ts";

const dirs: string[] = [];
const fds: number[] = [];
afterEach(() => {
  for (const fd of fds.splice(0)) closeSync(fd);
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), "hdrcap-output-"));
  dirs.push(d);
  return d;
}

const text = (i: number) => `{"n":${i},"pad":"${"x".repeat(90)}"}`;
const line = (i: number) => `${text(i)}\n`;

describe("RecordOutput", () => {
  it("writes every record, in order, and flush waits until the fd has them all", async () => {
    const file = path.join(tempDir(), "out.ndjson");
    const fd = openSync(file, "w");
    fds.push(fd);
    const out = new RecordOutput<number>({ fd, format: text, newline: true, bufferBytes: 8192, buffers: 3 });
    let expected = "";
    for (let batch = 0; batch < 50; batch++) {
      const records = Array.from({ length: 7 }, (_, i) => batch * 7 + i);
      out.write(records);
      for (const r of records) expected += line(r);
      // The event loop turns between batches, as between drain ticks.
      await new Promise((r) => setImmediate(r));
    }
    expect(await out.flush(5_000)).toBe(true);
    expect(readFileSync(file, "utf8")).toBe(expected);
    expect(out.counters()).toMatchObject({ accepted: 350, written: 350, dropped: 0 });
  });

  it("drops and counts records instead of growing when the reader stops, and delivers the rest once it reads again", async () => {
    const fifo = path.join(tempDir(), "fifo");
    execFileSync("mkfifo", [fifo]);
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    fds.push(reader);
    // The output owns a pipe's fd once it writes (its stream closes it): destroy() at the end.
    const writer = openSync(fifo, "w");
    const out = new RecordOutput<number>({ fd: writer, format: line, bufferBytes: 16 * 1024, buffers: 4 });
    // 1 MiB of records against a 64 KiB pipe and 64 KiB of buffers: most cannot be kept.
    const total = 10_000;
    for (let i = 0; i < total; i += 100) {
      out.write(Array.from({ length: 100 }, (_, k) => i + k));
      await new Promise((r) => setTimeout(r, 1));
    }
    const stalled = out.counters();
    expect(stalled.dropped).toBeGreaterThan(total / 2);
    expect(stalled.accepted + stalled.dropped).toBe(total);

    const chunk = Buffer.alloc(65536);
    let received = "";
    const flushed = out.flush(5_000);
    let done = false;
    void flushed.then(() => (done = true));
    for (;;) {
      try {
        const n = readSync(reader, chunk);
        received += chunk.toString("utf8", 0, n);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EAGAIN") throw err;
        if (done) break; // flushed and the pipe is empty
        await new Promise((r) => setTimeout(r, 1));
      }
    }
    expect(await flushed).toBe(true);
    const c = out.counters();
    expect(c.written).toBe(c.accepted);
    const lines = received.split("\n").filter((l) => l !== "");
    expect(lines.length).toBe(c.written);
    // What arrives is whole records in order, with gaps where records were dropped.
    const ns = lines.map((l) => (JSON.parse(l) as { n: number }).n);
    for (let i = 1; i < ns.length; i++) expect(ns[i]!).toBeGreaterThan(ns[i - 1]!);
    out.destroy();
  });

  it("stops taking records when the reader goes away (EPIPE) and says so once", async () => {
    const fifo = path.join(tempDir(), "fifo");
    execFileSync("mkfifo", [fifo]);
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writer = openSync(fifo, "w");
    closeSync(reader);
    const closed: string[] = [];
    const out = new RecordOutput<number>({ fd: writer, format: line, onClosed: (err) => closed.push(err.code ?? "?") });
    out.write([1, 2, 3]);
    await out.flush(2_000);
    out.write([4, 5]);
    expect(closed).toEqual(["EPIPE"]);
    expect(out.counters()).toMatchObject({ written: 0, dropped: 5 });
  });
});
