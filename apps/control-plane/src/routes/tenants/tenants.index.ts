import { createRouter } from "../openapi.ts";
import * as routes from "./tenants.routes.ts";

export const tenantsRouter = createRouter()
  .openapi(routes.createTenant, async (c) => c.json(await c.get("services").tenants.create(c.get("auth"), c.req.valid("json")), 201))
  .openapi(routes.listTenants, async (c) => c.json(await c.get("services").tenants.list(c.get("auth"), c.req.valid("query")), 200));
