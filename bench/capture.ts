/**
 * `npm run bench -- capture`: what capturing HTTP request headers costs a busy
 * nginx, hdrcap against the alternatives, measured side by side in one run.
 *
 * Modes, alternated round by round so drift and neighbours' noise spread
 * over all of them: off (baseline), hdrcap as a library (the agent's design,
 * records counted), hdrcap's CLI (NDJSON to /dev/null), nginx's own access
 * log of six headers, and tcpdump + tshark. Every round starts its capture
 * before the load and stops it after, so all connections are seen from accept().
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { sleep } from "./lib/child.ts";
import { assertCliBuilt, buildWorker, startCapture, type CaptureSession, type CaptureSessionResult, type HdrcapMode } from "./lib/hdrcap-session.ts";
import { startNginx, type BenchNginx } from "./lib/nginx.ts";
import { bpfRunStats, cpuSeconds, enableBpfStats } from "./lib/proc.ts";
import { median, sum } from "./lib/stats.ts";
import { renderMarkdown, renderText, type Table } from "./lib/table.ts";
import { startPacketCapture, type PacketCapture, type PacketPipelineResult } from "./lib/tcpdump-tshark.ts";
import { REQUEST_HEADERS, runWrk, type WrkResult } from "./lib/wrk.ts";

const MODES = ["off", "hdrcap-floor-attached", "hdrcap-floor-drain", "hdrcap", "hdrcap-floor-packet", "hdrcap-packet", "hdrcap-cli", "access-log", "tcpdump+tshark"] as const;
type Mode = (typeof MODES)[number];

const MODE_LABEL: Record<Mode, string> = {
  off: "off (baseline)",
  "hdrcap-floor-attached": "floor: programs attached, every process filtered out",
  "hdrcap-floor-drain": "floor: capture + drain, no HTTP parsing",
  "hdrcap-floor-packet": "floor: TC program on lo, every packet filtered out",
  hdrcap: "hdrcap library (counter)",
  "hdrcap-packet": "hdrcap library, packet source (TC on lo)",
  "hdrcap-cli": "hdrcap CLI (ndjson > /dev/null)",
  "access-log": "nginx access_log (6 headers)",
  "tcpdump+tshark": "tcpdump -w + tshark",
};

export interface CaptureBenchOptions {
  quick: boolean;
  rounds: number;
  durationSeconds: number;
  threads: number;
  connections: number;
  modes: Mode[];
  /** Modes also measured under a paced (not saturating) load; empty: none. */
  pacedModes: Mode[];
  pacedConnections: number;
  /** wrk's per-connection wait between a response and the next request. */
  pacedDelayMs: number;
  /** Write docs/benchmarks.md (full runs only by default). */
  writeDocs: boolean;
}

/** Saturated: wrk as fast as nginx answers (both cores busy). Paced: wrk waits between requests, nginx has idle time. */
type Load = "saturated" | "paced";

/** The paced load runs the modes whose cost it is meant to show (tcpdump's is dominated by tshark after the fact). */
const PACED_MODES: Mode[] = ["off", "hdrcap", "hdrcap-cli", "access-log"];

interface BpfWindow {
  runTimeNs: number;
  runCount: number;
  served: number;
}

interface RoundResult {
  mode: Mode;
  load: Load;
  round: number;
  wrk: WrkResult;
  /** Requests nginx handled in the round (stub_status). */
  served: number;
  nginxCpuSeconds: number;
  hdrcap?: CaptureSessionResult;
  bpf?: BpfWindow;
  packets?: PacketPipelineResult;
}

const repoRoot = fileURLToPath(new URL("../", import.meta.url));

export function parseCaptureArgs(argv: string[]): CaptureBenchOptions {
  const quick = argv.includes("--quick");
  const value = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const modes = (value("--modes")?.split(",") ?? [...MODES]) as Mode[];
  for (const m of modes) if (!MODES.includes(m)) throw new Error(`unknown mode ${m}; known: ${MODES.join(", ")}`);
  if (!modes.includes("off")) modes.unshift("off");
  const pacedModes = argv.includes("--no-paced") ? [] : modes.filter((m) => PACED_MODES.includes(m));
  return {
    quick,
    rounds: Number(value("--rounds") ?? (quick ? 1 : 3)),
    durationSeconds: Number(value("--duration") ?? (quick ? 2 : 6)),
    threads: Number(value("--threads") ?? 2),
    connections: Number(value("--connections") ?? 16),
    modes,
    pacedModes: pacedModes.length > 1 ? pacedModes : [],
    pacedConnections: Number(value("--paced-connections") ?? 200),
    pacedDelayMs: Number(value("--paced-delay-ms") ?? 10),
    writeDocs: argv.includes("--write-docs") || (!quick && !argv.includes("--no-docs")),
  };
}

