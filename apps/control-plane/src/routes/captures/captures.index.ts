import { createRouter } from "../openapi.ts";
import * as routes from "./captures.routes.ts";

export const capturesRouter = createRouter()
  .openapi(routes.createCapture, async (c) => c.json(await c.get("services").captures.create(c.get("auth"), c.req.valid("json")), 201))
  .openapi(routes.listCaptures, async (c) => c.json(await c.get("services").captures.list(c.get("auth"), c.req.valid("query")), 200))
  .openapi(routes.getCapture, async (c) => c.json(await c.get("services").captures.get(c.get("auth"), c.req.valid("param").id), 200))
  .openapi(routes.stopCapture, async (c) => c.json(await c.get("services").captures.stop(c.get("auth"), c.req.valid("param").id), 200))
  .openapi(routes.listRecords, async (c) => c.json(await c.get("services").captures.records(c.get("auth"), c.req.valid("param").id, c.req.valid("query")), 200));
