/**
 * Verified keys cached in memory so a request does not cost a Postgres round trip:
 * tenant API keys (ApiKeyCache) and published APIs' consumer keys (ConsumerKeyCache).
 * Revocation must still take effect at once on every replica: the replica that
 * revokes a key publishes its hash on NATS and every replica evicts it from both
 * caches (hashes of the two kinds never collide: the keys differ in prefix); the
 * short TTL bounds staleness if a notice is ever missed (NATS down).
 */
import { NATS_SUBJECTS } from "@hdrcap/api";
import type { Db, PublishedApiConsumerRow } from "@hdrcap/db";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { hashApiKey, looksLikeApiKey } from "./ids.ts";
import { verifyApiKey, type KeyVerification } from "./api-keys.ts";

/** Entries by key hash with a TTL and a size bound, evicted when any replica announces a revocation. */
class RevocableEntries<V> {
  private readonly entries = new Map<string, { value: V; until: number }>();
  private readonly subscription: Subscription | undefined;

  constructor(
    nats: NatsConnection | undefined,
    private readonly ttlMs: number,
    private readonly maxEntries: number,
  ) {
    this.subscription = nats?.subscribe(NATS_SUBJECTS.keyRevoked(), {
      callback: (_err, msg) => {
        this.entries.delete(msg.string());
      },
    });
  }

  get(hash: string, now: number): V | undefined {
    const hit = this.entries.get(hash);
    return hit && hit.until > now ? hit.value : undefined;
  }

  set(hash: string, value: V, now: number): void {
    // A Map iterates in insertion order: dropping the first entry drops the oldest.
    if (this.entries.size >= this.maxEntries && !this.entries.has(hash)) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(hash, { value, until: now + this.ttlMs });
  }

  delete(hash: string): void {
    this.entries.delete(hash);
  }

  close(): void {
    this.subscription?.unsubscribe();
  }
}

/** Tell every replica (this one included, through its subscription) that the key with this hash is revoked. */
async function announceRevocation(nats: NatsConnection | undefined, keyHash: string): Promise<void> {
  if (nats && !nats.isClosed()) {
    nats.publish(NATS_SUBJECTS.keyRevoked(), keyHash);
    await nats.flush().catch(() => {});
  }
}

export class ApiKeyCache {
  private readonly entries: RevocableEntries<Extract<KeyVerification, { ok: true }>>;

  constructor(
    private readonly db: Db,
    private readonly nats: NatsConnection | undefined,
    ttlMs = 30_000,
    maxEntries = 100_000,
  ) {
    this.entries = new RevocableEntries(nats, ttlMs, maxEntries);
  }

  async verify(presented: string | undefined, now = new Date()): Promise<KeyVerification> {
    if (!presented || !looksLikeApiKey(presented)) return verifyApiKey(this.db, presented, now);
    const hash = hashApiKey(presented);
    const hit = this.entries.get(hash, now.getTime());
    if (hit) {
      // Expiry is re-checked on every hit: it needs no notice.
      if (hit.key.expires_at !== null && hit.key.expires_at <= now) {
        this.entries.delete(hash);
        return { ok: false, reason: "expired" };
      }
      return hit;
    }
    const result = await verifyApiKey(this.db, presented, now);
    if (result.ok) this.entries.set(hash, result, now.getTime());
    else this.entries.delete(hash);
    return result;
  }

  /** Forget a key here and tell every replica to forget it too. */
  async revoked(keyHash: string): Promise<void> {
    this.entries.delete(keyHash);
    await announceRevocation(this.nats, keyHash);
  }

  close(): void {
    this.entries.close();
  }
}

/**
 * Consumer keys (hcc_…) of published APIs by hash: the consumer row, whichever API it
 * belongs to (the caller checks that it is the API asked for). A revoked row is cached
 * too — revocation is final — so a revoked key cannot make every request reach Postgres;
 * unknown keys are not cached.
 */
export class ConsumerKeyCache {
  private readonly entries: RevocableEntries<PublishedApiConsumerRow>;

  constructor(
    private readonly db: Db,
    private readonly nats: NatsConnection | undefined,
    ttlMs = 30_000,
    maxEntries = 100_000,
  ) {
    this.entries = new RevocableEntries(nats, ttlMs, maxEntries);
  }

  /** The consumer whose key hashes to `hash`, from memory when it was seen within the TTL. */
  async byHash(hash: string, now = Date.now()): Promise<PublishedApiConsumerRow | undefined> {
    const hit = this.entries.get(hash, now);
    if (hit) return hit;
    const row = await this.db.selectFrom("published_api_consumers").selectAll().where("hash", "=", hash).executeTakeFirst();
    if (row) this.entries.set(hash, row, now);
    return row;
  }

  /** Forget a consumer key here and tell every replica to forget it too. */
  async revoked(keyHash: string): Promise<void> {
    this.entries.delete(keyHash);
    await announceRevocation(this.nats, keyHash);
  }

  close(): void {
    this.entries.close();
  }
}
