/**
 * Agent self-deregistration and the unauthenticated install routes, through the real app
 * on a real Postgres. An agent proves itself with a signature by its own enrollment key:
 * nobody else (another agent, an API key, a replay, a stale request) can remove it.
 */
import { createUser, type KeyPair } from "@nats-io/nkeys";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signDeregistration } from "../../../agent/src/install/deregistration.ts";
import { createHarness, type Harness } from "../harness.ts";

describe("POST /v1/agents/self/deregister", () => {
  let h: Harness;
  let tenantId: string;
  const agents: Record<string, { id: string; key: KeyPair; seed: string }> = {};

  const addAgent = async (name: string) => {
    const key = createUser();
    const id = `agt_${name}${"0".repeat(12)}`.slice(0, 20);
    await h.db.db
      .insertInto("agents")
      .values({ id, tenant_id: tenantId, machine_id: `machine-${name}`, hostname: name, labels: {}, facts: {}, nats_public_key: key.getPublicKey(), last_seen_at: null })
      .execute();
    agents[name] = { id, key, seed: new TextDecoder().decode(key.getSeed()) };
    return agents[name]!;
  };
  const deregister = (body: unknown, headers: Record<string, string> = {}) => h.call("POST", "/v1/agents/self/deregister", { body, headers });
  const listed = async () => ((await h.call("GET", "/v1/agents", { key: h.operatorKey })).body.items as { id: string }[]).map((a) => a.id).sort();

  beforeAll(async () => {
    h = await createHarness();
    tenantId = (await h.call("GET", "/v1/whoami", { key: h.operatorKey })).body.tenant.id;
    await addAgent("alpha");
    await addAgent("bravo");
  });
  afterAll(async () => h?.close());

  it("refuses a request signed by another agent's key and keeps the agent", async () => {
    const res = await deregister(signDeregistration(agents.alpha!.id, agents.bravo!.seed));
    expect(res.status).toBe(401);
    expect(res.body.error.message).toMatch(/does not prove this agent's identity/);
    expect(await listed()).toEqual([agents.alpha!.id, agents.bravo!.id].sort());
  });

  it("refuses a signature whose timestamp was changed", async () => {
    const signed = signDeregistration(agents.alpha!.id, agents.alpha!.seed);
    expect((await deregister({ ...signed, timestamp: signed.timestamp + 1 })).status).toBe(401);
  });

  it("refuses a request signed more than five minutes away from the control plane's clock", async () => {
    const res = await deregister(signDeregistration(agents.alpha!.id, agents.alpha!.seed, Date.now() - 6 * 60_000));
    expect(res.status).toBe(401);
    expect(res.body.error.message).toMatch(/off this control plane's clock/);
  });

  it("does not accept an API key in place of the agent's signature", async () => {
    const res = await deregister({ agentId: agents.alpha!.id }, { authorization: `Bearer ${h.operatorKey}` });
    expect(res.status).toBe(400);
    expect(res.body.error.issues.map((i: { path: string }) => i.path).sort()).toEqual(["body.signature", "body.timestamp"]);
  });

  it("removes the agent that signed, audits it, and leaves the others", async () => {
    const signed = signDeregistration(agents.alpha!.id, agents.alpha!.seed);
    const res = await deregister(signed);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ agentId: agents.alpha!.id, deregistered: true });
    expect(await listed()).toEqual([agents.bravo!.id]);
    const audit = await h.db.db.selectFrom("audit_log").selectAll().where("action", "=", "agent.deregister").execute();
    expect(audit.map((a) => a.resource_id)).toEqual([agents.alpha!.id]);

    // The same request again (a replay) finds nothing to remove and says nothing more.
    const replay = await deregister(signed);
    expect(replay.status).toBe(401);
    expect(await listed()).toEqual([agents.bravo!.id]);
  });
});

describe("install routes (no API key)", () => {
  let h: Harness;
  const saved = { dir: process.env.HDRCAP_BUNDLE_DIR, url: process.env.HDRCAP_PUBLIC_URL };
  const bundles = mkdtempSync(join(tmpdir(), "hdrcap-bundles-"));

  beforeAll(async () => {
    h = await createHarness();
    process.env.HDRCAP_BUNDLE_DIR = bundles;
  });
  afterAll(async () => {
    for (const [k, v] of [["HDRCAP_BUNDLE_DIR", saved.dir], ["HDRCAP_PUBLIC_URL", saved.url]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    rmSync(bundles, { recursive: true, force: true });
    await h?.close();
  });

  it("serves install.sh templated with HDRCAP_PUBLIC_URL", async () => {
    process.env.HDRCAP_PUBLIC_URL = "https://hdrcap.example.com";
    const res = await h.call("GET", "/install.sh");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/x-shellscript/);
    expect(res.body).toContain("CONTROL_PLANE_URL='https://hdrcap.example.com'");
    delete process.env.HDRCAP_PUBLIC_URL;
  });

  it("says how to build a bundle when there is none", async () => {
    const res = await h.call("GET", "/bundles/latest.json");
    expect(res.status).toBe(404);
    expect(res.body.error.message).toMatch(/build-agent-bundle/);
  });

  it("serves the bundle named by latest.json and nothing else from the directory", async () => {
    const file = "agent-1.2.3-abc-linux-x64.tar.gz";
    writeFileSync(join(bundles, file), "bundle bytes");
    writeFileSync(join(bundles, "latest.json"), JSON.stringify({ version: "1.2.3-abc", file, sha256: "a".repeat(64), size: 12 }));
    mkdirSync(join(bundles, "private"), { recursive: true });
    writeFileSync(join(bundles, "private/secret.txt"), "no");
    const latest = await h.call("GET", "/bundles/latest.json");
    expect(latest.body).toEqual({ version: "1.2.3-abc", file, sha256: "a".repeat(64), size: 12 });
    const tarball = await h.call("GET", `/bundles/${file}`);
    expect(tarball.status).toBe(200);
    expect(tarball.body).toBe("bundle bytes");
    for (const p of ["/bundles/private%2Fsecret.txt", "/bundles/..%2F..%2Fetc%2Fpasswd", "/bundles/latest.json.bak"]) {
      expect((await h.call("GET", p)).status, p).toBe(404);
    }
  });
});
