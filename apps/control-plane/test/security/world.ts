/**
 * The world the *.security suites attack: the real app (with an account key, so agents
 * can enroll) on a fresh database, the operator, and two tenants A and B that each own
 * one object of every kind the API serves (keys, enrollment tokens, agents, captures,
 * records, audit entries). B's objects carry MARKER so a leak is visible in any body.
 */
import type { HttpRecord } from "@hdrcap/api";
import { insertRecordRows } from "@hdrcap/db";
import { createNatsAuthority } from "@hdrcap/local-services";
import { freshDatabase, type TestDatabase } from "@hdrcap/testkit";
import { createUser } from "@nats-io/nkeys";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { sql } from "kysely";
import { pino } from "pino";
import { inject } from "vitest";
import { createApp, type App } from "../../src/app.ts";
import { recordRow } from "../../src/messaging/ingester.ts";
import { createMetrics } from "../../src/metrics.ts";
import { bootstrapFirstTenant } from "../../src/services/tenants.ts";

export const MARKER = "zzleakmarkerzz";

export interface Reply {
  status: number;
  headers: Headers;
  /** Parsed JSON when the body is JSON, its text otherwise ("" for event streams, which are cancelled unread). */
  body: any;
  text: string;
}

export interface CallOptions {
  key?: string;
  body?: unknown;
  rawBody?: string | Uint8Array;
  headers?: Record<string, string>;
}

/** The objects one tenant owns, by id prefix ("cap" → a capture id), and what else to look for. */
export interface TenantObjects {
  tenantId: string;
  slug: string;
  adminKey: string;
  adminKeyId: string;
  ids: Record<string, string>;
  /** Values of path parameters that are not ids (a served API's tenant slug and name). */
  named: Record<string, string>;
  enrollmentToken: string;
  /** A consumer key of the tenant's published API. */
  consumerKey: string;
  /** Strings that only this tenant's data contains (ids, marker). */
  fingerprints: string[];
}

export interface World {
  app: App;
  db: TestDatabase;
  nats: NatsConnection;
  operatorKey: string;
  operatorTenantId: string;
  a: TenantObjects;
  b: TenantObjects;
  call(method: string, path: string, opts?: CallOptions): Promise<Reply>;
  close(): Promise<void>;
}

export const hostFacts = (machineId: string, hostname = `host-${machineId}`) => ({
  hostname,
  machineId,
  kernelRelease: "6.18.0",
  arch: "x64",
  btf: true,
  hooks: { tracepoints: true },
  agentVersion: "test",
});

export const natsUserPublicKey = (): string => createUser().getPublicKey();

function record(i: number, tag: string): HttpRecord {
  return {
    ts: new Date(Date.now() - 60_000 + i * 10).toISOString(),
    connectionId: `conn-${tag}-${i}`,
    kind: i % 2 === 0 ? "request" : "response",
    role: "server",
    src: { ip: "10.9.0.1", port: 40000 + i },
    dst: { ip: "10.9.0.2", port: 8080 },
    pid: 7,
    comm: "svc",
    method: i % 2 === 0 ? "GET" : null,
    path: i % 2 === 0 ? `/${tag}/${i}` : null,
    version: "HTTP/1.1",
    status: i % 2 === 0 ? null : 200,
    reason: i % 2 === 0 ? null : "OK",
    latencyMs: i % 2 === 0 ? null : 1,
    headers: [
      { name: "Host", value: `${tag}.test` },
      { name: "X-Owner", value: tag },
    ],
    headerBytes: 64,
    redacted: [],
  };
}

