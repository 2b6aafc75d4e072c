/**
 * Per-key token buckets, held in memory by each replica and kept in step across
 * replicas through NATS: each replica counts the tokens it hands out per key and,
 * at most `shareIntervalMs` after the first one, publishes those counts; every other
 * replica takes them out of its own bucket for that key (down to a debt of one burst
 * per live peer, repaid by the refill before it grants again). A request never waits
 * on the network: deciding stays a Map lookup and a few arithmetic operations.
 *
 * What this guarantees, for a limit of r/s with burst b across N replicas that share
 * within T = shareIntervalMs (+ NATS latency):
 *  - one replica alone (or all requests on one replica) is held exactly to the limit;
 *  - consumption elsewhere reaches a replica within T, so in steady state the whole
 *    fleet grants at most r/s plus what the other N−1 replicas grant in one T
 *    ((N−1)·r·T, e.g. 0.5 requests at 5/s, N=2, T=100 ms);
 *  - a burst landing on N replicas within the same T can take up to N·b at once;
 *    the replicas then carry the excess as debt and refuse until the refill has
 *    repaid it, so the average over a few b/r seconds comes back to r/s;
 *  - if NATS is down, each replica enforces the limit alone (N× in aggregate), as
 *    before sharing existed.
 */
import { NATS_SUBJECTS } from "@hdrcap/api";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { randomBase62 } from "./ids.ts";

export interface RateLimit {
  perSecond: number;
  burst: number;
}

export type RateDecision = { allowed: true; remaining: number } | { allowed: false; retryAfterSeconds: number };

/** One replica's consumption message: per key, tokens granted since its last message, and the key's limit. */
interface ConsumptionMessage {
  v: 1;
  from: string;
  keys: [id: string, consumed: number, perSecond: number, burst: number][];
}

/** A peer counts as live (for the debt bound) this long after its last message. */
const PEER_TTL_MS = 10_000;
/** Keys per NATS message (a message stays well under NATS's default 1 MiB payload limit). */
const KEYS_PER_MESSAGE = 5_000;

export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  /** Tokens granted here since the last share, per key, with the limit they were granted under. */
  private readonly consumed = new Map<string, { n: number; limit: RateLimit }>();
  private readonly peers = new Map<string, number>();
  private readonly replicaId = randomBase62(12);
  private readonly subscription: Subscription | undefined;
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly defaults: RateLimit,
    private readonly nats?: NatsConnection,
    private readonly shareIntervalMs = 100,
    private readonly maxKeys = 100_000,
  ) {
    this.subscription = nats?.subscribe(NATS_SUBJECTS.rateConsumed(), {
      callback: (_err, msg) => {
        try {
          this.absorb(msg.json<ConsumptionMessage>());
        } catch {
          // A malformed message costs its sender's consumption, never this replica's decisions.
        }
      },
    });
  }

  take(keyId: string, limit: RateLimit = this.defaults, now = Date.now()): RateDecision {
    const b = this.refilled(keyId, limit, now);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      if (this.subscription) this.count(keyId, limit);
      return { allowed: true, remaining: Math.floor(b.tokens) };
    }
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - b.tokens) / limit.perSecond)) };
  }

  /** The key's bucket, created full, refilled up to now. */
  private refilled(keyId: string, limit: RateLimit, now: number): { tokens: number; at: number } {
    let b = this.buckets.get(keyId);
    if (!b) {
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
      b = { tokens: limit.burst, at: now };
      this.buckets.set(keyId, b);
    }
    b.tokens = Math.min(limit.burst, b.tokens + (Math.max(0, now - b.at) / 1000) * limit.perSecond);
    b.at = Math.max(b.at, now);
    return b;
  }

  private count(keyId: string, limit: RateLimit): void {
    const c = this.consumed.get(keyId);
    if (c) {
      c.n++;
      c.limit = limit;
    } else this.consumed.set(keyId, { n: 1, limit });
    this.flushTimer ??= setTimeout(() => this.share(), this.shareIntervalMs).unref();
  }

  /** Publish what this replica granted since the last share. */
  private share(): void {
    this.flushTimer = undefined;
    if (!this.nats || this.nats.isClosed() || this.consumed.size === 0) {
      this.consumed.clear();
      return;
    }
    const entries = [...this.consumed].map(([id, c]): ConsumptionMessage["keys"][number] => [id, c.n, c.limit.perSecond, c.limit.burst]);
    this.consumed.clear();
    for (let i = 0; i < entries.length; i += KEYS_PER_MESSAGE) {
      const message: ConsumptionMessage = { v: 1, from: this.replicaId, keys: entries.slice(i, i + KEYS_PER_MESSAGE) };
      try {
        this.nats.publish(NATS_SUBJECTS.rateConsumed(), JSON.stringify(message));
      } catch {
        return; // connection closing: the others fall back to their own buckets
      }
    }
  }

  /** Take another replica's consumption out of this replica's buckets. */
  private absorb(m: ConsumptionMessage, now = Date.now()): void {
    if (m?.v !== 1 || typeof m.from !== "string" || m.from === this.replicaId || !Array.isArray(m.keys)) return;
    this.peers.set(m.from, now);
    for (const [from, seen] of this.peers) if (now - seen > PEER_TTL_MS) this.peers.delete(from);
    for (const entry of m.keys) {
      if (!Array.isArray(entry)) continue;
      const [id, n, perSecond, burst] = entry;
      if (typeof id !== "string" || !(n > 0) || !(perSecond > 0) || !(burst >= 1)) continue;
      const limit = { perSecond, burst };
      const b = this.refilled(id, limit, now);
      // Debt is bounded by one burst per live peer: what they can have granted before hearing from us.
      b.tokens = Math.max(-burst * this.peers.size, b.tokens - n);
    }
  }

  close(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.share();
    this.subscription?.unsubscribe();
  }
}
