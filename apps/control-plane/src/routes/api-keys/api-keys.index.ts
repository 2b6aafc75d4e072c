import { createRouter } from "../openapi.ts";
import * as routes from "./api-keys.routes.ts";

export const apiKeysRouter = createRouter()
  .openapi(routes.createApiKey, async (c) => c.json(await c.get("services").apiKeys.create(c.get("auth"), c.req.valid("json")), 201))
  .openapi(routes.listApiKeys, async (c) => c.json(await c.get("services").apiKeys.list(c.get("auth"), c.req.valid("query")), 200))
  .openapi(routes.rotateApiKey, async (c) => c.json(await c.get("services").apiKeys.rotate(c.get("auth"), c.req.valid("param").id, c.req.valid("json")), 201))
  .openapi(routes.revokeApiKey, async (c) => c.json(await c.get("services").apiKeys.revoke(c.get("auth"), c.req.valid("param").id), 200));
