/**
 * `npm run bench -- agent-memory`: the resident memory of the agent daemon as hosts run
 * it (`apps/agent/dist/main.js run` with the installed bundle's V8 flags), idle after
 * enrollment and then under the capture benchmark's saturated nginx + wrk load, with a
 * capture created through the API targeting nginx's port. A real control plane (HTTP,
 * NATS responders, ingester) runs in this process over a real Postgres and nats-server,
 * on the same cores as nginx, wrk and the agent: the whole pipeline competes for them.
 *
 *   npm run bench -- agent-memory [--rounds 3] [--duration 6] [--idle 5] [--max-queued-records N] [--max-queued-bytes N]
 *     [--spool-max-bytes N] [--metrics] [--agent <main.js>] [--node-flags "<V8/Node flags>"] [--keep-agent-logs <dir>]
 *     [--connections 16] [--delay-ms N]
 *
 * --delay-ms makes the load paced like the capture benchmark's paced rounds (each wrk connection waits N ms
 * between a response and its next request; e.g. `--connections 200 --delay-ms 10`), so the host has idle
 * time: the agent's memory when the pipeline keeps up, rather than when every part is starved of CPU.
 *
 * --metrics serves the agent's Prometheus metrics (which loads prom-client, ~2 MiB more) and samples them
 * during the load: the peak of its V8 heap, external (ArrayBuffer) memory and records queued for JetStream, and
 * (agents with a spool) of batch bytes held in memory and of the spool on disk.
 * --max-queued-bytes / --spool-max-bytes are passed to the agent (an agent without a spool rejects them).
 * --agent runs another build of the agent (e.g. one of an earlier commit) instead of apps/agent/dist/main.js.
 * --node-flags adds flags to AGENT_NODE_FLAGS for the agent only (e.g. to try a V8 heap flag before it goes
 * into the installed launcher and AGENT_NODE_FLAGS). --keep-agent-logs copies each round's agent output (e.g. with
 * --node-flags --trace-gc) to <dir>/agent-<round>.log before the bench's temporary directory is removed.
 * Each round also reports the agent's CPU time (user + system) from the capture's creation until its records settled.
 * Each round starts a fresh agent process: round 1 enrolls (fetch, key generation), later rounds start from the
 * stored identity as the installed service does, so the table shows the two idle figures apart.
 */
import { createDb, migrateToLatest } from "@hdrcap/db";
import { createNatsAuthority, startNats, startPostgres } from "@hdrcap/local-services";
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import { loadEnv } from "../apps/control-plane/src/env.ts";
import { startServer } from "../apps/control-plane/src/server.ts";
import { bootstrapFirstTenant } from "../apps/control-plane/src/services/tenants.ts";
import { sleep, stopChild } from "./lib/child.ts";
import { AGENT_NODE_FLAGS } from "./lib/hdrcap-session.ts";
import { startNginx } from "./lib/nginx.ts";
import { median } from "./lib/stats.ts";
import { renderText, type Table } from "./lib/table.ts";
import { runWrk } from "./lib/wrk.ts";

const repoRoot = fileURLToPath(new URL("../", import.meta.url));
const defaultAgentCli = path.join(repoRoot, "apps/agent/dist/main.js");
const MIB = 1024 * 1024;
/** The agent's default heartbeat interval, which carries its capture counters. */
const HEARTBEAT_SECONDS = 5;

interface AgentGauges {
  heapUsed: number;
  heapTotal: number;
  external: number;
  queuedRecords: number;
  queuedBytes: number;
  spoolBytes: number;
}

async function scrapeGauges(port: number): Promise<AgentGauges | null> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const g = (name: string) => Number(new RegExp(`^hdrcap_agent_${name}(?:\\{[^}]*\\})? (\\S+)`, "m").exec(text)?.[1] ?? NaN);
    return { heapUsed: g("nodejs_heap_size_used_bytes"), heapTotal: g("nodejs_heap_size_total_bytes"), external: g("nodejs_external_memory_bytes"), queuedRecords: g("queued_records"), queuedBytes: g("queued_bytes"), spoolBytes: g("spool_bytes") };
  } catch {
    return null;
  }
}

