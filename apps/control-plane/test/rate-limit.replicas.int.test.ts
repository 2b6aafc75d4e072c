import { connect, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { createApp, type App } from "../src/app.ts";
import { createMetrics } from "../src/metrics.ts";
import { createHarness, createKey, type Harness } from "./harness.ts";

// Two replicas (two apps, each with its own NATS connection) over one Postgres: a key's
// limit holds for the pair, within the bound rate-limiter.ts documents, not twice over.
describe("rate limits across replicas", () => {
  const LIMIT = { perSecond: 5, burst: 10 };
  let h: Harness;
  let nats2: NatsConnection;
  let replicas: App[];

  beforeAll(async () => {
    h = await createHarness();
    nats2 = await connect({ servers: inject("natsUrl") });
    replicas = [h.app, createApp({ db: h.db.db, nats: nats2, logger: pino({ level: "silent" }), metrics: createMetrics({ defaults: false }) })];
  });
  afterAll(async () => {
    await nats2?.close();
    await h?.close();
  });

  /** Alternates requests between the replicas for `ms`; returns how many each granted, and the 429s. */
  async function hammer(key: string, ms: number, via: (n: number) => App = (n) => replicas[n % 2]!) {
    const granted = [0, 0];
    let refused = 0;
    const end = Date.now() + ms;
    for (let n = 0; Date.now() < end; n++) {
      const res = await via(n).request("/v1/whoami", { headers: { authorization: `Bearer ${key}` } });
      await res.arrayBuffer();
      if (res.status === 200) granted[n % 2]!++;
      else if (res.status === 429) refused++;
      else throw new Error(`unexpected ${res.status}`);
      // Pace a little, so the run spans many share intervals rather than one burst.
      if (n % 10 === 9) await new Promise((r) => setTimeout(r, 5));
    }
    return { granted, total: granted[0]! + granted[1]!, refused };
  }

  it("holds one key to about its limit across two replicas, not twice the limit", async () => {
    const { key } = await createKey(h, h.operatorKey, ["captures:read"], { rateLimit: LIMIT });
    const seconds = 3;
    const r = await hammer(key, seconds * 1000);
    // Alone, one replica grants burst + rate·t = 25; unshared, the pair would grant 50.
    // Documented bound: one extra burst for the second replica, plus a little sharing lag.
    expect(r.total).toBeLessThanOrEqual(LIMIT.burst * 2 + LIMIT.perSecond * seconds + 2);
    expect(r.total).toBeGreaterThanOrEqual(LIMIT.burst + LIMIT.perSecond * (seconds - 2));
    expect(Math.min(...r.granted)).toBeGreaterThan(0); // both replicas served the key
    expect(r.refused).toBeGreaterThan(100);
  });

  it("keeps the sustained rate of the pair at the limit once the burst is spent", async () => {
    const { key } = await createKey(h, h.operatorKey, ["captures:read"], { rateLimit: LIMIT });
    await hammer(key, 2_500); // spend the bursts (and the debt they leave)
    const seconds = 4;
    const r = await hammer(key, seconds * 1000);
    // rate·t, plus tokens both replicas granted before hearing of each other (a few; unshared, the pair would grant 2·rate·t = 40).
    expect(r.total).toBeLessThanOrEqual(LIMIT.perSecond * seconds + 6);
    expect(r.total).toBeGreaterThanOrEqual(LIMIT.perSecond * seconds - 8);
  });

  it("answers 429 with Retry-After on a replica that granted nothing, once the other spent the bucket", async () => {
    const slow = { perSecond: 1, burst: 10 };
    const { key } = await createKey(h, h.operatorKey, ["captures:read"], { rateLimit: slow });
    // Spend the whole bucket on replica 0 (until it refuses).
    let granted = 0;
    for (;;) {
      const res = await replicas[0]!.request("/v1/whoami", { headers: { authorization: `Bearer ${key}` } });
      await res.arrayBuffer();
      if (res.status !== 200) break;
      granted++;
    }
    expect(granted).toBe(slow.burst);
    await new Promise((resolve) => setTimeout(resolve, 200)); // one share interval and NATS; the refill adds 0.2 of a token
    const res = await replicas[1]!.request("/v1/whoami", { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(429);
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
  });

  it("applies the same bucket to tRPC calls, with the rate-limit headers", async () => {
    const { key } = await createKey(h, h.operatorKey, ["captures:read"], { rateLimit: LIMIT });
    const statuses: number[] = [];
    let last: Response | undefined;
    for (let i = 0; i < LIMIT.burst + 3; i++) {
      last = await replicas[0]!.request("/trpc/whoami", { headers: { authorization: `Bearer ${key}` } });
      statuses.push(last.status);
      await last.arrayBuffer();
    }
    // The burst, and what the refill adds while the calls run (5/s).
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(LIMIT.burst);
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(LIMIT.burst + 2);
    expect(statuses).toContain(429);
    expect(last!.status).toBe(429);
    expect(last!.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(last!.headers.get("x-ratelimit-limit")).toBe("5");
    expect(last!.headers.get("x-request-id")).toMatch(/^req_/);
  });
});
