/**
 * Verified API keys cached in memory so a request does not cost a Postgres round
 * trip. Revocation must still take effect at once on every replica: the replica
 * that revokes a key publishes its hash on NATS and every replica evicts it; the
 * short TTL bounds staleness if a notice is ever missed (NATS down), and expiry is
 * re-checked on every hit.
 */
import { NATS_SUBJECTS } from "@hdrcap/api";
import type { Db } from "@hdrcap/db";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { hashApiKey, looksLikeApiKey } from "./ids.ts";
import { verifyApiKey, type KeyVerification } from "./api-keys.ts";

export class ApiKeyCache {
  private readonly entries = new Map<string, { result: Extract<KeyVerification, { ok: true }>; until: number }>();
  private subscription: Subscription | undefined;

  constructor(
    private readonly db: Db,
    private readonly nats: NatsConnection | undefined,
    private readonly ttlMs = 30_000,
    private readonly maxEntries = 100_000,
  ) {
    this.subscription = nats?.subscribe(NATS_SUBJECTS.keyRevoked(), {
      callback: (_err, msg) => {
        this.entries.delete(msg.string());
      },
    });
  }

  async verify(presented: string | undefined, now = new Date()): Promise<KeyVerification> {
    if (!presented || !looksLikeApiKey(presented)) return verifyApiKey(this.db, presented, now);
    const hash = hashApiKey(presented);
    const hit = this.entries.get(hash);
    if (hit && hit.until > now.getTime()) {
      if (hit.result.key.expires_at !== null && hit.result.key.expires_at <= now) {
        this.entries.delete(hash);
        return { ok: false, reason: "expired" };
      }
      return hit.result;
    }
    const result = await verifyApiKey(this.db, presented, now);
    if (result.ok) {
      if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
      this.entries.set(hash, { result, until: now.getTime() + this.ttlMs });
    } else {
      this.entries.delete(hash);
    }
    return result;
  }

  /** Forget a key here and tell every replica to forget it too. */
  async revoked(keyHash: string): Promise<void> {
    this.entries.delete(keyHash);
    if (this.nats && !this.nats.isClosed()) {
      this.nats.publish(NATS_SUBJECTS.keyRevoked(), keyHash);
      await this.nats.flush().catch(() => {});
    }
  }

  close(): void {
    this.subscription?.unsubscribe();
  }
}
