/**
 * The standalone CLI end to end: the built agent (`npm run build -w
 * @hdrcap/agent`) runs as a child process, prints one NDJSON record per header
 * block exactly as the wire carried it, stops itself at --max-records with a
 * summary on stderr; and SIGKILL of it leaves no hdrcap program loaded.
 */
import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from "node:child_process";
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { HttpRecord } from "@hdrcap/api/records";
import { Cleanups, expectExchange, rawConnect, self, sleep, startRawServer } from "./http-capture-harness.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../../../..");
const mainJs = path.join(repo, "apps/agent/dist/main.js");
const cleanups = new Cleanups();

afterEach(() => cleanups.run());

beforeAll(() => {
  execFileSync("npm", ["run", "build", "-w", "@hdrcap/agent"], { cwd: repo, stdio: "pipe" });
}, 120_000);

interface Agent {
  child: ChildProcessWithoutNullStreams;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts the agent and waits for its "capturing" line (programs attached); readStdout false: its stdout is never read. */
async function startAgent(args: string[], options: { readStdout?: boolean } = {}): Promise<Agent> {
  const child = spawn(process.execPath, [mainJs, "capture", ...args], { cwd: repo, stdio: ["pipe", "pipe", "pipe"] });
  cleanups.add(() => child.kill("SIGKILL"));
  let out = "";
  let err = "";
  if (options.readStdout === false) child.stdout.pause();
  else child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  const deadline = Date.now() + 10_000;
  while (!err.includes("capturing HTTP")) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`agent did not start: ${err}`);
    await sleep(20);
  }
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Program ids the process holds open (its anon_inode:bpf-prog fds). */
function heldProgramIds(pid: number): number[] {
  const ids: number[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) !== "anon_inode:bpf-prog") continue;
      const m = /^prog_id:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8"));
      if (m) ids.push(Number(m[1]));
    } catch {
      // fd closed meanwhile
    }
  }
  return [...new Set(ids)].sort((a, b) => a - b);
}

/** Loaded programs whose name starts with "hc_" (this agent's prefix), by id. */
function hdrcapPrograms(): Map<number, string> {
  const list = JSON.parse(execFileSync("bpftool", ["prog", "show", "--json"], { encoding: "utf8" })) as { id: number; name?: string }[];
  return new Map(list.filter((p) => p.name?.startsWith("hc_")).map((p) => [p.id, p.name!]));
}