interface Round {
  idleRss: number;
  idleHwm: number;
  loadHwm: number;
  requests: number;
  records: number;
  lostInKernel: number;
  droppedInAgent: number;
  truncated: number;
  /** CPU seconds (user + system) the agent used from the capture's creation until its records settled. */
  cpuSeconds: number;
  /** --metrics: the peak of each gauge sampled during the load. */
  gauges: AgentGauges | null;
}

function statusBytes(pid: number, field: "VmRSS" | "VmHWM"): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

/** utime + stime of a process, in seconds (/proc/<pid>/stat fields 14 and 15, in clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

export async function runAgentMemoryBench(argv: string[]): Promise<void> {
  const value = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const quick = argv.includes("--quick");
  const agentCli = path.resolve(value("--agent") ?? defaultAgentCli);
  const rounds = Number(value("--rounds") ?? (quick ? 1 : 3));
  const durationSeconds = Number(value("--duration") ?? (quick ? 2 : 6));
  const idleSeconds = Number(value("--idle") ?? (quick ? 2 : 5));
  const threads = Number(value("--threads") ?? 2);
  const connections = Number(value("--connections") ?? 16);
  const delayMs = value("--delay-ms") === undefined ? undefined : Number(value("--delay-ms"));
  const maxQueued = value("--max-queued-records");
  const maxQueuedBytes = value("--max-queued-bytes");
  const spoolMaxBytes = value("--spool-max-bytes");
  const nodeFlags = [...AGENT_NODE_FLAGS, ...(value("--node-flags")?.split(" ").filter((f) => f !== "") ?? [])];
  const keepLogs = value("--keep-agent-logs");
  const metricsPort = argv.includes("--metrics") ? 9400 + (process.pid % 500) : undefined;
  const agentArgs = [
    ...(maxQueued ? ["--max-queued-records", maxQueued] : []),
    ...(maxQueuedBytes ? ["--max-queued-bytes", maxQueuedBytes] : []),
    ...(spoolMaxBytes ? ["--spool-max-bytes", spoolMaxBytes] : []),
    ...(metricsPort ? ["--metrics-port", String(metricsPort)] : []),
  ];
  if (process.getuid?.() !== 0) throw new Error("the agent-memory benchmark needs root (eBPF)");
  if (!existsSync(agentCli)) throw new Error(`${agentCli} is missing: run \`npm run build\` first`);

  const dir = mkdtempSync(path.join(os.tmpdir(), "hdrcap-bench-agent-memory-"));
  chmodSync(dir, 0o755);
  const authority = await createNatsAuthority();
  const [pg, nats] = await Promise.all([
    startPostgres({ dir: path.join(dir, "pg"), ephemeral: true }),
    startNats({ dir: path.join(dir, "nats"), extraConfig: authority.serverConfig() }),
  ]);
  const admin = createDb(pg.url, { max: 2 });
  await migrateToLatest(admin.db);
  const key = (await bootstrapFirstTenant(admin.db, { slug: "bench", name: "Bench" }))!.key;
  await admin.close();
  const cp = await startServer(
    loadEnv({ DATABASE_URL: pg.url, NATS_URL: nats.url, NATS_ACCOUNT_SEED: authority.account.seed, PORT: "0", HDRCAP_RATE_LIMIT_PER_SECOND: "100000", HDRCAP_RATE_LIMIT_BURST: "100000" }),
    pino({ level: "silent" }),
  );
  const api = async (method: string, p: string, body?: unknown) => {
    const res = await fetch(`${cp.url}${p}`, { method, headers: { authorization: `Bearer ${key}`, ...(body ? { "content-type": "application/json" } : {}) }, body: body ? JSON.stringify(body) : undefined });
    if (!res.ok) throw new Error(`${method} ${p}: ${res.status} ${await res.text()}`);
    return res.json() as Promise<any>;
  };
  const nginx = await startNginx(path.join(dir, "nginx"));
  let agent: ChildProcess | undefined;
  const results: Round[] = [];
  try {
    console.log(
      `agent-memory bench: ${path.relative(repoRoot, agentCli)} ${agentArgs.join(" ") || "(defaults)"}, node ${process.version} ${nodeFlags.join(" ")}, nginx ${nginx.version} :${nginx.plainPort}, ` +
        `wrk -t${threads} -c${connections} -d${durationSeconds}s${delayMs === undefined ? "" : ` (paced: ${delayMs} ms between requests per connection)`}, ${rounds} round(s), idle ${idleSeconds} s`,
    );
    const token = (await api("POST", "/v1/enrollment-tokens", { labels: { bench: "agent-memory" } })).token as string;
    for (let round = 0; round < rounds; round++) {
      // Enrolled once (round 0); later rounds restart with the stored identity, as a host's service does.
      const log = openSync(path.join(dir, `agent-${round}.log`), "w");
      agent = spawn(process.execPath, [...nodeFlags, agentCli, "run", "--control-plane", cp.url, "--state-dir", path.join(dir, "agent"), "--log-level", "warn", ...agentArgs], {
        stdio: ["ignore", log, log],
        env: { ...process.env, HDRCAP_ENROLLMENT_TOKEN: token },
      });
      closeSync(log);
      const pid = agent.pid!;
      const agentId = await until("the agent to come online", 30_000, async () => {
        const items = (await api("GET", "/v1/agents")).items as { id: string; status: string }[];
        return items.find((a) => a.status === "online")?.id;
      });
      await sleep(idleSeconds * 1000);
      const idleRss = statusBytes(pid, "VmRSS");
      const idleHwm = statusBytes(pid, "VmHWM");

      const cpuBefore = cpuSeconds(pid);
      const capture = await api("POST", "/v1/captures", { name: `agent-memory-${round}`, agents: { ids: [agentId] }, filter: { ports: [nginx.plainPort], role: "server" } });
      await until("the capture to run", 20_000, async () => ((await api("GET", `/v1/captures/${capture.id}`)).status === "running" ? true : undefined));
      const before = await nginx.requestsHandled();
      let gauges: AgentGauges | null = null;
      let sampling = metricsPort !== undefined;
      const sampler = (async () => {
        while (sampling) {
          const g = await scrapeGauges(metricsPort!);
          if (g) gauges = gauges ? (Object.fromEntries(Object.entries(g).map(([k, v]) => [k, Math.max(v, gauges![k as keyof AgentGauges])])) as unknown as AgentGauges) : g;
          await sleep(250);
        }
      })();
      const wrk = await runWrk({ url: `http://127.0.0.1:${nginx.plainPort}${nginx.pagePath}`, threads, connections, durationSeconds, workDir: dir, delayMs });
      const requests = (await nginx.requestsHandled()) - before - 1;
      // Until every record the agent produced is stored (or dropped, counted) and the counters settle. The agent's
      // own counts arrive with its heartbeat (every 5 s): only one sent after the load ended is final.
      const loadEnded = Date.now();
      let last = "";
      const view = await until("the capture counters to settle", 120_000, async () => {
        const v = await api("GET", `/v1/captures/${capture.id}`);
        const c = v.completeness;
        const settled =
          Date.now() - loadEnded > HEARTBEAT_SECONDS * 1000 + 1000 && JSON.stringify(c) === last && c.stored + c.droppedInAgent >= c.records && c.records >= c.stored;
        last = JSON.stringify(c);
        if (settled) return v;
        await sleep(1500);
        return undefined;
      });
      const loadHwm = statusBytes(pid, "VmHWM");
      const cpu = cpuSeconds(pid) - cpuBefore;
      sampling = false;
      await sampler;
      await api("POST", `/v1/captures/${capture.id}/stop`);
      await stopChild(agent, "SIGTERM", 15_000);
      agent = undefined;
      const c = view.completeness;
      results.push({ idleRss, idleHwm, loadHwm, requests, records: c.records, lostInKernel: c.lostInKernel, droppedInAgent: c.droppedInAgent, truncated: c.truncated, cpuSeconds: cpu, gauges });
      console.log(
        `  round ${round + 1}: idle RSS ${(idleRss / MIB).toFixed(1)} MiB (peak ${(idleHwm / MIB).toFixed(1)}), ` +
          `under load peak ${(loadHwm / MIB).toFixed(1)} MiB; ${wrk.requestsPerSecond.toFixed(0)} req/s, ${requests} requests, ` +
          `${c.records} records, ${c.published} published, ${c.stored} stored, ${c.lostInKernel} lost in kernel, ${c.droppedInAgent} dropped in agent; ` +
          `agent CPU ${cpu.toFixed(1)} s (${((cpu / Math.max(1, c.records)) * 1e6).toFixed(1)} µs/record)`,
      );
      const g = gauges as AgentGauges | null;
      if (g)
        console.log(
          `    peaks: V8 heap ${(g.heapUsed / MIB).toFixed(1)} used / ${(g.heapTotal / MIB).toFixed(1)} total MiB, external ${(g.external / MIB).toFixed(1)} MiB, ${g.queuedRecords} records queued` +
            (Number.isNaN(g.queuedBytes) ? "" : `, batches in memory ${(g.queuedBytes / MIB).toFixed(1)} MiB, spool ${(g.spoolBytes / MIB).toFixed(1)} MiB`),
        );
    }
  } finally {
    if (agent) await stopChild(agent, "SIGKILL", 5_000);
    if (keepLogs) {
      mkdirSync(keepLogs, { recursive: true });
      for (let round = 0; existsSync(path.join(dir, `agent-${round}.log`)); round++)
        copyFileSync(path.join(dir, `agent-${round}.log`), path.join(keepLogs, `agent-${round}.log`));
    }
    await nginx.stop();
    await cp.close();
    await Promise.allSettled([pg.stop(), nats.stop()]);
    rmSync(dir, { recursive: true, force: true });
  }

  const mib = (xs: number[]) => (xs.length ? `${(median(xs) / MIB).toFixed(1)} (max ${(Math.max(...xs) / MIB).toFixed(1)})` : "-");
  const [first, ...restarts] = results;
  const table: Table = {
    columns: ["agent daemon, MiB: median of rounds (max)", "value"],
    rows: [
      ["idle VmRSS, first start (enrolls)", mib([first!.idleRss])],
      ["idle VmHWM, first start (enrolls)", mib([first!.idleHwm])],
      ["idle VmRSS, restarts (stored identity)", mib(restarts.map((r) => r.idleRss))],
      ["idle VmHWM, restarts (stored identity)", mib(restarts.map((r) => r.idleHwm))],
      [`VmHWM under ${delayMs === undefined ? "saturated" : "paced"} load`, mib(results.map((r) => r.loadHwm))],
      ["records / (2 x requests)", results.map((r) => `${r.records}/${2 * r.requests}`).join(", ")],
      ["agent CPU s, capture to settled (µs/record)", results.map((r) => `${r.cpuSeconds.toFixed(1)} (${((r.cpuSeconds / Math.max(1, r.records)) * 1e6).toFixed(1)})`).join(", ")],
      ["lost in kernel / dropped in agent / truncated", results.map((r) => `${r.lostInKernel}/${r.droppedInAgent}/${r.truncated}`).join(", ")],
    ],
  };
  console.log(renderText(table));
}
