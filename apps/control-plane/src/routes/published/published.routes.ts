import { errorBodySchema, publishedRecordsQuerySchema, slugSchema } from "@hdrcap/api";
import { createRoute, z } from "@hono/zod-openapi";
import { consumerAccess, servedApi } from "./published.middleware.ts";

const tags = ["Published APIs (consumers)"];
const params = z.object({
  tenant: slugSchema.openapi({ param: { name: "tenant", in: "path" }, description: "The publishing tenant's slug" }),
  name: slugSchema.openapi({ param: { name: "name", in: "path" }, description: "The API's name" }),
});
const error = (description: string) => ({ description, content: { "application/json": { schema: errorBodySchema } } });

export const serveRecords = createRoute({
  method: "get",
  path: "/apis/{tenant}/{name}",
  tags,
  summary: "Records of a published API, with its fixed filters and fields (each API documents itself at …/openapi.json)",
  security: [{ ConsumerKey: [] }],
  // Lookup and consumer authentication run before query validation: an unknown API is 404
  // and a caller without a key of this API learns nothing from parameter errors.
  middleware: [servedApi, consumerAccess] as const,
  request: { params, query: publishedRecordsQuerySchema },
  responses: {
    200: {
      description: "A page of records, each with only the API's fields. Deprecated APIs add Deprecation (and Sunset) headers.",
      content: { "application/json": { schema: z.object({ items: z.array(z.record(z.string(), z.unknown())), nextCursor: z.string().nullable() }).openapi("PublishedRecordPage") } },
    },
    400: error("Invalid query parameter; `issues` names it"),
    401: error("Missing, invalid or revoked consumer key (tenant API keys and other APIs' keys are refused)"),
    404: error("No such API (or a draft)"),
    410: error("The API was retired"),
    429: error("This consumer's rate limit was exceeded; see Retry-After"),
  },
});

export const serveOpenApi = createRoute({
  method: "get",
  path: "/apis/{tenant}/{name}/openapi.json",
  tags,
  summary: "The published API's own OpenAPI 3.1 document, generated from its field set",
  middleware: [servedApi] as const,
  request: { params },
  responses: {
    200: { description: "OpenAPI 3.1 document", content: { "application/json": { schema: z.record(z.string(), z.unknown()).openapi("PublishedApiDocument") } } },
    404: error("No such API (or a draft)"),
    410: error("The API was retired"),
  },
});
