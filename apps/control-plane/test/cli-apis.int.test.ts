import type { HttpRecord } from "@hdrcap/api";
import { insertRecordRows } from "@hdrcap/db";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordRow } from "../src/messaging/ingester.ts";
import { startCliHarness, type CliHarness } from "./cli-harness.ts";

function record(i: number): HttpRecord {
  const request = i % 2 === 0;
  return {
    ts: new Date(Date.UTC(2026, 10, 25, 9, 0, i)).toISOString(),
    connectionId: "c1",
    kind: request ? "request" : "response",
    role: "server",
    src: { ip: "10.0.0.1", port: 40000 },
    dst: { ip: "10.0.0.2", port: 8080 },
    pid: 1,
    comm: "svc",
    method: request ? "GET" : null,
    path: request ? `/v1/users/${i}` : null,
    version: "HTTP/1.1",
    status: request ? null : 200,
    reason: request ? null : "OK",
    latencyMs: request ? null : 1,
    headers: [{ name: "Host", value: "svc.test" }],
    headerBytes: 20,
    redacted: [],
  };
}

type Failure = { code: number; stderr: string };

// `hdrcap apis …` as a user runs it (the built CLI, a separate process) against the real app over HTTP.
describe("hdrcap apis", () => {
  let cli: CliHarness;
  const hdrcap = (...args: string[]) => cli.hdrcap(...args);
  const fails = (...args: string[]) => hdrcap(...args).then(
    (ok) => {
      throw new Error(`expected hdrcap ${args.join(" ")} to fail; printed ${ok.stdout}`);
    },
    (e: Failure) => e,
  );
  const consume = (key: string) => fetch(`${cli.url}/apis/default/users?limit=10`, { headers: { authorization: `Bearer ${key}` } });
  let captureId: string;

  beforeAll(async () => {
    cli = await startCliHarness();
    captureId = JSON.parse((await hdrcap("captures", "create", "apis-demo", "--port", "8080", "--json")).stdout).id;
    const tenantId = (await cli.h.call("GET", "/v1/whoami", { key: cli.h.operatorKey })).body.tenant.id;
    await insertRecordRows(cli.h.db.db, Array.from({ length: 6 }, (_, i) => recordRow(record(i), { tenantId, captureId, agentId: "agt_cliapis00000000" })));
  });
  afterAll(async () => cli?.close());

  it("takes an API through its lifecycle with consumer keys, in tables and as JSON", async () => {
    const created = JSON.parse(
      (await hdrcap("apis", "create", "users", "--capture", captureId, "--fields", "ts,method,path", "--kind", "request", "--path-prefix", "/v1/users/", "--description", "user calls", "--json")).stdout,
    );
    expect(created).toMatchObject({ name: "users", state: "draft", captureId, fields: ["ts", "method", "path"], filter: { kind: "request", pathPrefix: "/v1/users/" }, path: "/apis/default/users" });

    const table = (await hdrcap("apis", "list")).stdout;
    expect(table.split("\n")[0]).toMatch(/^ID\s+NAME\s+STATE\s+CAPTUREID\s+PATH\s+FIELDS\s+UPDATEDAT$/);
    expect(table).toMatch(new RegExp(`${created.id}\\s+users\\s+draft\\s+${captureId}\\s+/apis/default/users\\s+ts,method,path`));
    expect(JSON.parse((await hdrcap("apis", "list", "--json")).stdout).map((a: { id: string }) => a.id)).toEqual([created.id]);
    expect((await hdrcap("apis", "get", created.id)).stdout).toContain(`${created.id} "users" draft, served at /apis/default/users`);

    expect((await hdrcap("apis", "publish", created.id)).stdout.trim()).toBe(`published ${created.id} at /apis/default/users`);
    const issued = JSON.parse((await hdrcap("apis", "keys", "create", created.id, "partner", "--per-second", "5", "--burst", "10", "--json")).stdout);
    expect(issued.key).toMatch(/^hcc_/);
    expect(issued.consumer).toMatchObject({ name: "partner", rateLimit: { perSecond: 5, burst: 10 }, revokedAt: null });
    const served = await consume(issued.key);
    expect(served.status).toBe(200);
    expect(((await served.json()) as { items: unknown[] }).items).toEqual([0, 2, 4].map((i) => ({ ts: record(i).ts, method: "GET", path: `/v1/users/${i}` })));

    const keys = (await hdrcap("apis", "keys", "list", created.id)).stdout;
    expect(keys.split("\n")[0]).toMatch(/^ID\s+NAME\s+PREFIX\s+RATELIMIT\s+REVOKEDAT\s+CREATEDAT$/);
    expect(keys).toMatch(new RegExp(`${issued.consumer.id}\\s+partner\\s+${issued.consumer.prefix}\\s+5/s burst 10\\s+-`));

    expect((await hdrcap("apis", "deprecate", created.id, "--sunset", "2030-01-01T00:00:00Z")).stdout.trim()).toBe(`deprecated ${created.id}, sunset 2030-01-01T00:00:00.000Z`);
    expect((await consume(issued.key)).headers.get("sunset")).toBe("Tue, 01 Jan 2030 00:00:00 GMT");

    expect((await hdrcap("apis", "keys", "revoke", created.id, issued.consumer.id)).stdout.trim()).toBe(`revoked ${issued.consumer.id}`);
    expect((await consume(issued.key)).status).toBe(401);
    expect(JSON.parse((await hdrcap("apis", "keys", "list", created.id, "--json")).stdout)[0].revokedAt).not.toBeNull();

    const retired = JSON.parse((await hdrcap("apis", "retire", created.id, "--json")).stdout);
    expect(retired.state).toBe("retired");
    const second = JSON.parse((await hdrcap("apis", "keys", "create", created.id, "late", "--json").catch((e: Failure) => ({ stdout: JSON.stringify({ failed: e.stderr }) }))).stdout);
    expect(second.failed).toMatch(/409 CONFLICT/);
  });

  it("reports API errors with the field that was wrong, and refuses a wrong transition, with a non-zero exit", async () => {
    const bad = await fails("apis", "create", "bad", "--capture", captureId, "--fields", "ts,nope");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/400 BAD_REQUEST[\s\S]*body\.fields\.1/);

    const unknown = await fails("apis", "get", "api_Ghost0000000000000000");
    expect(unknown.stderr).toMatch(/404 NOT_FOUND/);

    const draft = JSON.parse((await hdrcap("apis", "create", "drafty", "--capture", captureId, "--fields", "ts", "--json")).stdout);
    const conflict = await fails("apis", "retire", draft.id);
    expect(conflict.stderr).toMatch(/409 CONFLICT: cannot retire/);

    const half = await fails("apis", "keys", "create", draft.id, "x", "--per-second", "5");
    expect(half.stderr).toMatch(/--per-second and --burst go together/);
  });
});
