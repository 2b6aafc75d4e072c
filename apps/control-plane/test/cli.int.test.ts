import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startCliHarness, type CliHarness } from "./cli-harness.ts";

// The CLI as a user runs it (a separate process), against the real app over HTTP.
describe("hdrcap CLI", () => {
  let cli: CliHarness;
  let h: CliHarness["h"];
  const hdrcap = (...args: string[]) => cli.hdrcap(...args);

  beforeAll(async () => {
    cli = await startCliHarness();
    ({ h } = cli);
  });
  afterAll(async () => cli.close());

  it("creates, lists, shows and stops captures, in tables and as JSON", async () => {
    const created = JSON.parse((await hdrcap("captures", "create", "cli-demo", "--port", "8080,9090", "--role", "server", "--redact", "x-session", "--json")).stdout);
    expect(created).toMatchObject({ name: "cli-demo", status: "pending", filter: { ports: [8080, 9090], role: "server" }, headers: { redact: ["x-session"] } });

    const table = (await hdrcap("captures", "list")).stdout;
    expect(table.split("\n")[0]).toMatch(/^ID\s+NAME\s+STATUS\s+AGENTSRUNNING\s+STORED\s+CREATEDAT/);
    expect(table).toContain(created.id);

    const shown = JSON.parse((await hdrcap("captures", "get", created.id, "--json")).stdout);
    expect(shown.id).toBe(created.id);

    const stopped = (await hdrcap("captures", "stop", created.id)).stdout;
    expect(stopped).toMatch(new RegExp(`${created.id} "cli-demo" stopping \\(stopped by user\\)`));
  });

  it("reports API errors with the field that was wrong and a non-zero exit", async () => {
    const err = await hdrcap("captures", "create", "bad", "--port", "70000").catch((e: { code: number; stderr: string }) => e);
    expect((err as { code: number }).code).toBe(1);
    expect((err as { stderr: string }).stderr).toMatch(/400 BAD_REQUEST[\s\S]*body\.filter\.ports\.0/);
  });

  it("lists agents and keys", async () => {
    expect((await hdrcap("agents", "list")).stdout).toMatch(/^ID\s+HOSTNAME\s+STATUS/);
    expect((await hdrcap("keys", "list")).stdout).toContain(h.operatorKey.slice(0, 11));
  });

  it("removes an agent, recording the revocation of its NATS key, and says so", async () => {
    const tenantId = (await h.call("GET", "/v1/whoami", { key: h.operatorKey })).body.tenant.id;
    const natsPublicKey = `U${"A".repeat(55)}`;
    await h.db.db
      .insertInto("agents")
      .values({ id: "agt_cliRemove00000001", tenant_id: tenantId, machine_id: "m-cli-remove", hostname: "retired-host", labels: {}, facts: {} as never, nats_public_key: natsPublicKey, last_seen_at: null })
      .execute();
    expect((await hdrcap("agents", "remove", "agt_cliRemove00000001")).stdout.trim()).toBe("removed agt_cliRemove00000001 (retired-host); its NATS credentials are revoked");
    expect(await h.db.db.selectFrom("agents").select("id").where("id", "=", "agt_cliRemove00000001").executeTakeFirst()).toBeUndefined();
    const revoked = await h.db.db.selectFrom("agent_credential_revocations").selectAll().where("agent_id", "=", "agt_cliRemove00000001").executeTakeFirstOrThrow();
    expect(revoked.nats_public_key).toBe(natsPublicKey);
    const again = await hdrcap("agents", "remove", "agt_cliRemove00000001").catch((e: { code: number; stderr: string }) => e);
    expect((again as { code: number }).code).toBe(1);
    expect((again as { stderr: string }).stderr).toMatch(/404 NOT_FOUND/);
  });

  it("cancels a running agent upgrade rollout, as JSON or in words, and says why a second cancel fails", async () => {
    const tenantId = (await h.call("GET", "/v1/whoami", { key: h.operatorKey })).body.tenant.id;
    // Stored directly: creating one through the API needs a built agent bundle.
    const running = async (id: string) => {
      await h.db.db
        .insertInto("agent_upgrades")
        .values({ id, tenant_id: tenantId, target_version: "2.0.0-cli", bundle_file: "agent-2.0.0-cli-linux-x64.tar.gz", bundle_sha256: "0".repeat(64), bundle_size: 1, selector: {}, batch_size: 1, timeout_seconds: 60, batch_count: 2, status: "running", status_reason: null, current_batch: null, batch_started_at: null, created_by_key_id: null, finished_at: null })
        .execute();
      await h.db.db
        .insertInto("agent_upgrade_agents")
        .values([0, 1].map((batch) => ({ upgrade_id: id, agent_id: `agt_CliCancel000000${batch}`, tenant_id: tenantId, hostname: `host-${batch}`, batch, status: "pending" as const, from_version: "1.0.0", message: null, commanded_at: null })))
        .execute();
    };
    const [first, second] = ["upg_CliCancel00000001", "upg_CliCancel00000002"];
    await running(first);
    const json = JSON.parse((await hdrcap("agents", "upgrade", "cancel", first, "--json")).stdout);
    expect(json).toMatchObject({ id: first, status: "cancelled", counts: { skipped: 2 } });

    await running(second); // the cancelled one no longer holds the tenant's one running rollout
    expect((await hdrcap("agents", "upgrade", "cancel", second)).stdout.split("\n")).toEqual([
      `rollout ${second} cancelled: cancelled; no agent was being upgraded`,
      "  skipped 2 agents not yet commanded",
      "",
    ]);
    const again = await hdrcap("agents", "upgrade", "cancel", second).catch((e: { code: number; stderr: string }) => e);
    expect((again as { code: number }).code).toBe(1);
    expect((again as { stderr: string }).stderr).toContain(`409 CONFLICT: cannot cancel agent upgrade ${second}: it is cancelled, not running`);
    await h.db.db.deleteFrom("agent_upgrades").where("id", "in", [first, second]).execute();
  });
});
