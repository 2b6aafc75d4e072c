/** The public serving side of published APIs, at /apis/<tenant-slug>/<name> (outside /v1: consumer keys, not API keys). */
import { createRouter } from "../openapi.ts";
import { publishedApiOpenApi, servePublishedRecords } from "../../services/published-apis.ts";
import * as routes from "./published.routes.ts";

export const publishedRouter = createRouter()
  .openapi(routes.serveRecords, async (c) => c.json(await servePublishedRecords(c.get("deps").db, c.get("served"), c.get("consumer"), c.req.valid("query")), 200))
  .openapi(routes.serveOpenApi, async (c) => c.json(publishedApiOpenApi(c.get("served")), 200));

publishedRouter.openAPIRegistry.registerComponent("securitySchemes", "ConsumerKey", { type: "http", scheme: "bearer", description: "A consumer key (hcc_…) of one published API" });
