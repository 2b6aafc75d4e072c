/**
 * One hdrcap capture of a port for the length of a benchmark round, in one
 * of two shapes: the library mode (a worker process embedding HttpCapture,
 * records counted) and the CLI mode (`hdrcap-agent capture --format ndjson`
 * with stdout on /dev/null). Both capture the server side only (role server)
 * so each HTTP exchange is one request and one response record.
 */
import { fork, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, openSync, closeSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { stopChild, waitForExit, waitForOutput } from "./child.ts";
import type { WorkerMessage, WorkerResult } from "./hdrcap-protocol.ts";
import { cpuTimes, peakRssBytes } from "./proc.ts";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
const workerBundle = path.join(repoRoot, "bench/dist/hdrcap-worker.js");
/** Diagnostics: HDRCAP_BENCH_AGENT=<main.js> runs the CLI mode with another build (e.g. an earlier commit's). */
const agentCli = process.env.HDRCAP_BENCH_AGENT ? path.resolve(process.env.HDRCAP_BENCH_AGENT) : path.join(repoRoot, "apps/agent/dist/main.js");
const bpfBuildDir = path.join(repoRoot, "bpf/build");

export type HdrcapMode = "library" | "library-packet" | "cli" | "floor-attached" | "floor-drain" | "floor-packet-attached";

/** The V8 flags the installed agent runs with (deploy/bundle/hdrcap-agent): measured as it runs. */
export const AGENT_NODE_FLAGS = ["--max-semi-space-size=4", "--heap-growing-percent=20"];

export interface CaptureSessionResult {
  requests: number;
  responses: number;
  ringbufFull: number;
  truncated: number;
  malformed: number;
  gaps: number;
  resyncs: number;
  /** CLI only: records dropped because stdout did not keep up. */
  outputDropped?: number;
  /** Process CPU (user + system) from ready until the capture stopped. */
  cpuSeconds: number;
  peakRssBytes: number;
  /** Sampled delays from a header block's first byte to its record reaching the consumer (library mode). */
  visibilityHistogramMs: number[] | null;
}

export interface CaptureSession {
  pid: number;
  finish(): Promise<CaptureSessionResult>;
  /** Kills the process if finish() was not reached. */
  abort(): void;
}

/** Bundles the worker as the agent is bundled (workspace code inlined, node_modules external). */
export async function buildWorker(): Promise<void> {
  mkdirSync(path.dirname(workerBundle), { recursive: true });
  await build({
    entryPoints: [path.join(repoRoot, "bench/lib/hdrcap-worker.ts")],
    outfile: workerBundle,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "warning",
    plugins: [
      {
        name: "external-third-party",
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, (args) =>
            args.path.startsWith("@hdrcap/") ? undefined : { path: args.path, external: true },
          );
        },
      },
    ],
  });
}

export function assertCliBuilt(): void {
  if (!existsSync(agentCli)) throw new Error(`${agentCli} is missing: run \`npm run build\` first`);
}

export async function startCapture(mode: HdrcapMode, port: number): Promise<CaptureSession> {
  if (mode === "cli") return startCli(port);
  return startLibrary(port, mode === "library-packet" ? "packet" : mode === "library" ? "socket" : mode);
}

