/**
 * End to end on this host: a real control plane (HTTP, NATS responders, ingester,
 * scheduler) over a real Postgres and a real nats-server in operator mode, and a
 * real agent process (apps/agent/dist/main.js run) capturing with eBPF. A capture
 * created through the API must put exactly the headers of real traffic into Postgres.
 */
import { createDb, migrateToLatest } from "@hdrcap/db";
import { createNatsAuthority, startNats, startPostgres, startProcess, type ManagedProcess, type NatsServer, type PostgresServer } from "@hdrcap/local-services";
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadEnv } from "../../src/env.ts";
import { startServer, type RunningServer } from "../../src/server.ts";
import { bootstrapFirstTenant } from "../../src/services/tenants.ts";

const AGENT_BIN = resolve(import.meta.dirname, "../../../agent/dist/main.js");

function hdrcapProgramIds(): Set<number> {
  const out = execFileSync("bpftool", ["prog", "show", "--json"], { encoding: "utf8" });
  return new Set((JSON.parse(out) as { id: number; name?: string }[]).filter((p) => p.name?.startsWith("hc_")).map((p) => p.id));
}

/** Programs a process holds (prog or link fds): other agents may run on this machine at the same time. */
function programIdsHeldBy(pid: number): Set<number> {
  const ids = new Set<number>();
  const dir = `/proc/${pid}/fdinfo`;
  for (const fd of readdirSync(dir)) {
    let info: string;
    try {
      info = readFileSync(join(dir, fd), "utf8");
    } catch {
      continue; // closed meanwhile
    }
    const m = /^prog_id:\s+(\d+)$/m.exec(info);
    if (m) ids.add(Number(m[1]));
  }
  return ids;
}

