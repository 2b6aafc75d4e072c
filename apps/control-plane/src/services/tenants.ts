/** Tenants: created by an operator, each with a first admin key (shown once). */
import { sql } from "kysely";
import { ApiError, requireScope, type Services } from "@hdrcap/api";
import { countTenants, findTenantBySlug, insertTenant, listTenants, type Db } from "@hdrcap/db";
import { audit } from "./audit.ts";
import { decodeCursor, pageFrom } from "./cursor.ts";
import { newId } from "./ids.ts";
import { mintApiKey } from "./api-keys.ts";
import { apiKeyView, tenantView } from "./views.ts";

export function createTenantsService(db: Db): Services["tenants"] {
  return {
    async create(auth, input) {
      requireScope(auth.key.scopes, "operator");
      if (await findTenantBySlug(db, input.slug)) throw new ApiError("CONFLICT", `a tenant with slug "${input.slug}" already exists`);
      const created = await db.transaction().execute(async (tx) => {
        const tenant = await insertTenant(tx, { id: newId("ten"), slug: input.slug, name: input.name });
        const { row, key } = await mintApiKey(tx, tenant.id, { name: "admin", scopes: ["admin"], createdByKeyId: auth.key.id });
        await audit(tx, auth, "tenant.create", { type: "tenant", id: tenant.id }, { slug: tenant.slug });
        return { tenant, row, key };
      });
      return { tenant: tenantView(created.tenant), apiKey: apiKeyView(created.row), key: created.key };
    },
    async list(auth, page) {
      requireScope(auth.key.scopes, "operator");
      const rows = await listTenants(db, { limit: page.limit + 1, after: decodeCursor(page.cursor) });
      return pageFrom(rows, page.limit, (r) => r.id, tenantView);
    },
  };
}

const BOOTSTRAP_LOCK = 727_001;

/**
 * First start: create the first tenant and its operator+admin key, unless any
 * tenant exists. Returns undefined when there was nothing to do.
 */
export async function bootstrapFirstTenant(db: Db, input: { slug: string; name: string }) {
  return db.transaction().execute(async (tx) => {
    // Serialise concurrent bootstraps (several replicas starting together).
    await sql`select pg_advisory_xact_lock(${BOOTSTRAP_LOCK})`.execute(tx);
    if ((await countTenants(tx)) > 0) return undefined;
    const tenant = await insertTenant(tx, { id: newId("ten"), slug: input.slug, name: input.name });
    const { row, key } = await mintApiKey(tx, tenant.id, { name: "bootstrap", scopes: ["operator", "admin"] });
    return { tenant: tenantView(tenant), apiKey: apiKeyView(row), key };
  });
}
