/**
 * The traditional pipeline as a reference: tcpdump writes a pcap of the port
 * while the load runs, then tshark extracts the same request headers from it.
 * Headers become visible only once tshark has read the whole file.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, statSync, unlinkSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { waitForExit, waitForOutput } from "./child.ts";
import { cpuTimes } from "./proc.ts";

export interface PacketCapture {
  pid: number;
  /** Stops tcpdump, then runs tshark over the file. */
  finishAndExtract(): Promise<PacketPipelineResult>;
  abort(): void;
}

export interface PacketPipelineResult {
  requests: number;
  responses: number;
  pcapBytes: number;
  tcpdumpCpuSeconds: number;
  /** Packets tcpdump reports "dropped by kernel". */
  packetsDropped: number;
  tsharkCpuSeconds: number;
  tsharkWallSeconds: number;
  tsharkPeakRssBytes: number;
}

const TSHARK_FIELDS = [
  "http.request.method",
  "http.response.code",
  "http.host",
  "http.user_agent",
  "http.accept",
  "http.accept_language",
  "http.accept_encoding",
  // X-Request-Id has no named field; the raw header lines carry it.
  "http.request.line",
];

export async function startPacketCapture(port: number, workDir: string): Promise<PacketCapture> {
  const pcap = path.join(workDir, "capture.pcap");
  // -Z root: Debian's tcpdump otherwise drops to user tcpdump and cannot write into our 0700 temp dir.
  // -B 32 MiB: a fair operator setting for a loopback load test (default 2 MiB drops packets).
  const child: ChildProcess = spawn("tcpdump", ["-i", "lo", "-n", "-s", "0", "-B", "32768", "-Z", "root", "-w", pcap, "tcp", "port", String(port)], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  await waitForOutput(child, child.stderr!, /listening on lo/);
  let stderr = "";
  child.stderr!.on("data", (b: Buffer) => (stderr += b.toString()));
  return {
    pid: child.pid!,
    async finishAndExtract() {
      const cpu = cpuTimes(child.pid!).self;
      const exited = waitForExit(child);
      child.kill("SIGINT");
      await exited;
      const dropped = Number(/(\d+) packets? dropped by kernel/.exec(stderr)?.[1] ?? 0);
      const pcapBytes = statSync(pcap).size;
      const t = await runTshark(pcap, port, workDir);
      unlinkSync(pcap);
      return { ...t, pcapBytes, tcpdumpCpuSeconds: cpu, packetsDropped: dropped };
    },
    abort: () => child.kill("SIGKILL"),
  };
}

async function runTshark(pcap: string, port: number, workDir: string) {
  const timeFile = path.join(workDir, "tshark.time");
  const args = ["-f", "%e %U %S %M", "-o", timeFile, "tshark", "-n", "-r", pcap, "-d", `tcp.port==${port},http`,
    "-Y", "http.request or http.response", "-T", "fields", "-E", "separator=\t"];
  for (const f of TSHARK_FIELDS) args.push("-e", f);
  const child = spawn("/usr/bin/time", args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, HOME: workDir } });
  let stderr = "";
  child.stderr!.on("data", (b: Buffer) => (stderr += b.toString()));
  let requests = 0;
  let responses = 0;
  const lines = createInterface({ input: child.stdout! });
  lines.on("line", (line) => {
    // A frame may carry several pipelined messages: the fields hold comma-separated lists.
    const [method, code] = line.split("\t", 2);
    if (method) requests += method.split(",").length;
    if (code) responses += code.split(",").length;
  });
  const closed = new Promise((r) => lines.once("close", r));
  const code = await waitForExit(child);
  await closed;
  if (code !== 0) throw new Error(`tshark failed (${code}): ${stderr.trim()}`);
  const [wall, user, sys, maxKb] = readFileSync(timeFile, "utf8").trim().split("\n").pop()!.split(/\s+/).map(Number) as [number, number, number, number];
  return { requests, responses, tsharkCpuSeconds: user + sys, tsharkWallSeconds: wall, tsharkPeakRssBytes: maxKb * 1024 };
}