export async function createWorld(): Promise<World> {
  const db = await freshDatabase(inject("pgAdminUrl"));
  const nats = await connect({ servers: inject("natsUrl") });
  const authority = await createNatsAuthority();
  const app = createApp({
    db: db.db,
    nats,
    logger: pino({ level: "silent" }),
    metrics: createMetrics({ defaults: false }),
    natsAccountSeed: authority.account.seed,
    agentNatsServers: ["nats://127.0.0.1:4222"],
    // The suites send thousands of requests with one key; rate limits have their own tests.
    defaultRateLimit: { perSecond: 1_000_000, burst: 1_000_000 },
  });
  const boot = await bootstrapFirstTenant(db.db, { slug: "default", name: "Default" });
  if (!boot) throw new Error("bootstrap did nothing on a fresh database");

  async function call(method: string, path: string, opts: CallOptions = {}): Promise<Reply> {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (opts.key) headers.authorization = `Bearer ${opts.key}`;
    let body: string | Uint8Array | undefined = opts.rawBody;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers["content-type"] ??= "application/json";
    }
    const res = await app.request(path, { method, headers, body });
    if (res.headers.get("content-type")?.startsWith("text/event-stream")) {
      await res.body?.cancel(); // a live tail never ends; the status is what we want
      return { status: res.status, headers: res.headers, body: "", text: "" };
    }
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.status, headers: res.headers, body: parsed, text };
  }

  const must = async (what: string, status: number, p: Promise<Reply>) => {
    const res = await p;
    if (res.status !== status) throw new Error(`${what}: ${res.status} ${res.text.slice(0, 500)}`);
    return res.body;
  };

  async function populateTenant(slug: string, tag: string): Promise<TenantObjects> {
    const created = await must(`create tenant ${slug}`, 201, call("POST", "/v1/tenants", { key: boot!.key, body: { slug, name: `${slug} ${tag}` } }));
    const adminKey: string = created.key;
    const key = await must("create key", 201, call("POST", "/v1/api-keys", { key: adminKey, body: { name: `reader ${tag}`, scopes: ["captures:read"] } }));
    const spare = await must("create token", 201, call("POST", "/v1/enrollment-tokens", { key: adminKey, body: { labels: { owner: tag }, maxUses: 1000 } }));
    const enrolled = await must(
      "enroll agent",
      200,
      call("POST", "/v1/enroll", { key: spare.token, body: { facts: hostFacts(`machine-${tag}`, `host-${tag}`), natsPublicKey: natsUserPublicKey() } }),
    );
    const capture = await must("create capture", 201, call("POST", "/v1/captures", { key: adminKey, body: { name: `capture ${tag}`, agents: { ids: [enrolled.agentId] }, filter: { ports: [8080] } } }));
    await insertRecordRows(
      db.db,
      Array.from({ length: 20 }, (_, i) => recordRow(record(i, tag), { tenantId: created.tenant.id, captureId: capture.id, agentId: enrolled.agentId })),
    );
    const apiName = `api-${tag}`;
    const api = await must("create published API", 201, call("POST", "/v1/apis", { key: adminKey, body: { name: apiName, captureId: capture.id, fields: ["id", "ts", "path", "headers"], description: `served ${tag}` } }));
    await must("publish API", 200, call("POST", `/v1/apis/${api.id}/publish`, { key: adminKey }));
    const consumer = await must("create consumer", 201, call("POST", `/v1/apis/${api.id}/consumers`, { key: adminKey, body: { name: `consumer ${tag}` } }));
    // A finished agent upgrade rollout, stored directly (creating one through the API needs a built agent bundle).
    const upgradeId = `upg_${tag.replace(/[^A-Za-z0-9]/g, "").slice(0, 12)}Rollout01`;
    await db.db
      .insertInto("agent_upgrades")
      .values({ id: upgradeId, tenant_id: created.tenant.id, target_version: `0.0.0-${tag}`, bundle_file: "agent-0.0.0-linux-x64.tar.gz", bundle_sha256: "0".repeat(64), bundle_size: 1, selector: { ids: [enrolled.agentId] }, batch_size: 1, timeout_seconds: 60, batch_count: 0, status: "completed", status_reason: null, current_batch: null, batch_started_at: null, created_by_key_id: created.apiKey.id, finished_at: new Date() })
      .execute();
    return {
      tenantId: created.tenant.id,
      slug,
      adminKey,
      adminKeyId: created.apiKey.id,
      ids: { key: key.apiKey.id, etk: spare.enrollmentToken.id, agt: enrolled.agentId, cap: capture.id, api: api.id, apc: consumer.consumer.id, upg: upgradeId },
      named: { tenant: slug, name: apiName },
      enrollmentToken: spare.token,
      consumerKey: consumer.key,
      fingerprints: [
        tag,
        created.tenant.id,
        created.apiKey.id,
        key.apiKey.id,
        spare.enrollmentToken.id,
        enrolled.agentId,
        capture.id,
        api.id,
        consumer.consumer.id,
        upgradeId,
        spare.enrollmentToken.prefix,
        key.apiKey.prefix,
        consumer.consumer.prefix,
      ],
    };
  }

  const a = await populateTenant("tenant-a", "alphaowned");
  const b = await populateTenant("tenant-b", MARKER);
  return {
    app,
    db,
    nats,
    operatorKey: boot.key,
    operatorTenantId: boot.tenant.id,
    a,
    b,
    call,
    async close() {
      await nats.close();
      await db.drop();
    },
  };
}

/**
 * Every row of every table that has a tenant_id column and belongs to the tenant, so
 * a test can prove an attack changed nothing. Tables added later are included.
 */
export async function tenantSnapshot(w: World, tenantId: string): Promise<Record<string, unknown[]>> {
  const tables = await sql<{ table_name: string }>`
    select c.table_name from information_schema.columns c
    join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
    where c.column_name = 'tenant_id' and c.table_schema = current_schema() and t.table_type = 'BASE TABLE'
    order by c.table_name`.execute(w.db.db);
  const out: Record<string, unknown[]> = {};
  for (const { table_name } of tables.rows) {
    const rows = await sql<Record<string, unknown>>`select * from ${sql.table(table_name)} where tenant_id = ${tenantId}`.execute(w.db.db);
    out[table_name] = rows.rows.map((r) => JSON.parse(JSON.stringify(r))).sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)));
  }
  return out;
}

/** A tenant's snapshot once it has settled: the background last-used writes of its setup calls have landed. */
export async function settledTenantSnapshot(w: World, tenantId: string): Promise<string> {
  let prev = JSON.stringify(await tenantSnapshot(w, tenantId));
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    const next = JSON.stringify(await tenantSnapshot(w, tenantId));
    if (next === prev) return next;
    prev = next;
  }
}
