/**
 * API keys: creation (secret shown once, SHA-256 stored), listing, revocation and
 * verification of presented keys. Every operation is scoped to the caller's tenant.
 */
import { ApiError, requireScope, type AuthContext, type CreateApiKeyInput, type Scope, type Services } from "@hdrcap/api";
import { findApiKeyByHash, insertApiKey, listApiKeys, revokeApiKey, touchApiKey, type ApiKeyRow, type Db, type Tenant } from "@hdrcap/db";
import { audit } from "./audit.ts";
import { decodeCursor, pageFrom } from "./cursor.ts";
import { hashApiKey, looksLikeApiKey, newApiKeySecret, newId } from "./ids.ts";
import { apiKeyView } from "./views.ts";

export async function mintApiKey(
  db: Db,
  tenantId: string,
  input: { name: string; scopes: readonly Scope[]; expiresAt?: Date | null; createdByKeyId?: string | null; rateLimit?: { perSecond: number; burst: number } | null },
): Promise<{ row: ApiKeyRow; key: string }> {
  const secret = newApiKeySecret();
  const row = await insertApiKey(db, {
    id: newId("key"),
    tenant_id: tenantId,
    name: input.name,
    prefix: secret.prefix,
    hash: secret.hash,
    scopes: [...new Set(input.scopes)],
    expires_at: input.expiresAt ?? null,
    revoked_at: null,
    last_used_at: null,
    created_by_key_id: input.createdByKeyId ?? null,
    rate_limit_per_second: input.rateLimit?.perSecond ?? null,
    rate_limit_burst: input.rateLimit?.burst ?? null,
    rotated_to_key_id: null,
  });
  return { row, key: secret.key };
}

export type KeyVerification =
  | { ok: true; key: ApiKeyRow; tenant: Tenant }
  | { ok: false; reason: "missing" | "malformed" | "unknown" | "revoked" | "expired" };

/** Check a presented key. Never distinguishes the failure reason to the caller beyond logs. */
export async function verifyApiKey(db: Db, presented: string | undefined, now = new Date()): Promise<KeyVerification> {
  if (!presented) return { ok: false, reason: "missing" };
  if (!looksLikeApiKey(presented)) return { ok: false, reason: "malformed" };
  const found = await findApiKeyByHash(db, hashApiKey(presented));
  if (!found) return { ok: false, reason: "unknown" };
  if (found.key.revoked_at !== null && found.key.revoked_at <= now) return { ok: false, reason: "revoked" };
  if (found.key.expires_at !== null && found.key.expires_at <= now) return { ok: false, reason: "expired" };
  return { ok: true, ...found };
}

/**
 * Records last_used_at without a write per request: at most one update per key
 * per interval per process.
 */
export class LastUsedTracker {
  private readonly lastWrite = new Map<string, number>();
  constructor(
    private readonly db: Db,
    private readonly intervalMs = 60_000,
    private readonly onError: (err: unknown) => void = () => {},
  ) {}
  touch(keyId: string, now = Date.now()): void {
    const prev = this.lastWrite.get(keyId);
    if (prev !== undefined && now - prev < this.intervalMs) return;
    this.lastWrite.set(keyId, now);
    touchApiKey(this.db, keyId, new Date(now)).catch(this.onError);
  }
}

export function createApiKeysService(db: Db, onRevoked: (keyHash: string) => Promise<void> = async () => {}): Services["apiKeys"] {
  return {
    async create(auth: AuthContext, input: CreateApiKeyInput) {
      requireScope(auth.key.scopes, "admin");
      if (input.scopes.includes("operator") && !auth.key.scopes.includes("operator")) {
        throw new ApiError("FORBIDDEN", 'only an operator key may create keys with the "operator" scope');
      }
      const expiresAt = input.expiresAt ? new Date(input.expiresAt) : null;
      if (expiresAt && expiresAt.getTime() <= Date.now()) {
        throw new ApiError("BAD_REQUEST", "invalid body.expiresAt: must be in the future", [{ path: "body.expiresAt", message: "must be in the future" }]);
      }
      const { row, key } = await mintApiKey(db, auth.tenant.id, { name: input.name, scopes: input.scopes, expiresAt, createdByKeyId: auth.key.id, rateLimit: input.rateLimit });
      await audit(db, auth, "api_key.create", { type: "api_key", id: row.id }, { name: row.name, scopes: row.scopes });
      return { apiKey: apiKeyView(row), key };
    },
    async list(auth, page) {
      requireScope(auth.key.scopes, "admin");
      const rows = await listApiKeys(db, auth.tenant.id, { limit: page.limit + 1, after: decodeCursor(page.cursor) });
      return pageFrom(rows, page.limit, (r) => r.id, apiKeyView);
    },
    /** A new key with the same name, scopes and limits; the old one keeps working for the grace period. */
    async rotate(auth, id, input) {
      requireScope(auth.key.scopes, "admin");
      const graceEnds = new Date(Date.now() + input.gracePeriodSeconds * 1000);
      const result = await db.transaction().execute(async (tx) => {
        const old = await tx.selectFrom("api_keys").selectAll().where("tenant_id", "=", auth.tenant.id).where("id", "=", id).forUpdate().executeTakeFirst();
        if (!old) throw new ApiError("NOT_FOUND", `no API key ${id}`);
        if (old.revoked_at || (old.expires_at && old.expires_at <= new Date())) throw new ApiError("CONFLICT", `API key ${id} is revoked or expired; create a new one instead`);
        if (old.rotated_to_key_id) throw new ApiError("CONFLICT", `API key ${id} was already rotated to ${old.rotated_to_key_id}`);
        const minted = await mintApiKey(tx, auth.tenant.id, {
          name: old.name,
          scopes: old.scopes as Scope[],
          expiresAt: old.expires_at,
          createdByKeyId: auth.key.id,
          rateLimit: old.rate_limit_per_second !== null && old.rate_limit_burst !== null ? { perSecond: old.rate_limit_per_second, burst: old.rate_limit_burst } : null,
        });
        const expires = old.expires_at && old.expires_at < graceEnds ? old.expires_at : graceEnds;
        await tx.updateTable("api_keys").set({ expires_at: expires, rotated_to_key_id: minted.row.id }).where("id", "=", id).execute();
        await audit(tx, auth, "api_key.rotate", { type: "api_key", id }, { newKeyId: minted.row.id, oldKeyExpiresAt: expires.toISOString() });
        return { ...minted, oldHash: old.hash };
      });
      await onRevoked(result.oldHash); // replicas re-read the old key (now with its grace expiry)
      return { apiKey: apiKeyView(result.row), key: result.key };
    },
    async revoke(auth, id) {
      requireScope(auth.key.scopes, "admin");
      const row = await revokeApiKey(db, auth.tenant.id, id);
      if (!row) throw new ApiError("NOT_FOUND", `no API key ${id}`);
      await onRevoked(row.hash);
      await audit(db, auth, "api_key.revoke", { type: "api_key", id });
      return apiKeyView(row);
    },
  };
}
