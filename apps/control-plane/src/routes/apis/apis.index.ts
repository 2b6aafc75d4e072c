import { createRouter } from "../openapi.ts";
import * as routes from "./apis.routes.ts";

export const apisRouter = createRouter()
  .openapi(routes.createApi, async (c) => c.json(await c.get("services").publishedApis.create(c.get("auth"), c.req.valid("json")), 201))
  .openapi(routes.listApis, async (c) => c.json(await c.get("services").publishedApis.list(c.get("auth"), c.req.valid("query")), 200))
  .openapi(routes.getApi, async (c) => c.json(await c.get("services").publishedApis.get(c.get("auth"), c.req.valid("param").id), 200))
  .openapi(routes.deleteApi, async (c) => c.json(await c.get("services").publishedApis.remove(c.get("auth"), c.req.valid("param").id), 200))
  .openapi(routes.publishApi, async (c) => c.json(await c.get("services").publishedApis.publish(c.get("auth"), c.req.valid("param").id), 200))
  .openapi(routes.deprecateApi, async (c) => c.json(await c.get("services").publishedApis.deprecate(c.get("auth"), c.req.valid("param").id, c.req.valid("json")), 200))
  .openapi(routes.retireApi, async (c) => c.json(await c.get("services").publishedApis.retire(c.get("auth"), c.req.valid("param").id), 200))
  .openapi(routes.createConsumer, async (c) => c.json(await c.get("services").publishedApis.createConsumer(c.get("auth"), c.req.valid("param").id, c.req.valid("json")), 201))
  .openapi(routes.listConsumers, async (c) => c.json(await c.get("services").publishedApis.listConsumers(c.get("auth"), c.req.valid("param").id, c.req.valid("query")), 200))
  .openapi(routes.revokeConsumer, async (c) => {
    const { id, consumerId } = c.req.valid("param");
    return c.json(await c.get("services").publishedApis.revokeConsumer(c.get("auth"), id, consumerId), 200);
  });
