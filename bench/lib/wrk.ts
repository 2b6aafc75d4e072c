/**
 * Drives a URL with wrk for a fixed duration with a browser-like set of
 * request headers, and parses its summary (requests, rate, latency
 * percentiles) and its own CPU time (through GNU time).
 */
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { waitForExit } from "./child.ts";

/** Sent with every request; Host comes from the URL, so six headers in all. */
export const REQUEST_HEADERS: Record<string, string> = {
  "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
  Accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
  "Accept-Language": "en-US,en;q=0.5",
  "Accept-Encoding": "gzip, deflate, br",
  "X-Request-Id": "7f3c2a9e-5b1d-4c8e-9a6f-2d4b8e1c0a37",
};

export interface WrkOptions {
  url: string;
  threads: number;
  connections: number;
  durationSeconds: number;
  /** Folder for the Lua script and the time output. */
  workDir: string;
  /**
   * Each connection waits this long after a response before its next request
   * (wrk's Lua delay()): a paced load of about connections / (delay + latency)
   * requests per second instead of as many as the server can answer.
   */
  delayMs?: number;
}

export interface WrkResult {
  /** Completed requests (responses received). */
  requests: number;
  seconds: number;
  requestsPerSecond: number;
  latencyUs: { p50: number; p75: number; p90: number; p99: number };
  socketErrors: string | null;
  non2xx: number;
  /** utime + stime of wrk. */
  cpuSeconds: number;
  pid: number;
}

/** A Lua script that only sets headers (wrk then builds the request once, as with -H), and the pacing delay if any. */
export function writeHeaderScript(dir: string, delayMs?: number): string {
  const file = path.join(dir, "headers.lua");
  const lines = Object.entries(REQUEST_HEADERS).map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}`);
  if (delayMs !== undefined && delayMs > 0) lines.push(`function delay() return ${delayMs} end`);
  writeFileSync(file, lines.join("\n") + "\n");
  return file;
}

function toMicros(value: string, unit: string): number {
  const v = Number(value);
  switch (unit) {
    case "us":
      return v;
    case "ms":
      return v * 1e3;
    case "s":
      return v * 1e6;
    case "m":
      return v * 60e6;
    default:
      throw new Error(`unknown wrk latency unit ${unit}`);
  }
}

export function parseWrkOutput(out: string): Omit<WrkResult, "cpuSeconds" | "pid"> {
  const pct = (p: string) => {
    const m = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, "m").exec(out);
    if (!m) throw new Error(`wrk output has no ${p}% latency:\n${out}`);
    return toMicros(m[1]!, m[2]!);
  };
  const total = /^\s*(\d+) requests in ([\d.]+)(us|ms|s|m),/m.exec(out);
  const rate = /^Requests\/sec:\s+([\d.]+)/m.exec(out);
  if (!total || !rate) throw new Error(`unexpected wrk output:\n${out}`);
  return {
    requests: Number(total[1]),
    seconds: toMicros(total[2]!, total[3]!) / 1e6,
    requestsPerSecond: Number(rate[1]),
    latencyUs: { p50: pct("50"), p75: pct("75"), p90: pct("90"), p99: pct("99") },
    socketErrors: /^\s*Socket errors: (.*)$/m.exec(out)?.[1] ?? null,
    non2xx: Number(/^\s*Non-2xx or 3xx responses: (\d+)/m.exec(out)?.[1] ?? 0),
  };
}

export async function runWrk(o: WrkOptions, onStart?: (pid: number) => void): Promise<WrkResult> {
  const script = writeHeaderScript(o.workDir, o.delayMs);
  const timeFile = path.join(o.workDir, "wrk.time");
  const child = spawn(
    "/usr/bin/time",
    ["-f", "%U %S", "-o", timeFile, "wrk", "--latency", "-t", String(o.threads), "-c", String(o.connections),
      "-d", `${o.durationSeconds}s`, "-s", script, o.url],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  child.stdout!.on("data", (b: Buffer) => (out += b.toString()));
  child.stderr!.on("data", (b: Buffer) => (out += b.toString()));
  onStart?.(child.pid!);
  const code = await waitForExit(child);
  if (code !== 0) throw new Error(`wrk failed (${code}):\n${out}`);
  const [user, sys] = readFileSync(timeFile, "utf8").trim().split(/\s+/).slice(-2).map(Number) as [number, number];
  return { ...parseWrkOutput(out), cpuSeconds: user + sys, pid: child.pid! };
}
