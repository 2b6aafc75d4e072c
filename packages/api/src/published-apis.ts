/**
 * Published APIs: a capture's records, narrowed by fixed filters and cut to a chosen
 * field set, served to outside consumers at /apis/<tenant-slug>/<name> with their
 * own keys. Schemas of the management calls, the views, and the consumer's query.
 */
import { z } from "@hono/zod-openapi";
import { queryIntSchema } from "./query-int.ts";
import { storableTimeSchema } from "./records.ts";
import { idSchema, isStorableText, rateLimitSchema, slugSchema, UNSTORABLE_TEXT_MESSAGE } from "./schemas.ts";

export const PUBLISHED_API_STATES = ["draft", "published", "deprecated", "retired"] as const;
export type PublishedApiState = (typeof PUBLISHED_API_STATES)[number];

/** The fields of a stored record (storedRecordSchema) a published API may serve. */
export const PUBLISHED_RECORD_FIELDS = [
  "id",
  "ts",
  "agentId",
  "connectionId",
  "kind",
  "role",
  "src",
  "dst",
  "pid",
  "comm",
  "method",
  "path",
  "version",
  "status",
  "latencyMs",
  "headers",
] as const;
export type PublishedRecordField = (typeof PUBLISHED_RECORD_FIELDS)[number];

// Postgres text and jsonb cannot hold NUL or lone surrogates; refuse them at the edge rather than fail in the database.
const text = () => z.string().refine(isStorableText, UNSTORABLE_TEXT_MESSAGE);
const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$/, "must be an HTTP header name");

/** The API's fixed filter: everything of RecordsFilter except the time window, which consumers choose. */
export const publishedApiFilterSchema = z
  .object({
    kind: z.enum(["request", "response"]).optional(),
    method: z
      .string()
      .regex(/^[A-Za-z-]{1,20}$/, "must be an HTTP method")
      .transform((m) => m.toUpperCase())
      .optional(),
    pathPrefix: text().min(1).max(2048).optional(),
    status: z.number().int().min(100).max(599).optional(),
    hasHeader: headerName.transform((n) => n.toLowerCase()).optional(),
    headers: z
      .array(z.object({ name: headerName.transform((n) => n.toLowerCase()), value: text().max(4096) }).strict())
      .max(8)
      .optional(),
    agent: z.string().regex(/^agt_[A-Za-z0-9]{8,40}$/, "must be an agent id (agt_…)").optional(),
  })
  .strict()
  .openapi("PublishedApiFilter");
export type PublishedApiFilter = z.infer<typeof publishedApiFilterSchema>;

export const createPublishedApiInputSchema = z
  .object({
    name: slugSchema.openapi({ description: "Slug; the API is served at /apis/<tenant-slug>/<name>" }),
    captureId: idSchema("cap"),
    filter: publishedApiFilterSchema.default({}),
    fields: z
      .array(z.enum(PUBLISHED_RECORD_FIELDS))
      .min(1)
      .max(PUBLISHED_RECORD_FIELDS.length)
      .refine((f) => new Set(f).size === f.length, "must not repeat a field")
      .openapi({ description: "The record fields served, in this order" }),
    description: text().trim().max(2000).optional(),
  })
  .strict()
  .openapi("CreatePublishedApiInput");
export type CreatePublishedApiInput = z.infer<typeof createPublishedApiInputSchema>;

export const deprecatePublishedApiInputSchema = z
  .object({
    sunset: storableTimeSchema.optional().openapi({ description: "When the API will be retired (sent as the Sunset header)" }),
  })
  .strict()
  .openapi("DeprecatePublishedApiInput");
export type DeprecatePublishedApiInput = z.infer<typeof deprecatePublishedApiInputSchema>;

export const publishedApiSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    captureId: z.string(),
    description: z.string().nullable(),
    state: z.enum(PUBLISHED_API_STATES),
    filter: publishedApiFilterSchema,
    fields: z.array(z.enum(PUBLISHED_RECORD_FIELDS)),
    path: z.string().openapi({ description: "Where consumers call it: /apis/<tenant-slug>/<name>" }),
    sunsetAt: z.string().nullable(),
    publishedAt: z.string().nullable(),
    deprecatedAt: z.string().nullable(),
    retiredAt: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi("PublishedApi");
export type PublishedApiView = z.infer<typeof publishedApiSchema>;

export const createConsumerInputSchema = z
  .object({
    name: text().trim().min(1).max(100),
    rateLimit: rateLimitSchema.optional(),
  })
  .strict()
  .openapi("CreateConsumerInput");
export type CreateConsumerInput = z.infer<typeof createConsumerInputSchema>;

export const consumerSchema = z
  .object({
    id: z.string(),
    apiId: z.string(),
    name: z.string(),
    prefix: z.string().openapi({ description: "First characters of the key, for recognising it" }),
    rateLimit: z.object({ perSecond: z.number(), burst: z.number() }).nullable().openapi({ description: "null: the server default" }),
    revokedAt: z.string().nullable(),
    createdAt: z.string(),
  })
  .openapi("Consumer");
export type ConsumerView = z.infer<typeof consumerSchema>;

export const createdConsumerSchema = z
  .object({
    consumer: consumerSchema,
    key: z.string().openapi({ description: "The consumer key (hcc_…). Shown once; only its hash is stored." }),
  })
  .openapi("CreatedConsumer");
export type CreatedConsumer = z.infer<typeof createdConsumerSchema>;

/**
 * What a consumer may choose: the time window, order and paging. Nothing that could
 * widen the fixed filter, and unknown parameters are rejected rather than ignored,
 * so a consumer never believes a filter applied when it did not.
 */
export const publishedRecordsQuerySchema = z
  .object({
    since: storableTimeSchema.optional(),
    until: storableTimeSchema.optional(),
    limit: queryIntSchema(1, 1000).default(100),
    cursor: z.string().max(200).optional(),
    order: z.enum(["asc", "desc"]).default("asc"),
  })
  .strict();
export type PublishedRecordsQuery = z.infer<typeof publishedRecordsQuerySchema>;
export const PUBLISHED_QUERY_PARAMS = ["since", "until", "limit", "cursor", "order"] as const;