async function startLibrary(port: number, source: "socket" | "packet" | Exclude<HdrcapMode, "library" | "library-packet" | "cli">): Promise<CaptureSession> {
  const child = fork(workerBundle, [String(port), source], {
    env: { ...process.env, HDRCAP_BPF_DIR: bpfBuildDir },
    // Diagnostics, e.g. HDRCAP_BENCH_WORKER_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof --expose-gc".
    execArgv: [...AGENT_NODE_FLAGS, ...(process.env.HDRCAP_BENCH_WORKER_ARGS?.split(" ").filter((a) => a !== "") ?? [])],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const next = () =>
    new Promise<WorkerMessage>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`capture worker exited (${code})`));
      child.once("exit", onExit);
      child.once("message", (m) => {
        child.off("exit", onExit);
        resolve(m as WorkerMessage);
      });
    });
  const ready = await next();
  if (ready.type !== "ready") throw new Error(`capture worker: unexpected ${ready.type}`);
  return {
    pid: child.pid!,
    async finish() {
      const peak = peakRssBytes(child.pid!);
      const resultPromise = next();
      child.send({ type: "stop" });
      const r = (await resultPromise) as WorkerResult;
      if (process.env.HDRCAP_BENCH_WORKER_ARGS) {
        const m = r.memoryAtStop;
        const mib = (n: number) => (n / 1024 / 1024).toFixed(1);
        console.log(`    worker memory at stop: rss ${mib(m.rss)} MiB, heap used ${mib(m.heapUsed)} / total ${mib(m.heapTotal)} MiB, external ${mib(m.external)} MiB`);
      }
      const finalPeak = Math.max(peak, safe(() => peakRssBytes(child.pid!), 0));
      await stopChild(child, "SIGTERM", 5_000);
      return {
        requests: r.requests,
        responses: r.responses,
        ringbufFull: r.ringbufFull,
        truncated: r.truncated,
        malformed: r.malformed,
        gaps: r.gaps,
        resyncs: r.resyncs,
        cpuSeconds: r.cpuSeconds,
        peakRssBytes: finalPeak,
        visibilityHistogramMs: r.visibilityHistogramMs,
      };
    },
    abort: () => child.kill("SIGKILL"),
  };
}

async function startCli(port: number): Promise<CaptureSession> {
  assertCliBuilt();
  const devNull = openSync("/dev/null", "w");
  let child: ChildProcess;
  try {
    // Diagnostics: HDRCAP_BENCH_CLI_ARGS="--ring-buffer-mib 8" adds arguments to the capture command.
    const extra = process.env.HDRCAP_BENCH_CLI_ARGS?.split(" ").filter((a) => a !== "") ?? [];
    child = spawn(process.execPath, [...AGENT_NODE_FLAGS, agentCli, "capture", "--port", String(port), "--role", "server", "--format", "ndjson", ...extra], {
      stdio: ["ignore", devNull, "pipe"],
    });
  } finally {
    closeSync(devNull);
  }
  await waitForOutput(child, child.stderr!, /Ctrl-C to stop/);
  const cpuAtReady = cpuTimes(child.pid!).self;
  let stderr = "";
  child.stderr!.on("data", (b: Buffer) => (stderr += b.toString()));
  return {
    pid: child.pid!,
    async finish() {
      const peak = peakRssBytes(child.pid!);
      const exited = waitForExit(child);
      // CPU is read just before SIGINT: the final drain is not counted here.
      const cpuSeconds = cpuTimes(child.pid!).self - cpuAtReady;
      child.kill("SIGINT");
      await exited;
      return { ...parseCliSummary(stderr), cpuSeconds, peakRssBytes: peak, visibilityHistogramMs: null };
    },
    abort: () => child.kill("SIGKILL"),
  };
}

/** The counter summary `hdrcap-agent capture` prints on SIGINT. */
export function parseCliSummary(s: string): Omit<CaptureSessionResult, "cpuSeconds" | "peakRssBytes" | "visibilityHistogramMs"> {
  const records = /records:\s+\d+ delivered \((\d+) requests, (\d+) responses\)/.exec(s);
  const kernel = /kernel:\s+\d+ chunks emitted, (\d+) lost \(ring buffer full\), (\d+) truncated/.exec(s);
  const decoder = /decoder:\s+(\d+) malformed, \d+ oversize, (\d+) resyncs, (\d+) gaps/.exec(s);
  const output = /output:\s+\d+ written, (\d+) dropped/.exec(s);
  if (!records || !kernel || !decoder) throw new Error(`unexpected hdrcap-agent summary:\n${s}`);
  return {
    requests: Number(records[1]),
    responses: Number(records[2]),
    ringbufFull: Number(kernel[1]),
    truncated: Number(kernel[2]),
    malformed: Number(decoder[1]),
    resyncs: Number(decoder[2]),
    gaps: Number(decoder[3]),
    outputDropped: output ? Number(output[1]) : 0,
  };
}

function safe<T>(f: () => T, fallback: T): T {
  try {
    return f();
  } catch {
    return fallback;
  }
}
