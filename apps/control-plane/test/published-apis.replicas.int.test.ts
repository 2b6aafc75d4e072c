import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { KyselyPlugin, RootOperationNode } from "kysely";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { createApp, type App } from "../src/app.ts";
import { createMetrics } from "../src/metrics.ts";
import { createHarness, type Harness } from "./harness.ts";

/** Counts the queries that read the consumer-key table (the Postgres round trip the cache saves). */
class ConsumerLookups implements KyselyPlugin {
  count = 0;
  transformQuery(args: { node: RootOperationNode }): RootOperationNode {
    if (args.node.kind === "SelectQueryNode" && JSON.stringify(args.node.from).includes('"published_api_consumers"')) this.count++;
    return args.node;
  }
  async transformResult<T>(args: { result: T }): Promise<T> {
    return args.result;
  }
}

// Two replicas of the control plane (two apps, each with its own NATS connection) over one
// Postgres: a consumer key verified once is served from memory, and a revocation on one
// replica is honoured by the other within moments.
describe("published API consumer keys across replicas", () => {
  let h: Harness;
  let nats2: NatsConnection;
  let replica2: App;
  const lookups = new ConsumerLookups();
  let apiId: string;
  let consumerId: string;
  let consumerKey: string;

  const serve = (app: App, key: string) => app.request("/apis/default/replicated?limit=1", { headers: { authorization: `Bearer ${key}` } });

  beforeAll(async () => {
    h = await createHarness();
    nats2 = await connect({ servers: inject("natsUrl") });
    replica2 = createApp({ db: h.db.db.withPlugin(lookups), nats: nats2, logger: pino({ level: "silent" }), metrics: createMetrics({ defaults: false }) });
    const capture = await h.call("POST", "/v1/captures", { key: h.operatorKey, body: { name: "replicated", filter: { ports: [8080] } } });
    const api = await h.call("POST", "/v1/apis", { key: h.operatorKey, body: { name: "replicated", captureId: capture.body.id, fields: ["ts", "path"] } });
    apiId = api.body.id;
    await h.call("POST", `/v1/apis/${apiId}/publish`, { key: h.operatorKey });
    const consumer = await h.call("POST", `/v1/apis/${apiId}/consumers`, { key: h.operatorKey, body: { name: "partner" } });
    consumerId = consumer.body.consumer.id;
    consumerKey = consumer.body.key;
  });
  afterAll(async () => {
    await nats2?.close();
    await h?.close();
  });

  it("verifies a consumer key against Postgres once per replica, then from memory", async () => {
    const before = lookups.count;
    for (let i = 0; i < 25; i++) expect((await serve(replica2, consumerKey)).status).toBe(200);
    expect(lookups.count - before).toBe(1);
    expect((await serve(h.app, consumerKey)).status).toBe(200); // the other replica's cache is warm too
  });

  it("refuses a key revoked on one replica on the other within a second, though it was cached there", async () => {
    expect((await serve(replica2, consumerKey)).status).toBe(200);
    const revoked = await h.call("DELETE", `/v1/apis/${apiId}/consumers/${consumerId}`, { key: h.operatorKey });
    expect(revoked.status).toBe(200);
    expect((await serve(h.app, consumerKey)).status).toBe(401); // the revoking replica: at once
    const started = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - started < 5_000) {
      status = (await serve(replica2, consumerKey)).status;
      if (status === 200) await new Promise((r) => setTimeout(r, 10));
    }
    expect(status).toBe(401);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("keeps refusing the revoked key without asking Postgres each time", async () => {
    const before = lookups.count;
    for (let i = 0; i < 10; i++) expect((await serve(replica2, consumerKey)).status).toBe(401);
    expect(lookups.count - before).toBeLessThanOrEqual(1);
  });
});
