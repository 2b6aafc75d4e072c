/**
 * `npm run bench -- fleet`: time from `POST /v1/captures` until every targeted agent
 * reports `running`, with N simulated agents. Each simulated agent is a real NATS
 * connection with the credentials enrollment gave it (operator mode), answering
 * sync commands and pulling its desired state exactly like the real agent, minus
 * the eBPF part (it reports running as soon as it has the spec). A real control
 * plane (HTTP, responders, scheduler) runs on a real Postgres and nats-server.
 */
import { NATS_SUBJECTS, type DesiredState, type HostFacts } from "@hdrcap/api";
import { createDb, migrateToLatest } from "@hdrcap/db";
import { createNatsAuthority, startNats, startPostgres } from "@hdrcap/local-services";
import { createUser } from "@nats-io/nkeys";
import { connect, jwtAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { loadEnv } from "../apps/control-plane/src/env.ts";
import { startServer } from "../apps/control-plane/src/server.ts";
import { bootstrapFirstTenant } from "../apps/control-plane/src/services/tenants.ts";

interface SimAgent {
  id: string;
  tenantId: string;
  nc: NatsConnection;
  running: Set<string>;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

export async function runFleetBench(argv: string[]): Promise<void> {
  const quick = argv.includes("--quick");
  const agentsArg = argv.indexOf("--agents");
  const N = agentsArg >= 0 ? Number(argv[agentsArg + 1]) : quick ? 20 : 100;
  const rounds = quick ? 2 : 5;
  const dir = mkdtempSync(join(tmpdir(), "hdrcap-bench-fleet-"));
  chmodSync(dir, 0o755);
  const authority = await createNatsAuthority();
  const [pg, nats] = await Promise.all([startPostgres({ dir: join(dir, "pg"), ephemeral: true }), startNats({ dir: join(dir, "nats"), extraConfig: authority.serverConfig() })]);
  const admin = createDb(pg.url, { max: 2 });
  await migrateToLatest(admin.db);
  const key = (await bootstrapFirstTenant(admin.db, { slug: "bench", name: "Bench" }))!.key;
  await admin.close();
  const cp = await startServer(loadEnv({ DATABASE_URL: pg.url, NATS_URL: nats.url, NATS_ACCOUNT_SEED: authority.account.seed, PORT: "0", HDRCAP_RATE_LIMIT_PER_SECOND: "100000", HDRCAP_RATE_LIMIT_BURST: "100000" }), pino({ level: "silent" }));
  const api = async (method: string, path: string, body?: unknown, auth = key) => {
    const res = await fetch(`${cp.url}${path}`, { method, headers: { authorization: `Bearer ${auth}`, ...(body ? { "content-type": "application/json" } : {}) }, body: body ? JSON.stringify(body) : undefined });
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return res.json() as Promise<any>;
  };

  const agents: SimAgent[] = [];
  try {
    const token = (await api("POST", "/v1/enrollment-tokens", { labels: { fleet: "bench" }, maxUses: N })).token as string;
    process.stdout.write(`enrolling ${N} simulated agents…`);
    for (let i = 0; i < N; i++) {
      const user = createUser();
      const facts: HostFacts = { hostname: `sim-${i}`, machineId: `sim-machine-${String(i).padStart(6, "0")}`, kernelRelease: "6.18", arch: "x64", btf: true, hooks: {}, agentVersion: "bench" };
      const enroll = await api("POST", "/v1/enroll", { facts, natsPublicKey: user.getPublicKey() }, token);
      const nc = await connect({ servers: enroll.natsServers, authenticator: jwtAuthenticator(enroll.natsJwt, user.getSeed()), inboxPrefix: enroll.inboxPrefix });
      const a: SimAgent = { id: enroll.agentId, tenantId: enroll.tenantId, nc, running: new Set() };
      const reconcile = async () => {
        const desired = (await nc.request(NATS_SUBJECTS.agentDesired(a.tenantId, a.id), JSON.stringify({ v: 1 }), { timeout: 5000 })).json<DesiredState>();
        const reports = desired.captures.map((c) => ({ captureId: c.captureId, status: "running" as const, message: null, counters: {} }));
        a.running = new Set(desired.captures.map((c) => c.captureId));
        return reports;
      };
      nc.subscribe(NATS_SUBJECTS.agentCommand(a.tenantId, a.id), {
        callback: (_e, msg) => {
          reconcile().then(
            (captures) => {
              msg.respond(JSON.stringify({ v: 1, ok: true, captures }));
              nc.publish(NATS_SUBJECTS.agentHeartbeat(a.tenantId, a.id), JSON.stringify({ v: 1, captures }));
            },
            () => msg.respond(JSON.stringify({ v: 1, ok: false, captures: [] })),
          );
        },
      });
      await nc.request(NATS_SUBJECTS.agentHello(a.tenantId, a.id), JSON.stringify({ v: 1, facts }), { timeout: 5000 });
      agents.push(a);
    }
    console.log(" done");

    const times: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const started = performance.now();
      const capture = await api("POST", "/v1/captures", { name: `fan-out ${r}`, agents: { labels: { fleet: "bench" } } });
      for (;;) {
        const view = await api("GET", `/v1/captures/${capture.id}`);
        const running = view.agentStatuses.filter((s: { status: string }) => s.status === "running").length;
        if (running === N) break;
        if (performance.now() - started > 60_000) throw new Error(`only ${running}/${N} agents running after 60 s`);
        await new Promise((res) => setTimeout(res, 20));
      }
      times.push(performance.now() - started);
      await api("POST", `/v1/captures/${capture.id}/stop`);
    }
    const sorted = [...times].sort((a, b) => a - b);
    console.log(`\n| agents | rounds | POST → all running: p50 | max |\n|---:|---:|---:|---:|\n| ${N} | ${rounds} | ${percentile(sorted, 50).toFixed(0)} ms | ${sorted[sorted.length - 1]!.toFixed(0)} ms |`);
  } finally {
    await Promise.allSettled(agents.map((a) => a.nc.close()));
    await cp.close();
    await Promise.allSettled([pg.stop(), nats.stop()]);
    rmSync(dir, { recursive: true, force: true });
  }
}
