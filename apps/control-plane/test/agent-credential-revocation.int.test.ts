import { NATS_SUBJECTS, type DesiredState, type EnrollResult, type HostFacts } from "@hdrcap/api";
import { createNatsAuthority, startNats, type NatsAuthority, type NatsServer } from "@hdrcap/local-services";
import { freshDatabase, type TestDatabase } from "@hdrcap/testkit";
import { createUser, type KeyPair } from "@nats-io/nkeys";
import { connect, jwtAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { loadEnv } from "../src/env.ts";
import { startServer, type RunningServer } from "../src/server.ts";
import { deregistrationStatement } from "../src/services/agent-deregistration.ts";
import { bootstrapFirstTenant } from "../src/services/tenants.ts";
import { hostFacts } from "./security/world.ts";

// Removing an agent revokes its NATS credentials for real: a real nats-server in operator
// mode with the full resolver, a real Postgres, the control plane pushing the account JWT
// with revocations. The agents are played by this test over real NATS connections.

const facts = (machineId: string): HostFacts => hostFacts(machineId);

interface Agent {
  id: string;
  tenantId: string;
  user: KeyPair;
  enroll: EnrollResult;
  /** Set by connectAgent. */
  nc?: NatsConnection;
  /** When the server cut the connection (first disconnect or error status). */
  cutAt?: number;
  errors: string[];
}

describe("agent credential revocation over NATS", () => {
  let dir: string;
  let natsDir: string;
  let authority: NatsAuthority;
  let nats: NatsServer;
  let db: TestDatabase;
  let server: RunningServer | undefined;
  let adminKey: string;

  const envFor = (roles: string, extra: Record<string, string> = {}) =>
    loadEnv({
      DATABASE_URL: db.url,
      NATS_URL: nats.url,
      NATS_ACCOUNT_SEED: authority.account.seed,
      NATS_OPERATOR_SIGNING_SEED: authority.operatorSigningSeed,
      NATS_SYSTEM_CREDS: authority.systemUserCreds,
      PORT: "0",
      HDRCAP_ROLES: roles,
      ...extra,
    });

  const api = async (method: string, path: string, body?: unknown, auth: string | null = adminKey) => {
    const res = await fetch(`${server!.url}${path}`, {
      method,
      headers: { ...(auth ? { authorization: `Bearer ${auth}` } : {}), ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: (await res.json()) as any };
  };

  async function enrollAgent(machineId: string): Promise<Agent> {
    const token = (await api("POST", "/v1/enrollment-tokens", { maxUses: 1 })).body.token;
    const user = createUser();
    const res = await api("POST", "/v1/enroll", { facts: facts(machineId), natsPublicKey: user.getPublicKey() }, token);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const enroll = res.body as EnrollResult;
    return { id: enroll.agentId, tenantId: enroll.tenantId, user, enroll, errors: [] };
  }

  const connectAs = (a: Agent, opts: { maxReconnectAttempts?: number } = {}) =>
    connect({
      servers: nats.url,
      authenticator: jwtAuthenticator(a.enroll.natsJwt, a.user.getSeed()),
      inboxPrefix: a.enroll.inboxPrefix,
      reconnectTimeWait: 200,
      maxReconnectAttempts: opts.maxReconnectAttempts ?? -1,
    });

  async function connectAgent(a: Agent): Promise<void> {
    a.nc = await connectAs(a);
    (async () => {
      for await (const s of a.nc!.status()) {
        if (s.type === "disconnect" || s.type === "error") a.cutAt ??= Date.now();
        if (s.type === "error") a.errors.push(String((s as { error?: Error }).error?.message));
      }
    })().catch(() => {});
  }

  /** A fresh connection with the agent's credentials: refused (the error) or accepted (null). */
  async function freshConnectError(a: Agent): Promise<string | null> {
    try {
      const nc = await connectAs(a, { maxReconnectAttempts: 0 });
      await nc.close();
      return null;
    } catch (err) {
      return (err as Error).message;
    }
  }

  const hello = async (a: Agent) =>
    (await a.nc!.request(NATS_SUBJECTS.agentHello(a.tenantId, a.id), JSON.stringify({ v: 1, facts: facts(`machine-${a.id}`) }), { timeout: 3000 })).json<DesiredState>();

  const deregister = (a: Agent) => {
    const timestamp = Date.now();
    const signature = Buffer.from(a.user.sign(deregistrationStatement(a.id, timestamp))).toString("base64url");
    return api("POST", "/v1/agents/self/deregister", { agentId: a.id, timestamp, signature }, null);
  };

  /** The user public keys nats-server has connections for (monitoring endpoint). */
  const connectedUsers = async (): Promise<string[]> => {
    const connz = (await (await fetch(`http://127.0.0.1:${nats.monitorPort}/connz?auth=true&limit=1024`)).json()) as { connections: { authorized_user?: string }[] };
    return connz.connections.map((c) => c.authorized_user ?? "");
  };

  const metricValue = async (trigger: string, result: string) => {
    const text = await (await fetch(`${server!.url}/metrics`)).text();
    const m = text.match(new RegExp(`hdrcap_cp_nats_revocation_pushes_total\\{trigger="${trigger}",result="${result}"\\} (\\d+)`));
    return m ? Number(m[1]) : 0;
  };

  /** Restarts nats-server on the same port, without the JWTs it stored (a lost or fresh disk). */
  async function restartNatsWithEmptyJwtDir(): Promise<void> {
    await nats.stop();
    rmSync(join(natsDir, "jwt"), { recursive: true, force: true });
    nats = await startNats({ dir: natsDir, port: nats.port, extraConfig: authority.serverConfig() });
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "hdrcap-revocation-"));
    natsDir = join(dir, "nats");
    authority = await createNatsAuthority();
    nats = await startNats({ dir: natsDir, extraConfig: authority.serverConfig() });
    db = await freshDatabase(inject("pgAdminUrl"));
    adminKey = (await bootstrapFirstTenant(db.db, { slug: "default", name: "Default" }))!.key;
    server = await startServer(envFor("api,scheduler"), pino({ level: "silent" }));
  });
  afterAll(async () => {
    await server?.close();
    await db?.drop();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  let a: Agent;
  let b: Agent;

  it("closes a deregistered agent's connection at once and refuses its credentials, leaving other agents alone", async () => {
    a = await enrollAgent("machine-a");
    b = await enrollAgent("machine-b");
    await connectAgent(a);
    await connectAgent(b);
    await hello(a);
    await hello(b);
    expect(await connectedUsers()).toEqual(expect.arrayContaining([a.user.getPublicKey(), b.user.getPublicKey()]));

    const started = Date.now();
    const res = await deregister(a);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    await expect.poll(() => a.cutAt, { timeout: 5000, interval: 20 }).toBeDefined();
    const cutMs = a.cutAt! - started;
    console.info(`revocation cut the deregistered agent's connection ${cutMs} ms after the deregistration request was sent`);
    expect(cutMs).toBeLessThan(3000);
    expect(a.errors.join(" ")).toMatch(/User Authentication Revoked/i);
    // Its reconnects are refused until the client gives up; the server holds no connection for it.
    await expect(a.nc!.closed()).resolves.toBeInstanceOf(Error);
    expect(await connectedUsers()).not.toContain(a.user.getPublicKey());
    expect(await freshConnectError(a)).toMatch(/Authorization Violation/);

    // B: still connected, still served, still publishing.
    expect(b.nc!.isClosed()).toBe(false);
    expect(b.cutAt).toBeUndefined();
    expect((await hello(b)).captures).toEqual([]);
    expect(await connectedUsers()).toContain(b.user.getPublicKey());

    const row = await db.db.selectFrom("agent_credential_revocations").selectAll().where("agent_id", "=", a.id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ nats_public_key: a.user.getPublicKey(), tenant_id: a.tenantId });
    expect(await metricValue("deregistration", "ok")).toBe(1);
  });

  it("has a new control plane re-push the revocations to a nats-server that lost them", async () => {
    await server!.close();
    server = undefined;
    await restartNatsWithEmptyJwtDir();
    // Preloaded account JWT only: A's credentials work again (what the push must undo).
    expect(await freshConnectError(a)).toBeNull();

    server = await startServer(envFor("api,scheduler"), pino({ level: "silent" }));
    await expect.poll(() => freshConnectError(a), { timeout: 5000, interval: 100 }).toMatch(/Authorization Violation/);
    expect(await metricValue("start", "ok")).toBe(1);
    // B reconnected on its own and is served by the new instance.
    await expect.poll(async () => (await hello(b)).captures, { timeout: 5000 }).toEqual([]);
  });

  it("keeps a deregistration working while nats-server is down, and revokes once it is back", async () => {
    const e = await enrollAgent("machine-e");
    await nats.stop();
    const res = await deregister(e);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    await expect.poll(() => metricValue("deregistration", "failed"), { timeout: 3000 }).toBe(1);

    // Back with an empty JWT directory: the reconnect push (or the periodic one) restores both revocations.
    rmSync(join(natsDir, "jwt"), { recursive: true, force: true });
    const restartedAt = Date.now();
    nats = await startNats({ dir: natsDir, port: nats.port, extraConfig: authority.serverConfig() });
    await expect.poll(() => freshConnectError(e), { timeout: 10_000, interval: 100 }).toMatch(/Authorization Violation/);
    console.info(`revocations restored ${Date.now() - restartedAt} ms after nats-server restarted with an empty JWT directory`);
    expect(await freshConnectError(a)).toMatch(/Authorization Violation/);
    expect((await metricValue("reconnect", "ok")) + (await metricValue("periodic", "ok"))).toBeGreaterThan(0);
    await expect.poll(async () => (await hello(b)).captures, { timeout: 5000 }).toEqual([]);
  });

  it("re-pushes periodically", async () => {
    await server!.close();
    server = await startServer(envFor("scheduler", { HDRCAP_NATS_REVOCATION_REPUSH_SECONDS: "1" }), pino({ level: "silent" }));
    await expect.poll(() => metricValue("periodic", "ok"), { timeout: 5000 }).toBeGreaterThanOrEqual(2);
    await server.close();
    server = await startServer(envFor("api,scheduler"), pino({ level: "silent" }));
  });

  it("removes an agent through DELETE /v1/agents/{id}: 404 for another tenant, then revoked, audited and gone", async () => {
    const c = await enrollAgent("machine-c");
    await connectAgent(c);
    await hello(c);

    const other = await api("POST", "/v1/tenants", { slug: "other-co", name: "Other" });
    expect((await api("DELETE", `/v1/agents/${c.id}`, undefined, other.body.key)).status).toBe(404);
    expect(c.cutAt).toBeUndefined();
    expect((await api("GET", `/v1/agents/${c.id}`)).status).toBe(200);

    const started = Date.now();
    const res = await api("DELETE", `/v1/agents/${c.id}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ id: c.id, status: "online" });
    await expect.poll(() => c.cutAt, { timeout: 5000, interval: 20 }).toBeDefined();
    console.info(`DELETE /v1/agents/{id} cut the agent's connection ${c.cutAt! - started} ms after the request was sent`);
    await expect(c.nc!.closed()).resolves.toBeInstanceOf(Error);
    expect(await freshConnectError(c)).toMatch(/Authorization Violation/);
    expect((await api("GET", `/v1/agents/${c.id}`)).status).toBe(404);
    expect((await api("DELETE", `/v1/agents/${c.id}`)).status).toBe(404);

    const audit = await api("GET", "/v1/audit?limit=20");
    expect(audit.body.items).toEqual(expect.arrayContaining([expect.objectContaining({ action: "agent.delete", resourceType: "agent", resourceId: c.id })]));
    expect((await hello(b)).captures).toEqual([]);
  });

  it("revokes the old key when a host re-enrolls with a new one, keeping its agent id", async () => {
    const first = await enrollAgent("machine-e");
    await connectAgent(first);
    await hello(first);
    const second = await enrollAgent("machine-e");
    expect(second.id).toBe(first.id);
    await expect.poll(() => first.cutAt, { timeout: 5000, interval: 20 }).toBeDefined();
    expect(await freshConnectError(first)).toMatch(/Authorization Violation/);
    expect(await freshConnectError(second)).toBeNull();
    expect(await metricValue("reenroll", "ok")).toBe(1);
    // Re-enrolling with the same key revokes nothing.
    const token = (await api("POST", "/v1/enrollment-tokens", { maxUses: 1 })).body.token;
    const again = await api("POST", "/v1/enroll", { facts: facts("machine-e"), natsPublicKey: second.user.getPublicKey() }, token);
    expect(again.status).toBe(200);
    expect(await freshConnectError(second)).toBeNull();
    expect(await metricValue("reenroll", "ok")).toBe(1);
  });

  it("refuses to start with system credentials nats-server does not accept", async () => {
    const strangers = await createNatsAuthority();
    await expect(startServer(envFor("api", { NATS_SYSTEM_CREDS: strangers.systemUserCreds }), pino({ level: "silent" }))).rejects.toThrow(
      /cannot connect to NATS as the system-account user of NATS_SYSTEM_CREDS: .*Authorization Violation/,
    );
  });

  it("removes an agent through tRPC agents.remove with the same revocation", async () => {
    const d = await enrollAgent("machine-d");
    await connectAgent(d);
    await hello(d);
    const res = await fetch(`${server!.url}/trpc/agents.remove`, {
      method: "POST",
      headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json" },
      body: JSON.stringify({ id: d.id }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).result.data.id).toBe(d.id);
    await expect.poll(() => d.cutAt, { timeout: 5000, interval: 20 }).toBeDefined();
    expect(await freshConnectError(d)).toMatch(/Authorization Violation/);
    expect(await metricValue("agent-delete", "ok")).toBeGreaterThanOrEqual(1);
    expect((await hello(b)).captures).toEqual([]);
    await b.nc!.close();
  });
});