describe("hdrcap-agent capture (built CLI)", { timeout: 60_000 }, () => {
  it("prints exact NDJSON records, stops at --max-records and summarises on stderr", async () => {
    const server = await startRawServer("127.0.0.1", (n) =>
      Buffer.from(`HTTP/1.1 201 Created\r\nLocation: /items/${n}\r\nX-Dup: a\r\nX-Dup: b\r\nContent-Length: 0\r\n\r\n`),
    );
    cleanups.add(() => server.close());
    const exchanges = 3;
    const agent = await startAgent(["--port", String(server.port), "--format", "ndjson", "--max-records", String(4 * exchanges)]);
    const client = await rawConnect("127.0.0.1", server.port);
    cleanups.add(() => client.close());
    const sent: Buffer[] = [];
    for (let i = 0; i < exchanges; i++) {
      const req = Buffer.from(`POST /items?i=${i} HTTP/1.1\r\nHost: hck-cli\r\nContent-Length: 0\r\nX-Client: cli-${i}\r\n\r\n`);
      sent.push(req);
      await client.write(req);
      await client.waitCount("201 Created", i + 1);
    }
    const result = await Promise.race([agent.exited, sleep(10_000).then(() => null)]);
    expect(result, `agent did not stop by itself; stderr: ${agent.stderr()}`).toEqual({ code: 0, signal: null });

    const lines = agent.stdout().split("\n").filter(Boolean);
    expect(lines.length).toBe(4 * exchanges);
    const records = lines.map((l) => JSON.parse(l) as HttpRecord);
    expectExchange(records, {
      client: client.local,
      server: { ip: "127.0.0.1", port: server.port },
      requestBytes: Buffer.concat(sent),
      responseBytes: client.received(),
      clientProcess: self(),
      serverProcess: self(),
    });
    const stderr = agent.stderr();
    expect(stderr).toContain("hdrcap-agent: stopped (max-records)");
    expect(stderr).toContain(`records:  ${4 * exchanges} delivered (${2 * exchanges} requests, ${2 * exchanges} responses), 0 over budget`);
    expect(stderr).toMatch(/kernel: +\d+ chunks emitted, 0 lost \(ring buffer full\), 0 truncated/);
    expect(stderr).toContain("decoder:  0 malformed, 0 oversize, 0 resyncs, 0 gaps");
  });

  it("shows a live status line with --progress and erases it before the summary", async () => {
    const server = await startRawServer("127.0.0.1", () => Buffer.from("HTTP/1.1 204 No Content\r\n\r\n"));
    cleanups.add(() => server.close());
    const agent = await startAgent(["--port", String(server.port), "--progress"]);
    const client = await rawConnect("127.0.0.1", server.port);
    cleanups.add(() => client.close());
    for (let i = 0; i < 3; i++) {
      await client.write(Buffer.from(`GET /p${i} HTTP/1.1\r\nHost: hck-progress\r\n\r\n`));
      await client.waitCount("204 No Content", i + 1);
    }
    // Both ends of each exchange are captured (role any): 12 records, shown within the next refresh.
    const deadline = Date.now() + 5_000;
    while (!agent.stderr().includes("· 12 records (") && Date.now() < deadline) await sleep(100);
    agent.child.kill("SIGINT");
    expect(await agent.exited).toEqual({ code: 0, signal: null });
    const stderr = agent.stderr();
    expect(stderr).toMatch(/\r\x1b\[2K\d+ s · 12 records \(\d+\/s\) · 0 lost in kernel · 0 truncated · 0 malformed · 0 dropped at stdout/);
    expect(stderr).toContain("\r\x1b[2Khdrcap-agent: stopped (interrupted)");
  });

  it("drops and counts records when its stdout reader stops reading, and still captures everything", async () => {
    const response = Buffer.from(`HTTP/1.1 200 OK\r\nX-Pad: ${"p".repeat(6000)}\r\nContent-Length: 0\r\n\r\n`);
    const server = await startRawServer("127.0.0.1", () => response);
    cleanups.add(() => server.close());
    // Nobody reads stdout: the pipe fills at once, then the agent's bounded buffers (8 MiB).
    // 64 KiB per syscall: the server answers a batch of 8 pipelined requests with one ≈ 48 KiB write.
    const agent = await startAgent(["--port", String(server.port), "--format", "ndjson", "--capture-bytes", "65536"], { readStdout: false });
    const client = await rawConnect("127.0.0.1", server.port);
    cleanups.add(() => client.close());
    // 1,200 exchanges, 4 records each (both ends are this process), ≈ 15 MB of NDJSON.
    const batches = 150;
    const perBatch = 8;
    for (let b = 0; b < batches; b++) {
      const reqs = Array.from({ length: perBatch }, (_, i) => `GET /pad?i=${b * perBatch + i} HTTP/1.1\r\nHost: hck-cli\r\n\r\n`).join("");
      await client.write(Buffer.from(reqs));
      await client.waitBytes((b + 1) * perBatch * response.length, 10_000);
    }
    await sleep(300); // the last drain tick
    agent.child.kill("SIGINT");
    const result = await Promise.race([agent.exited, sleep(15_000).then(() => null)]);
    expect(result, `agent did not exit; stderr: ${agent.stderr()}`).toEqual({ code: 0, signal: null });
    const stderr = agent.stderr();
    const records = /records: +(\d+) delivered/.exec(stderr);
    const output = /output: +(\d+) written, (\d+) dropped/.exec(stderr);
    expect(records && output, stderr).toBeTruthy();
    const exchanges = batches * perBatch;
    expect(Number(records![1])).toBe(4 * exchanges);
    expect(stderr).toMatch(/kernel: +\d+ chunks emitted, 0 lost \(ring buffer full\)/);
    const written = Number(output![1]);
    const dropped = Number(output![2]);
    expect(dropped).toBeGreaterThan(0);
    expect(written + dropped).toBe(4 * exchanges);
  });

  it("leaves no hdrcap program loaded after SIGKILL of the agent", async () => {
    const before = hdrcapPrograms();
    const agent = await startAgent(["--port", "1", "--format", "ndjson"]);
    const pid = agent.child.pid!;
    const held = heldProgramIds(pid);
    const during = hdrcapPrograms();
    expect(held.length).toBe(3);
    for (const id of held) {
      expect(before.has(id)).toBe(false);
      expect(during.get(id), `program ${id} is listed by bpftool with the hc_ prefix`).toMatch(/^hc_/);
    }
    agent.child.kill("SIGKILL");
    expect((await agent.exited).signal).toBe("SIGKILL");
    // Programs are freed after their last fd closes, deferred by RCU: poll briefly.
    const deadline = Date.now() + 5000;
    let left = held.filter((id) => hdrcapPrograms().has(id));
    while (left.length > 0 && Date.now() < deadline) {
      await sleep(50);
      const now = hdrcapPrograms();
      left = left.filter((id) => now.has(id));
    }
    expect(left).toEqual([]);
    // Whatever else is loaded with the prefix was loaded before us or by someone else.
    for (const id of hdrcapPrograms().keys()) expect(held).not.toContain(id);
  });
});
