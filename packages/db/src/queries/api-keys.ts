import { sql } from "kysely";
import type { Db } from "../client.ts";
import type { ApiKeyRow, NewApiKeyRow, Tenant } from "../tables/index.ts";

export async function insertApiKey(db: Db, key: NewApiKeyRow): Promise<ApiKeyRow> {
  return db.insertInto("api_keys").values(key).returningAll().executeTakeFirstOrThrow();
}

/** The key with this hash and its tenant, whatever its state (caller checks expiry/revocation). */
export async function findApiKeyByHash(db: Db, hash: string): Promise<{ key: ApiKeyRow; tenant: Tenant } | undefined> {
  const row = await db
    .selectFrom("api_keys")
    .innerJoin("tenants", "tenants.id", "api_keys.tenant_id")
    .selectAll("api_keys")
    .select(["tenants.slug as tenant_slug", "tenants.name as tenant_name", "tenants.created_at as tenant_created_at"])
    .where("api_keys.hash", "=", hash)
    .executeTakeFirst();
  if (!row) return undefined;
  const { tenant_slug, tenant_name, tenant_created_at, ...key } = row;
  return { key, tenant: { id: key.tenant_id, slug: tenant_slug, name: tenant_name, created_at: tenant_created_at } };
}

export async function listApiKeys(db: Db, tenantId: string, { limit, after }: { limit: number; after?: string }): Promise<ApiKeyRow[]> {
  let q = db.selectFrom("api_keys").selectAll().where("tenant_id", "=", tenantId).orderBy("id").limit(limit);
  if (after) q = q.where("id", ">", after);
  return q.execute();
}

export async function findApiKey(db: Db, tenantId: string, id: string): Promise<ApiKeyRow | undefined> {
  return db.selectFrom("api_keys").selectAll().where("tenant_id", "=", tenantId).where("id", "=", id).executeTakeFirst();
}

/** Revoke a key of this tenant; returns the row, or undefined when the tenant has no such key. */
export async function revokeApiKey(db: Db, tenantId: string, id: string): Promise<ApiKeyRow | undefined> {
  return db
    .updateTable("api_keys")
    .set({ revoked_at: sql<Date>`coalesce(revoked_at, now())` })
    .where("tenant_id", "=", tenantId)
    .where("id", "=", id)
    .returningAll()
    .executeTakeFirst();
}

export async function touchApiKey(db: Db, id: string, at: Date): Promise<void> {
  await db
    .updateTable("api_keys")
    .set({ last_used_at: at })
    .where("id", "=", id)
    .where((eb) => eb.or([eb("last_used_at", "is", null), eb("last_used_at", "<", at)]))
    .execute();
}