describe("fleet end to end: API → NATS → agent (eBPF) → JetStream → Postgres", () => {
  let dir: string;
  let pg: PostgresServer;
  let nats: NatsServer;
  let cp: RunningServer;
  let key: string;
  let agent: ManagedProcess | undefined;
  let web: Server;
  let webPort: number;
  const served: { method: string; url: string; headers: string[] }[] = [];

  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${cp.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as any };
  };

  const startAgent = (token?: string) =>
    startProcess("agent", process.execPath, [AGENT_BIN, "run", "--control-plane", cp.url, "--state-dir", join(dir, "agent"), "--heartbeat-interval", "1000", "--desired-interval", "2000", "--log-level", "info"], {
      logFile: join(dir, "agent.log"),
      env: { ...process.env, ...(token ? { HDRCAP_ENROLLMENT_TOKEN: token } : {}) },
    });

  // Raw HTTP requests with exact header order and case (Node's client would normalise nothing, but be explicit).
  const get = (path: string, headers: [string, string][]) =>
    new Promise<number>((resolveReq, reject) => {
      const req = request({ host: "127.0.0.1", port: webPort, path, method: "GET", headers: headers.flat(), agent: false }, (res) => {
        res.resume();
        res.on("end", () => resolveReq(res.statusCode ?? 0));
      });
      req.on("error", reject);
      req.end();
    });

  beforeAll(async () => {
    if (!existsSync(AGENT_BIN)) throw new Error(`${AGENT_BIN} is missing: run the build first (scripts/test.sh does)`);
    dir = mkdtempSync(join(tmpdir(), "hdrcap-e2e-"));
    chmodSync(dir, 0o755);
    const authority = await createNatsAuthority();
    [pg, nats] = await Promise.all([
      startPostgres({ dir: join(dir, "pg"), ephemeral: true }),
      startNats({ dir: join(dir, "nats"), extraConfig: authority.serverConfig() }),
    ]);
    const admin = createDb(pg.url, { max: 2 });
    await migrateToLatest(admin.db);
    key = (await bootstrapFirstTenant(admin.db, { slug: "default", name: "Default" }))!.key;
    await admin.close();
    cp = await startServer(
      loadEnv({ DATABASE_URL: pg.url, NATS_URL: nats.url, NATS_ACCOUNT_SEED: authority.account.seed, PORT: "0" }),
      pino({ level: "silent" }),
    );
    web = createServer((req, res) => {
      served.push({ method: req.method!, url: req.url!, headers: req.rawHeaders });
      res.setHeader("X-Served-By", "e2e");
      res.end("ok");
    });
    await new Promise<void>((r) => web.listen(0, "127.0.0.1", r));
    webPort = (web.address() as { port: number }).port;
  });

  afterAll(async () => {
    await agent?.stop("SIGTERM", 15_000);
    await new Promise((r) => web?.close(r));
    await cp?.close();
    await Promise.allSettled([pg?.stop(), nats?.stop()]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("enrolls the agent, runs a capture from the API and stores exactly the headers sent, within 2 s", async () => {
    const token = await api("POST", "/v1/enrollment-tokens", { labels: { role: "web" } });
    agent = startAgent(token.body.token);
    await expect.poll(async () => (await api("GET", "/v1/agents")).body.items[0]?.status, { timeout: 30_000, interval: 250 }).toBe("online");
    const agentId: string = (await api("GET", "/v1/agents")).body.items[0].id;
    expect(readFileSync(join(dir, "agent", "agent.json"), "utf8")).not.toContain(token.body.token);

    const created = await api("POST", "/v1/captures", { name: "e2e", agents: { labels: { role: "web" } }, filter: { ports: [webPort], role: "server" } });
    expect(created.status).toBe(201);
    const captureId: string = created.body.id;
    await expect.poll(async () => (await api("GET", `/v1/captures/${captureId}`)).body.status, { timeout: 15_000, interval: 200 }).toBe("running");

    const sent: [string, string][][] = [];
    const started = Date.now();
    for (let i = 0; i < 20; i++) {
      const headers: [string, string][] = [
        ["Host", `127.0.0.1:${webPort}`],
        ["X-Request-Seq", String(i)],
        ["Accept", "*/*"],
        ["X-Dup", "a"],
        ["x-dup", "b"],
        ["Authorization", `Bearer secret-${i}`],
      ];
      sent.push(headers);
      expect(await get(`/item/${i}?q=${i}`, headers)).toBe(200);
    }
    let items: any[] = [];
    /** Reads the records again (into `items`) and counts those of one kind. */
    const stored = async (kind: "request" | "response") => {
      items = (await api("GET", `/v1/captures/${captureId}/records?limit=1000`)).body.items;
      return items.filter((r) => r.kind === kind).length;
    };
    await expect.poll(() => stored("request"), { timeout: 10_000, interval: 100 }).toBe(20);
    expect(Date.now() - started).toBeLessThan(2000 + 20 * 50);

    const requests = items.filter((r) => r.kind === "request").sort((a, b) => Number(a.path.split("/")[2].split("?")[0]) - Number(b.path.split("/")[2].split("?")[0]));
    requests.forEach((r, i) => {
      expect(r.method).toBe("GET");
      expect(r.path).toBe(`/item/${i}?q=${i}`);
      expect(r.version).toBe("HTTP/1.1");
      expect(r.agentId).toBe(agentId);
      expect(r.dst).toEqual({ ip: "127.0.0.1", port: webPort });
      expect(r.pid).toBe(process.pid);
      expect(r.headers.filter((h: { name: string }) => h.name !== "Connection")).toEqual(
        sent[i]!.map(([name, value]) => ({ name, value: name === "Authorization" ? "[REDACTED]" : value })),
      );
    });
    // The last response may be stored a moment after the last request: read the records again.
    await expect.poll(() => stored("response"), { timeout: 5000, interval: 100 }).toBe(20);
    const responses = items.filter((r) => r.kind === "response");
    for (const r of responses) {
      expect(r.status).toBe(200);
      expect(r.latencyMs).toBeGreaterThanOrEqual(0);
      expect(r.headers.find((h: { name: string }) => h.name === "X-Served-By")?.value).toBe("e2e");
    }

    const view = await api("GET", `/v1/captures/${captureId}`);
    expect(view.body.completeness.stored).toBe(40);
    await expect.poll(async () => (await api("GET", `/v1/captures/${captureId}`)).body.completeness.lostInKernel, { timeout: 5000 }).toBe(0);

    // kill -9 the agent: its programs die with it; restarted, it resumes the job with the same identity.
    const before = new Set([...programIdsHeldBy(agent.pid)].filter((id) => hdrcapProgramIds().has(id)));
    expect(before.size).toBeGreaterThan(0);
    await agent.stop("SIGKILL");
    await expect.poll(() => [...before].filter((id) => hdrcapProgramIds().has(id)).length, { timeout: 5000 }).toBe(0);
    agent = startAgent();
    await expect
      .poll(async () => (await api("GET", `/v1/captures/${captureId}`)).body.agentStatuses[0]?.status, { timeout: 20_000, interval: 200 })
      .toBe("running");
    expect((await api("GET", "/v1/agents")).body.items.map((a: { id: string }) => a.id)).toEqual([agentId]);
    await expect
      .poll(
        async () => {
          await get("/after-restart", [["Host", "x"], ["X-After", "restart"]]);
          const page = (await api("GET", `/v1/captures/${captureId}/records?limit=1000&order=desc`)).body.items;
          return page.some((r: any) => r.path === "/after-restart");
        },
        { timeout: 10_000, interval: 500 },
      )
      .toBe(true);

    // Stop: the agent detaches and the job ends as cancelled.
    await api("POST", `/v1/captures/${captureId}/stop`);
    await expect.poll(async () => (await api("GET", `/v1/captures/${captureId}`)).body.status, { timeout: 15_000, interval: 250 }).toBe("cancelled");
  });
});
