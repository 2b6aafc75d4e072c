import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { RateLimiter } from "../src/services/rate-limiter.ts";

/** An in-memory stand-in for NATS core publish/subscribe: delivers every message to every subscriber at once. */
function fakeBus() {
  const subscribers: ((msg: { json<T>(): T; string(): string }) => void)[] = [];
  const connection = () =>
    ({
      subscribe: (_subject: string, opts: { callback: (err: null, msg: { json<T>(): T; string(): string }) => void }) => {
        subscribers.push((msg) => opts.callback(null, msg));
        return { unsubscribe() {} };
      },
      publish: (_subject: string, data: string) => {
        for (const s of subscribers) s({ json: <T>() => JSON.parse(data) as T, string: () => data });
      },
      isClosed: () => false,
    }) as never;
  return { connection, deliverRaw: (data: string) => subscribers.forEach((s) => s({ json: <T>() => JSON.parse(data) as T, string: () => data })) };
}

const LIMIT = { perSecond: 5, burst: 10 };
const granted = (l: RateLimiter, n: number) => Array.from({ length: n }, () => l.take("key_a", LIMIT)).filter((d) => d.allowed).length;

describe("RateLimiter shared across replicas", () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date("2026-11-25T12:00:00Z"));
  });
  afterEach(() => vi.useRealTimers());

  it("holds a key to its limit on one replica: the burst, then the refill rate", () => {
    const bus = fakeBus();
    const [a] = [new RateLimiter(LIMIT, bus.connection())];
    expect(granted(a!, 50)).toBe(10);
    vi.advanceTimersByTime(1_000);
    expect(granted(a!, 50)).toBe(5);
  });

  it("lets a burst that reaches two replicas within one share interval take two bursts, then refuses until the debt is repaid", () => {
    const bus = fakeBus();
    const a = new RateLimiter(LIMIT, bus.connection());
    const b = new RateLimiter(LIMIT, bus.connection());
    expect(granted(a, 50) + granted(b, 50)).toBe(20);
    vi.advanceTimersByTime(100); // both share: each takes the other's 10 out of its own bucket (0.5 refilled − 10)
    vi.advanceTimersByTime(1_900); // refill 9.5 tokens: still in debt
    expect(granted(a, 5) + granted(b, 5)).toBe(0);
    vi.advanceTimersByTime(300); // 11 tokens refilled: one token each
    expect(granted(a, 5)).toBe(1);
    expect(granted(b, 5)).toBe(1);
  });

  it("keeps the pair near the limit over time when requests alternate between them", () => {
    const bus = fakeBus();
    const replicas = [new RateLimiter(LIMIT, bus.connection()), new RateLimiter(LIMIT, bus.connection())];
    let total = 0;
    // 200 requests/s alternating, for 20 s.
    for (let i = 0; i < 4_000; i++) {
      if (replicas[i % 2]!.take("key_a", LIMIT).allowed) total++;
      vi.advanceTimersByTime(5);
    }
    // One replica alone: burst + rate·t = 110. Unshared, the pair would grant 220.
    expect(total).toBeGreaterThanOrEqual(105);
    expect(total).toBeLessThanOrEqual(10 * 2 + 5 * 20 + 2);
  });

  it("refuses on a replica that granted nothing, once the other has spent the bucket, with a Retry-After", () => {
    const bus = fakeBus();
    const a = new RateLimiter(LIMIT, bus.connection());
    const b = new RateLimiter(LIMIT, bus.connection());
    expect(granted(a, 10)).toBe(10);
    vi.advanceTimersByTime(100);
    const d = b.take("key_a", LIMIT);
    expect(d).toEqual({ allowed: false, retryAfterSeconds: 1 });
  });

  it("ignores its own messages and malformed ones", () => {
    const bus = fakeBus();
    const a = new RateLimiter(LIMIT, bus.connection());
    expect(granted(a, 4)).toBe(4);
    vi.advanceTimersByTime(100); // its own share comes back to it: no double count
    for (const junk of ['{"v":1,"from":"x","keys":[["key_a",-5,5,10],["key_a","NaN",5,10],[1,2,3,4],"x"]}', '{"v":2}', "null", '{"v":1,"from":"y","keys":{}}']) bus.deliverRaw(junk);
    expect(granted(a, 50)).toBe(6);
  });

  it("works alone without NATS (per replica, as before sharing)", () => {
    const a = new RateLimiter(LIMIT);
    expect(granted(a, 50)).toBe(10);
  });
});
