import { enrollInputSchema, type EnrollResult } from "@hdrcap/api/agents";
import { NATS_SUBJECTS, agentHeartbeatSchema, agentHelloSchema, agentInboxPrefix, agentNatsPermissions, type AgentHello } from "@hdrcap/api/nats";
import { createNatsAuthority, freePort, mintUserCreds, startNats, type NatsAuthority, type NatsServer } from "@hdrcap/local-services";
import { Algorithms, encodeUser } from "@nats-io/jwt";
import { fromSeed } from "@nats-io/nkeys";
import { connect, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// `hdrcap-agent run` as a process, against a stand-in enrollment endpoint that mints
// real agent JWTs and a nats-server in operator mode (as the control plane runs it).
const MAIN = resolve(import.meta.dirname, "../../src/main.ts");
const TOKEN = "hcet_run_test_token";
const TENANT = "ten_run";
const AGENT = "agt_run0000001";

let dir: string;
let authority: NatsAuthority;
let nats: NatsServer;
let cp: NatsConnection;
let http: Server;
let cpUrl: string;
const enrollCalls: unknown[] = [];
const hellos: AgentHello[] = [];
let heartbeats = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "hdrcap-agent-run-"));
  authority = await createNatsAuthority();
  nats = await startNats({ dir: join(dir, "nats"), extraConfig: authority.serverConfig() });
  cp = await connect({ servers: nats.url, authenticator: credsAuthenticator(new TextEncoder().encode(await mintUserCreds(authority.account.seed, "cp"))) });
  cp.subscribe(NATS_SUBJECTS.agentHello(TENANT, AGENT), {
    callback: (_e, m) => {
      hellos.push(agentHelloSchema.parse(m.json()));
      m.respond(JSON.stringify({ v: 1, captures: [] }));
    },
  });
  cp.subscribe(NATS_SUBJECTS.agentDesired(TENANT, AGENT), { callback: (_e, m) => void m.respond(JSON.stringify({ v: 1, captures: [] })) });
  cp.subscribe(NATS_SUBJECTS.agentHeartbeat(TENANT, AGENT), {
    callback: (_e, m) => {
      agentHeartbeatSchema.parse(m.json());
      heartbeats++;
    },
  });
  await cp.flush();

  const signer = fromSeed(new TextEncoder().encode(authority.account.seed));
  http = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      void (async () => {
        res.setHeader("content-type", "application/json");
        if (req.headers.authorization !== `Bearer ${TOKEN}`)
          return res.writeHead(401).end(JSON.stringify({ error: { code: "UNAUTHENTICATED", message: "invalid enrollment token", requestId: "r1" } }));
        const input = enrollInputSchema.parse(JSON.parse(body));
        enrollCalls.push(input);
        const p = agentNatsPermissions(TENANT, AGENT);
        const natsJwt = await encodeUser(AGENT, input.natsPublicKey, signer, { pub: p.pub, sub: p.sub, resp: { max: 1, ttl: 0 } }, { algorithm: Algorithms.v2 });
        const result: EnrollResult = { agentId: AGENT, tenantId: TENANT, natsServers: [nats.url], natsJwt, inboxPrefix: agentInboxPrefix(AGENT) };
        res.writeHead(200).end(JSON.stringify(result));
      })();
    });
  });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  cpUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
});

const children: ChildProcess[] = [];

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await cp?.close();
  await nats?.stop();
  await new Promise<void>((r) => http.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

function runAgent(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", MAIN, "run", "--control-plane", cpUrl, "--state-dir", join(dir, "state"), ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let stderr = "";
  child.stderr!.on("data", (c) => (stderr += c));
  const exited = new Promise<number | null>((r) => child.on("exit", (code) => r(code)));
  return { child, exited, stderr: () => stderr };
}

const waitFor = async (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await Promise.resolve().then(check).catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe("hdrcap-agent run", () => {
  it("exits non-zero with the control plane's message when the token is refused", async () => {
    const agent = runAgent(["--token", "hcet_wrong"]);
    expect(await agent.exited).not.toBe(0);
    expect(agent.stderr()).toContain("invalid enrollment token");
  });

  it("enrolls, saves its identity 0600 without the token, says hello, heartbeats, serves metrics, and exits 0 on SIGTERM", async () => {
    const metricsPort = await freePort();
    const agent = runAgent(["--metrics-port", String(metricsPort), "--heartbeat-interval", "200"], { HDRCAP_ENROLLMENT_TOKEN: TOKEN });
    await waitFor("hello", () => hellos.length > 0);
    expect(enrollCalls).toHaveLength(1);
    expect(hellos[0]!.facts.machineId).toMatch(/^[A-Za-z0-9._-]{8,}$/);
    const path = join(dir, "state", "agent.json");
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const saved = readFileSync(path, "utf8");
    expect(saved).not.toContain(TOKEN);
    expect(JSON.parse(saved)).toMatchObject({ agentId: AGENT, tenantId: TENANT, controlPlaneUrl: cpUrl });
    await waitFor("heartbeats", () => heartbeats >= 2);
    await waitFor("metrics", async () => (await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()).includes("hdrcap_agent_nats_connected 1"));
    agent.child.kill("SIGTERM");
    expect(await agent.exited).toBe(0);
  });

  it("restarts from its stored identity without a token", async () => {
    const before = hellos.length;
    const agent = runAgent([]);
    await waitFor("second hello", () => hellos.length > before);
    expect(enrollCalls).toHaveLength(1);
    agent.child.kill("SIGINT");
    expect(await agent.exited).toBe(0);
  });
});