export async function runCaptureBench(argv: string[]): Promise<void> {
  const o = parseCaptureArgs(argv);
  if (process.getuid?.() !== 0) throw new Error("the capture benchmark needs root (eBPF, tcpdump)");
  for (const tool of ["nginx", "wrk", "tcpdump", "tshark"])
    if (!commandExists(tool)) throw new Error(`${tool} not found: apt-get install -y nginx-light wrk tcpdump tshark`);
  if (o.modes.includes("hdrcap-cli")) assertCliBuilt();
  if (o.modes.some((m) => SESSION_MODE[m] !== undefined && m !== "hdrcap-cli")) await buildWorker();

  const workDir = mkdtempSync(path.join(os.tmpdir(), "hdrcap-bench-"));
  chmodSync(workDir, 0o755); // nginx's workers run unprivileged and must reach the page
  const nginx = await startNginx(path.join(workDir, "nginx"));
  const live: { session?: CaptureSession; packets?: PacketCapture; restoreStats?: () => void } = {};
  const cleanup = () => {
    live.session?.abort();
    live.packets?.abort();
    live.restoreStats?.();
  };
  const onSignal = () => {
    cleanup();
    void nginx.stop().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  const results: RoundResult[] = [];
  const started = Date.now();
  try {
    console.log(
      `capture bench: nginx ${nginx.version} (1 worker) :${nginx.plainPort}, wrk -t${o.threads} -c${o.connections} ` +
        `${o.durationSeconds}s x ${o.rounds} rounds x ${o.modes.length} modes`,
    );
    // Warm-up: page cache, nginx's open state, CPU frequency.
    await runWrk({ url: url(nginx, "off"), threads: o.threads, connections: o.connections, durationSeconds: 1, workDir });
    for (const load of ["saturated", "paced"] as const) {
      const modes = load === "saturated" ? o.modes : o.pacedModes;
      if (modes.length === 0) continue;
      if (load === "paced") console.log(`paced: wrk -c${o.pacedConnections}, each connection waits ${o.pacedDelayMs} ms between requests`);
      for (let round = 1; round <= o.rounds; round++) {
        // Rotate the order each round so no mode always follows the same one.
        const order = modes.map((_, i) => modes[(i + round - 1) % modes.length]!);
        for (const mode of order) {
          const r = await runRound(mode, load, round, nginx, o, workDir, live);
          results.push(r);
          console.log(`  ${load === "paced" ? "paced " : ""}round ${round} ${mode.padEnd(15)} ${summarizeRound(r)}`);
        }
      }
    }
  } finally {
    cleanup();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await nginx.stop();
    rmSync(workDir, { recursive: true, force: true });
  }

  const tables = buildTables(results, o);
  const pacedTable = buildPacedTable(results.filter((r) => r.load === "paced"), o);
  if (pacedTable) tables.push(pacedTable);
  console.log("");
  for (const t of tables) console.log(`${t.title}\n${renderText(t.table)}\n`);
  console.log(`total ${((Date.now() - started) / 1000).toFixed(0)} s`);
  if (o.writeDocs) {
    const file = path.join(repoRoot, "docs/benchmarks.md");
    // Only the capture part is regenerated; sections after it (ingest, fleet, install) are kept.
    writeFileSync(file, renderDocs(tables, results, o, nginx.version, readPreserved(file)).trimEnd() + "\n" + readFollowingSections(file));
    console.log(`wrote ${path.relative(process.cwd(), file)}`);
  }
}

const SESSION_MODE: Partial<Record<Mode, HdrcapMode>> = {
  "hdrcap-floor-attached": "floor-attached",
  "hdrcap-floor-drain": "floor-drain",
  "hdrcap-floor-packet": "floor-packet-attached",
  hdrcap: "library",
  "hdrcap-packet": "library-packet",
  "hdrcap-cli": "cli",
};

/** Floor modes capture nothing (attached) or parse nothing (drain): their CPU is per served request. */
const isFloor = (mode: Mode) => mode.startsWith("hdrcap-floor-");

function url(nginx: BenchNginx, mode: Mode): string {
  const port = mode === "access-log" ? nginx.accessLogPort : nginx.plainPort;
  return `http://127.0.0.1:${port}${nginx.pagePath}`;
}

async function runRound(
  mode: Mode,
  load: Load,
  round: number,
  nginx: BenchNginx,
  o: CaptureBenchOptions,
  workDir: string,
  live: { session?: CaptureSession; packets?: PacketCapture; restoreStats?: () => void },
): Promise<RoundResult> {
  await sleep(300); // let the previous round's sockets and processes settle
  const sessionMode = SESSION_MODE[mode];
  if (sessionMode) live.session = await startCapture(sessionMode, nginx.plainPort);
  if (mode === "tcpdump+tshark") live.packets = await startPacketCapture(nginx.plainPort, workDir);

  const handledBefore = await nginx.requestsHandled();
  const workers = nginx.workerPids();
  const nginxCpuBefore = cpuSeconds(workers);
  // bpf run statistics cost ~2 clock reads per program run, so they are on
  // only in a window in the middle of capture rounds, not for the whole round.
  let bpfWindow: Promise<BpfWindow> | undefined;
  const paced = load === "paced";
  const wrk = await runWrk(
    {
      url: url(nginx, mode),
      threads: o.threads,
      connections: paced ? o.pacedConnections : o.connections,
      durationSeconds: o.durationSeconds,
      workDir,
      delayMs: paced ? o.pacedDelayMs : undefined,
    },
    () => {
      if (live.session) bpfWindow = measureBpfWindow(live.session.pid, nginx, o.durationSeconds, live);
    },
  );
  const nginxCpuSeconds = cpuSeconds(workers) - nginxCpuBefore;
  if (wrk.non2xx > 0) {
    live.session?.abort();
    throw new Error(`${mode}: ${wrk.non2xx} non-2xx responses (see nginx error.log in ${workDir})`);
  }
  const bpf = bpfWindow ? await bpfWindow : undefined;
  // In-flight responses are written by the time wrk has exited; give the drain timer a tick.
  await sleep(100);
  const hdrcap = live.session ? await live.session.finish() : undefined;
  live.session = undefined;
  const handledAfter = await nginx.requestsHandled();
  // The bpf window's two status queries and the "after" query itself are not load.
  const served = handledAfter - handledBefore - 1 - (bpf ? 2 : 0);
  const packets = live.packets ? await live.packets.finishAndExtract() : undefined;
  live.packets = undefined;
  return { mode, load, round, wrk, served, nginxCpuSeconds, hdrcap, bpf, packets };
}

async function measureBpfWindow(
  pid: number,
  nginx: BenchNginx,
  durationSeconds: number,
  live: { restoreStats?: () => void },
): Promise<BpfWindow> {
  await sleep(durationSeconds * 350);
  live.restoreStats = enableBpfStats();
  try {
    const s0 = bpfRunStats(pid);
    const n0 = await nginx.requestsHandled();
    await sleep(durationSeconds * 400);
    const s1 = bpfRunStats(pid);
    const n1 = await nginx.requestsHandled();
    return { runTimeNs: s1.runTimeNs - s0.runTimeNs, runCount: s1.runCount - s0.runCount, served: n1 - n0 - 1 };
  } finally {
    live.restoreStats();
    live.restoreStats = undefined;
  }
}

function summarizeRound(r: RoundResult): string {
  const parts = [`${Math.round(r.wrk.requestsPerSecond)} req/s`, `p99 ${fmtLatency(r.wrk.latencyUs.p99)}`, `served ${r.served}`];
  if (r.hdrcap) parts.push(`captured ${r.hdrcap.requests} req / ${r.hdrcap.responses} resp`, `lost ${r.hdrcap.ringbufFull}`);
  if (r.bpf) parts.push(`bpf ${(r.bpf.runTimeNs / Math.max(1, r.bpf.served) / 1000).toFixed(2)} µs/req`);
  if (r.packets) parts.push(`tshark ${r.packets.requests} req / ${r.packets.responses} resp in ${r.packets.tsharkWallSeconds.toFixed(1)} s`);
  return parts.join(", ");
}

// ---- reporting --------------------------------------------------------------

interface TitledTable {
  title: string;
  table: Table;
}

function fmtLatency(us: number): string {
  return us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(0)} µs`;
}
const fmtRatio = (x: number) => (Number.isFinite(x) ? `${x.toFixed(3)}×` : "—");
const fmtUs = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "—");
const fmtMiB = (b: number) => `${(b / 1048576).toFixed(1)} MiB`;

/** Per-round ratio to the off round of the same round number, then the median over rounds. */
function ratioToOff(results: RoundResult[], mode: Mode, metric: (r: RoundResult) => number): number {
  const ratios: number[] = [];
  for (const r of results.filter((x) => x.mode === mode)) {
    const off = results.find((x) => x.mode === "off" && x.round === r.round);
    if (off) ratios.push(metric(r) / metric(off));
  }
  return median(ratios);
}

function histogramPercentile(hist: number[], q: number): number {
  const total = sum(hist);
  if (total === 0) return Number.NaN;
  let acc = 0;
  for (let ms = 0; ms < hist.length; ms++) {
    acc += hist[ms]!;
    if (acc >= q * total) return ms;
  }
  return hist.length - 1;
}

export interface ModeSummary {
  mode: Mode;
  rps: number;
  rpsRatio: number;
  p50Us: number;
  p99Us: number;
  p99Ratio: number;
  /** nginx worker CPU over the round's wall time (1 = one core all the time). */
  nginxBusy: number;
  /** nginx worker + wrk CPU per completed request, µs. */
  loadCpuUs: number;
  /** CPU of the capturing processes per captured request, µs. */
  captureCpuUs: number;
  /** bpf program run time per served request, µs (hdrcap only). */
  bpfUs: number;
  requestsCaptured: number;
  responsesCaptured: number;
  served: number;
  completed: number;
  lost: number;
  truncated: number;
  malformed: number;
  resyncs: number;
  /** Records the CLI dropped because stdout did not keep up. */
  outputDropped: number;
  packetsDropped: number;
  visibility: string;
  peakRss: string;
}

export function summarize(results: RoundResult[], mode: Mode): ModeSummary {
  const rs = results.filter((r) => r.mode === mode);
  const total = (f: (r: RoundResult) => number) => sum(rs.map(f));
  let captureCpuUs = Number.NaN;
  let visibility = "—";
  let peakRss = "—";
  let requestsCaptured = Number.NaN;
  let responsesCaptured = Number.NaN;
  if (rs.some((r) => r.hdrcap)) {
    requestsCaptured = total((r) => r.hdrcap!.requests);
    responsesCaptured = total((r) => r.hdrcap!.responses);
    captureCpuUs = median(rs.map((r) => (r.hdrcap!.cpuSeconds * 1e6) / (isFloor(mode) ? r.served : r.hdrcap!.requests)));
    peakRss = fmtMiB(Math.max(...rs.map((r) => r.hdrcap!.peakRssBytes)));
    const hists = rs.map((r) => r.hdrcap!.visibilityHistogramMs).filter((h): h is number[] => h !== null);
    if (hists.length > 0) {
      const merged = hists[0]!.map((_, i) => sum(hists.map((h) => h[i]!)));
      visibility = `${histogramPercentile(merged, 0.5)} / ${histogramPercentile(merged, 0.99)} / ${histogramPercentile(merged, 1)} ms`;
    } else visibility = "not measured";
  }
  if (rs.some((r) => r.packets)) {
    requestsCaptured = total((r) => r.packets!.requests);
    responsesCaptured = total((r) => r.packets!.responses);
    captureCpuUs = median(rs.map((r) => ((r.packets!.tcpdumpCpuSeconds + r.packets!.tsharkCpuSeconds) * 1e6) / r.packets!.requests));
    visibility = `${median(rs.map((r) => r.packets!.tsharkWallSeconds)).toFixed(1)} s after stop`;
    peakRss = `tshark ${fmtMiB(Math.max(...rs.map((r) => r.packets!.tsharkPeakRssBytes)))}`;
  }
  if (mode === "access-log") visibility = "per request";
  const bpfRounds = rs.filter((r) => r.bpf && r.bpf.served > 0);
  return {
    mode,
    rps: median(rs.map((r) => r.wrk.requestsPerSecond)),
    rpsRatio: ratioToOff(results, mode, (r) => r.wrk.requestsPerSecond),
    p50Us: median(rs.map((r) => r.wrk.latencyUs.p50)),
    p99Us: median(rs.map((r) => r.wrk.latencyUs.p99)),
    nginxBusy: median(rs.map((r) => r.nginxCpuSeconds / r.wrk.seconds)),
    p99Ratio: ratioToOff(results, mode, (r) => r.wrk.latencyUs.p99),
    loadCpuUs: median(rs.map((r) => ((r.nginxCpuSeconds + r.wrk.cpuSeconds) * 1e6) / r.wrk.requests)),
    captureCpuUs,
    bpfUs: bpfRounds.length ? median(bpfRounds.map((r) => r.bpf!.runTimeNs / r.bpf!.served / 1000)) : Number.NaN,
    requestsCaptured,
    responsesCaptured,
    served: total((r) => r.served),
    completed: total((r) => r.wrk.requests),
    lost: total((r) => r.hdrcap?.ringbufFull ?? 0),
    truncated: total((r) => r.hdrcap?.truncated ?? 0),
    malformed: total((r) => r.hdrcap?.malformed ?? 0),
    resyncs: total((r) => r.hdrcap?.resyncs ?? 0),
    outputDropped: total((r) => r.hdrcap?.outputDropped ?? 0),
    packetsDropped: total((r) => r.packets?.packetsDropped ?? 0),
    visibility,
    peakRss,
  };
}

function buildTables(all: RoundResult[], o: CaptureBenchOptions): TitledTable[] {
  const results = all.filter((r) => r.load === "saturated");
  const summaries = o.modes.map((m) => summarize(results, m));
  const off = summaries.find((s) => s.mode === "off")!;
  const perf: Table = {
    columns: ["mode", "req/s", "× off", "p99 latency", "× off", "nginx+wrk CPU µs/req", "Δ vs off", "capturer CPU µs/req", "bpf µs/req", "capture total µs/req"],
    rows: summaries.map((s) => {
      const delta = s.loadCpuUs - off.loadCpuUs;
      const captureTotal =
        s.mode === "off" ? Number.NaN
        : s.mode === "access-log" ? delta
        : (Number.isFinite(s.captureCpuUs) ? s.captureCpuUs : 0) + (Number.isFinite(s.bpfUs) ? s.bpfUs : Math.max(0, delta));
      return [
        MODE_LABEL[s.mode],
        Math.round(s.rps).toString(),
        s.mode === "off" ? "1" : fmtRatio(s.rpsRatio),
        fmtLatency(s.p99Us),
        s.mode === "off" ? "1" : fmtRatio(s.p99Ratio),
        fmtUs(s.loadCpuUs),
        s.mode === "off" ? "" : (delta >= 0 ? "+" : "") + fmtUs(delta),
        fmtUs(s.captureCpuUs),
        fmtUs(s.bpfUs),
        fmtUs(captureTotal),
      ];
    }),
  };
  const complete: Table = {
    columns: ["mode", "served (nginx)", "completed (wrk)", "requests captured", "responses captured", "lost / truncated / malformed / resyncs", "visible after (p50/p99/max)", "peak RSS"],
    rows: summaries
      .filter((s) => s.mode !== "off")
      .map((s) => [
        MODE_LABEL[s.mode],
        String(s.served),
        String(s.completed),
        s.mode === "hdrcap-floor-attached" || s.mode === "hdrcap-floor-packet" ? "— (filtered out)"
        : Number.isFinite(s.requestsCaptured) ? `${s.requestsCaptured}${s.mode === "hdrcap-floor-drain" ? " chunks" : ""} (${signed(s.requestsCaptured - s.served)})` : "—",
        s.mode === "hdrcap-floor-attached" || s.mode === "hdrcap-floor-packet" ? "—"
        : Number.isFinite(s.responsesCaptured) ? `${s.responsesCaptured}${s.mode === "hdrcap-floor-drain" ? " chunks" : ""} (${signed(s.responsesCaptured - s.completed)} vs wrk)` : "—",
        s.mode.startsWith("hdrcap") ? `${s.lost} / ${s.truncated} / ${s.malformed} / ${s.resyncs}${s.mode === "hdrcap-cli" ? ` (+${s.outputDropped} dropped at stdout)` : ""}`
        : s.mode === "tcpdump+tshark" ? `${s.packetsDropped} packets dropped` : "—",
        s.visibility,
        s.peakRss,
      ]),
  };
  return [
    { title: `Throughput, latency and CPU (medians over ${o.rounds} round(s) of ${o.durationSeconds} s; ratios are per-round vs the off round)`, table: perf },
    { title: "Completeness and timeliness (sums over rounds)", table: complete },
  ];
}

/** The paced load: the same modes when nginx is not CPU-bound (the case of most production servers). */
function buildPacedTable(results: RoundResult[], o: CaptureBenchOptions): TitledTable | undefined {
  if (results.length === 0) return undefined;
  const summaries = o.pacedModes.map((m) => summarize(results, m));
  const off = summaries.find((s) => s.mode === "off")!;
  const table: Table = {
    columns: ["mode", "req/s", "× off", "p50 latency", "p99 latency", "× off", "nginx core busy", "nginx+wrk CPU µs/req", "Δ vs off", "capturer CPU µs/req", "bpf µs/req", "captured (req / resp of served)", "lost", "peak RSS"],
    rows: summaries.map((s) => [
      MODE_LABEL[s.mode],
      Math.round(s.rps).toString(),
      s.mode === "off" ? "1" : fmtRatio(s.rpsRatio),
      fmtLatency(s.p50Us),
      fmtLatency(s.p99Us),
      s.mode === "off" ? "1" : fmtRatio(s.p99Ratio),
      `${(s.nginxBusy * 100).toFixed(0)} %`,
      fmtUs(s.loadCpuUs),
      s.mode === "off" ? "" : (s.loadCpuUs - off.loadCpuUs >= 0 ? "+" : "") + fmtUs(s.loadCpuUs - off.loadCpuUs),
      fmtUs(s.captureCpuUs),
      fmtUs(s.bpfUs),
      Number.isFinite(s.requestsCaptured) ? `${s.requestsCaptured} / ${s.responsesCaptured} of ${s.served}` : "—",
      s.mode.startsWith("hdrcap") ? String(s.lost) : "—",
      s.peakRss,
    ]),
  };
  return {
    title:
      `Paced load, nginx not CPU-bound (wrk -c${o.pacedConnections}, ${o.pacedDelayMs} ms between requests per connection; ` +
      `medians over ${o.rounds} round(s) of ${o.durationSeconds} s, ratios per round vs the paced off round)`,
    table,
  };
}

function signed(n: number): string {
  return n >= 0 ? `+${n}` : String(n);
}

// ---- docs/benchmarks.md ---------------------------------------------------------

const PRESERVE_START = "<!-- hand-written analysis: kept across bench runs -->";
const PRESERVE_END = "<!-- end of hand-written analysis -->";

function readPreserved(file: string): string {
  if (!existsSync(file)) return "";
  const text = readFileSync(file, "utf8");
  const a = text.indexOf(PRESERVE_START);
  const b = text.indexOf(PRESERVE_END);
  return a >= 0 && b > a ? text.slice(a + PRESERVE_START.length, b).trim() : "";
}

/** Everything after the capture section's analysis (other benchmarks' sections). */
function readFollowingSections(file: string): string {
  if (!existsSync(file)) return "";
  const text = readFileSync(file, "utf8");
  const b = text.indexOf(PRESERVE_END);
  return b >= 0 ? text.slice(b + PRESERVE_END.length).replace(/^\n/, "") : "";
}

function targetVerdicts(all: RoundResult[]): string[] {
  const results = all.filter((r) => r.load === "saturated");
  const h = summarize(results, "hdrcap");
  const t = summarize(results, "tcpdump+tshark");
  const lines: string[] = [];
  const verdict = (ok: boolean) => (ok ? "**met**" : "**not met**");
  if (Number.isFinite(h.rpsRatio)) {
    const floors = (["hdrcap-floor-attached", "hdrcap-floor-packet"] as const)
      .filter((m) => results.some((r) => r.mode === m))
      .map((m) => `${MODE_LABEL[m].replace(/^floor: /, "")}: ${fmtRatio(summarize(results, m).rpsRatio)}`);
    const floorText = floors.length ? `; the floors, programs that capture nothing: ${floors.join(", ")}` : "";
    lines.push(`- Throughput with capture ≥ 0.99× without: ${fmtRatio(h.rpsRatio)} — ${verdict(h.rpsRatio >= 0.99)} (saturated host${floorText}).`);
  }
  const paced = all.filter((r) => r.load === "paced");
  if (paced.some((r) => r.mode === "hdrcap")) {
    const p = summarize(paced, "hdrcap");
    lines.push(
      `- The same at a paced load (nginx ${(summarize(paced, "off").nginxBusy * 100).toFixed(0)} % busy without capture; ` +
        `closed loop, so this says whether the server kept up): throughput ${fmtRatio(p.rpsRatio)}, p99 latency ${fmtRatio(p.p99Ratio)} — ${verdict(p.rpsRatio >= 0.99)}.`,
    );
  }
  const hTotal = h.captureCpuUs + h.bpfUs;
  if (Number.isFinite(hTotal) && Number.isFinite(t.captureCpuUs)) {
    const factor = t.captureCpuUs / hTotal;
    lines.push(
      `- ≥ 10× less CPU per captured request than tcpdump + tshark: ${fmtUs(hTotal)} µs (agent ${fmtUs(h.captureCpuUs)} + bpf ${fmtUs(h.bpfUs)}) ` +
        `vs ${fmtUs(t.captureCpuUs)} µs, ${factor.toFixed(1)}× — ${verdict(factor >= 10)}.`,
    );
  }
  if (Number.isFinite(h.requestsCaptured)) {
    const missingReq = h.served - h.requestsCaptured;
    const missingResp = h.completed - h.responsesCaptured;
    const ok = missingReq <= 0 && missingResp <= 0 && h.lost === 0 && h.malformed === 0 && h.resyncs === 0;
    lines.push(
      `- 0 loss: ${h.requestsCaptured}/${h.served} requests and ${h.responsesCaptured} responses for ${h.completed} completed, ` +
        `${h.lost} lost in the ring buffer, ${h.truncated} truncated, ${h.malformed} malformed, ${h.resyncs} decoder resyncs — ${verdict(ok)}.`,
    );
  }
  const rssPeak = (mode: Mode, load?: Load) => {
    const rs = all.filter((r) => r.mode === mode && r.hdrcap && (load === undefined || r.load === load));
    return rs.length ? Math.max(...rs.map((r) => r.hdrcap!.peakRssBytes)) : Number.NaN;
  };
  const lib = rssPeak("hdrcap");
  const cli = rssPeak("hdrcap-cli");
  if (Number.isFinite(lib)) {
    const libPaced = rssPeak("hdrcap", "paced");
    const split = Number.isFinite(libPaced) ? ` (saturated ${fmtMiB(rssPeak("hdrcap", "saturated"))}, paced ${fmtMiB(libPaced)})` : "";
    const cliText = Number.isFinite(cli) ? `; CLI ${fmtMiB(cli)} — ${verdict(cli <= 80 * 1e6)}` : "";
    lines.push(`- Agent RSS ≤ 80 MB (76.3 MiB): peak ${fmtMiB(lib)}${split} in library mode — ${verdict(lib <= 80 * 1e6)}${cliText}.`);
  }
  if (Number.isFinite(cli)) {
    const c = summarize(results, "hdrcap-cli");
    const ok = c.lost === 0 && c.outputDropped === 0 && c.served - c.requestsCaptured <= 0;
    lines.push(
      `- CLI loses nothing at this load: ${c.requestsCaptured}/${c.served} requests, ${c.lost} lost in the ring buffer, ` +
        `${c.outputDropped} dropped at stdout — ${verdict(ok)}.`,
    );
  }
  return lines;
}

function renderDocs(tables: TitledTable[], results: RoundResult[], o: CaptureBenchOptions, nginxVersion: string, preserved: string): string {
  const cpuModel = /^model name\s*:\s*(.*)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "unknown CPU";
  const date = execFileSync("date", { encoding: "utf8" }).trim();
  const versions = {
    wrk: firstLine(["wrk", "--version"]),
    tshark: firstLine(["tshark", "--version"]),
    tcpdump: firstLine(["tcpdump", "--version"]),
  };
  const headerList = ["Host", ...Object.keys(REQUEST_HEADERS)].join(", ");
  return `# Benchmarks

Generated by \`npm run bench -- capture\` (bench/capture.ts); the tables and the target check are
rewritten on every full run, the analysis section below them is kept.

## Capture overhead: hdrcap vs access log vs tcpdump + tshark

**Machine**: ${os.cpus().length} cores (${cpuModel}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${os.release()},
Node ${process.version}, ${nginxVersion}, ${versions.wrk}, ${versions.tcpdump}, ${versions.tshark}.
**Date**: ${date}. Other engineers' tests were running on the same machine, so absolute numbers are noisy;
the modes are alternated round by round and medians reported.

### Method

- A private nginx (temp prefix, \`worker_processes 1\`, \`sendfile on\`, keep-alive) serves a 1 KiB static page on
  loopback; \`stub_status\` on a separate port counts the requests it handled (ground truth).
- \`wrk --latency -t${o.threads} -c${o.connections} -d${o.durationSeconds}s\` with six request headers (${headerList}).
  ${o.rounds} round(s) per mode; in each round the order of modes is rotated. Ratios (× off) are computed per round
  against that round's baseline, then the median is taken.
- **off**: \`access_log off\`, no capture. **hdrcap library**: a separate Node process embedding \`HttpCapture\`
  (bundled like the agent) with filter \`{ ports: [port], role: "server" }\`, records counted (1 in 8 timestamped for
  visibility); its packet source attaches to lo's ingress only (each packet once: requests on nginx's end, responses
  on wrk's, so with \`role: "any"\`). **hdrcap CLI**: \`hdrcap-agent capture --port N --role server --format ndjson > /dev/null\`.
  **access_log**: a second server block with \`access_log\` of \`$request\`, \`$status\` and six \`$http_*\` variables
  (unbuffered). **tcpdump + tshark**: \`tcpdump -i lo -s 0 -B 32768 -w file.pcap tcp port N\` during the load, then
  \`tshark -r file.pcap -d tcp.port==N,http -Y 'http.request or http.response' -T fields\` with the same headers.
- **Floors** (the same worker process, to show what each layer of a capture costs by itself): **programs attached,
  every process filtered out**: the socket source's programs with a process filter only the worker passes, so every
  syscall of nginx and wrk runs them and leaves at the first check; **capture + drain, no HTTP parsing**: the socket
  source as the agent runs it, its chunk events drained and decoded but no HTTP parsed (it counts chunks that start a
  message); **TC program on lo, every packet filtered out**: the packet source's program with a port filter no
  packet matches. A floor's capturer CPU is per served request.
- **nginx+wrk CPU µs/req**: utime+stime of the nginx worker and of wrk per completed request. Kernel work done in
  their context (tracepoints, bpf programs, AF_PACKET copies to tcpdump, access-log writes) lands here; "Δ vs off"
  estimates it.
- **capturer CPU µs/req**: utime+stime of the capturing processes per captured request: the hdrcap process from
  ready to stop (program load excluded); tcpdump + tshark together for the traditional pipeline.
- **bpf µs/req**: \`run_time_ns\` of the agent's bpf programs (read from \`/proc/<pid>/fdinfo\`) over a window in the
  middle of the round with \`kernel.bpf_stats_enabled=1\`, divided by the requests nginx served in that window. It
  includes the programs' runs on wrk's syscalls (filtered out in the kernel). "capture total" = capturer + bpf for
  hdrcap; capturer + Δ(nginx+wrk) for tcpdump (its kernel-side copy is not attributable otherwise).
- **Completeness**: requests captured vs requests nginx served; responses captured vs requests wrk completed (a
  response nginx wrote to a connection wrk had just closed can make it exceed; one whose write failed is not a
  response). hdrcap's own counters: ring-buffer losses, truncated header blocks, malformed blocks, decoder resyncs (stream
  gaps are not counted: every sendfile body is an expected, bridged gap).
- **Visible after**: hdrcap: time from a header block's first byte (record \`ts\`) to the record reaching the consumer
  (ms resolution). tcpdump + tshark: tshark's wall time over the round's pcap, after the capture is stopped.
- **Peak RSS**: VmHWM of the capturing process (hdrcap: the whole process including program load).
- **Paced load** (last table): \`wrk -c${o.pacedConnections}\` whose connections each wait ${o.pacedDelayMs} ms (Lua \`delay()\`) between a
  response and the next request, so nginx has idle time, as most production servers do; the same modes, rounds and
  per-round ratios. It shows what capture costs a server that is not CPU-bound: latency and CPU rather than lost throughput.

### Results

${tables.map((t) => `**${t.title}**\n\n${renderMarkdown(t.table)}`).join("\n\n")}

### Against the targets (computed)

${targetVerdicts(results).join("\n")}

### Analysis

${PRESERVE_START}
${preserved || "_(to be written after looking at the numbers)_"}
${PRESERVE_END}
`;
}

function firstLine(cmd: string[]): string {
  try {
    return execFileSync(cmd[0]!, cmd.slice(1), { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).split("\n")[0]!.trim();
  } catch (err) {
    const out = (err as { stdout?: string; stderr?: string }).stdout || (err as { stderr?: string }).stderr || "";
    return out.split("\n")[0]!.trim();
  }
}

function commandExists(cmd: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
