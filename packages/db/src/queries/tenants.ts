import type { Db } from "../client.ts";
import type { Tenant, NewTenant } from "../tables/index.ts";

export async function insertTenant(db: Db, tenant: NewTenant): Promise<Tenant> {
  return db.insertInto("tenants").values(tenant).returningAll().executeTakeFirstOrThrow();
}

export async function findTenantById(db: Db, id: string): Promise<Tenant | undefined> {
  return db.selectFrom("tenants").selectAll().where("id", "=", id).executeTakeFirst();
}

export async function findTenantBySlug(db: Db, slug: string): Promise<Tenant | undefined> {
  return db.selectFrom("tenants").selectAll().where("slug", "=", slug).executeTakeFirst();
}

export async function listTenants(db: Db, { limit, after }: { limit: number; after?: string }): Promise<Tenant[]> {
  let q = db.selectFrom("tenants").selectAll().orderBy("id").limit(limit);
  if (after) q = q.where("id", ">", after);
  return q.execute();
}

export async function countTenants(db: Db): Promise<number> {
  const row = await db.selectFrom("tenants").select((eb) => eb.fn.countAll<string>().as("n")).executeTakeFirstOrThrow();
  return Number(row.n);
}
