/**
 * Builds the real app against a fresh database on the shared test Postgres and a
 * real NATS connection, with a bootstrapped operator tenant and helpers to call it.
 */
import { freshDatabase, type TestDatabase } from "@hdrcap/testkit";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { inject } from "vitest";
import { createApp, type App } from "../src/app.ts";
import { createMetrics } from "../src/metrics.ts";
import { bootstrapFirstTenant } from "../src/services/tenants.ts";

export interface Harness {
  app: App;
  db: TestDatabase;
  nats: NatsConnection;
  operatorKey: string;
  call(method: string, path: string, opts?: { key?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Headers }>;
  close(): Promise<void>;
}

export async function createHarness(): Promise<Harness> {
  const db = await freshDatabase(inject("pgAdminUrl"));
  const nats = await connect({ servers: inject("natsUrl") });
  const app = createApp({ db: db.db, nats, logger: pino({ level: "silent" }), metrics: createMetrics({ defaults: false }) });
  const boot = await bootstrapFirstTenant(db.db, { slug: "default", name: "Default" });
  if (!boot) throw new Error("bootstrap did nothing on a fresh database");
  return {
    app,
    db,
    nats,
    operatorKey: boot.key,
    async call(method, path, opts = {}) {
      const headers: Record<string, string> = { ...(opts.headers ?? {}) };
      if (opts.key) headers.authorization = `Bearer ${opts.key}`;
      let body: string | undefined = opts.rawBody;
      if (opts.body !== undefined) {
        body = JSON.stringify(opts.body);
        headers["content-type"] ??= "application/json";
      }
      const res = await app.request(path, { method, headers, body });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // not JSON: keep the text
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
    async close() {
      await nats.close();
      await db.drop();
    },
  };
}

/** Create a tenant through the API as the operator; returns its id and admin key. */
export async function createTenant(h: Harness, slug: string): Promise<{ id: string; key: string }> {
  const res = await h.call("POST", "/v1/tenants", { key: h.operatorKey, body: { slug, name: slug } });
  if (res.status !== 201) throw new Error(`tenant create failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { id: res.body.tenant.id, key: res.body.key };
}

export async function createKey(h: Harness, adminKey: string, scopes: string[], extra: Record<string, unknown> = {}): Promise<{ id: string; key: string }> {
  const res = await h.call("POST", "/v1/api-keys", { key: adminKey, body: { name: `k-${scopes.join("-")}`, scopes, ...extra } });
  if (res.status !== 201) throw new Error(`key create failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { id: res.body.apiKey.id, key: res.body.key };
}
