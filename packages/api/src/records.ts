/**
 * The HTTP record: one HTTP/1.x request or response header block, as captured by
 * an agent, published over NATS and served by the records API.
 */
import { z } from "zod";
import { queryIntSchema } from "./query-int.ts";
import { isStorableText, UNSTORABLE_TEXT_MESSAGE } from "./storable-text.ts";

export const endpointSchema = z.object({
  ip: z.string(),
  port: z.number().int().min(0).max(65535),
});

export const headerFieldSchema = z.object({
  name: z.string(),
  value: z.string(),
});

export const httpRecordSchema = z.object({
  /** Wall-clock time of the first byte of the header block (ISO 8601 with ms). */
  ts: z.string(),
  connectionId: z.string(),
  kind: z.enum(["request", "response"]),
  role: z.enum(["client", "server", "unknown"]),
  /** Sender of this message. */
  src: endpointSchema,
  /** Receiver of this message. */
  dst: endpointSchema,
  pid: z.number().int(),
  comm: z.string(),
  method: z.string().nullable(),
  path: z.string().nullable(),
  version: z.string(),
  status: z.number().int().nullable(),
  reason: z.string().nullable(),
  /** For responses paired with their request: time from request to response, in ms. */
  latencyMs: z.number().nullable(),
  /** Header fields in wire order, original case, duplicates kept (after redaction). */
  headers: z.array(headerFieldSchema),
  /** Size in bytes of the raw header block (start line through the blank line). */
  headerBytes: z.number().int(),
  /** Names of headers whose values were redacted (masked or hashed) or dropped. */
  redacted: z.array(z.string()),
});

export type HttpRecord = z.infer<typeof httpRecordSchema>;
export type HeaderField = z.infer<typeof headerFieldSchema>;

/** A stored record as the records API returns it: the captured record plus where it came from. */
export const storedRecordSchema = httpRecordSchema.omit({ reason: true, headerBytes: true, redacted: true }).extend({
  id: z.string(),
  agentId: z.string(),
});
export type StoredRecordView = z.infer<typeof storedRecordSchema>;

const headerNameParam = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, "must be an HTTP header name");

/** Query parameters of GET /v1/captures/:id/records (and /stream, /stats); `header.<name>=<value>` come on top. */
/** An ISO time Postgres can compare with: year 1 or later (ISO allows year 0000, timestamptz does not). */
const FIRST_STORABLE_TIME = Date.parse("0001-01-01T00:00:00Z");
export const storableTimeSchema = z.iso.datetime({ offset: true }).refine((t) => Date.parse(t) >= FIRST_STORABLE_TIME, "must be in year 1 or later");

export const recordsQuerySchema = z.object({
  since: storableTimeSchema.optional(),
  until: storableTimeSchema.optional(),
  agent: z.string().regex(/^agt_[A-Za-z0-9]{8,40}$/, "must be an agent id (agt_…)").optional(),
  kind: z.enum(["request", "response"]).optional(),
  method: z.string().regex(/^[A-Za-z-]{1,20}$/, "must be an HTTP method").optional(),
  pathPrefix: z.string().min(1).max(2048).optional(),
  status: queryIntSchema(100, 599).optional(),
  hasHeader: headerNameParam.optional(),
  limit: queryIntSchema(1, 1000).default(100),
  cursor: z.string().max(200).optional(),
  order: z.enum(["asc", "desc"]).default("asc"),
  format: z.enum(["json", "ndjson", "csv"]).default("json"),
});
export type RecordsQuery = z.infer<typeof recordsQuerySchema>;

/** What narrows a capture's records (the query minus paging and format). */
export type RecordsFilter = Partial<Omit<RecordsQuery, "limit" | "cursor" | "format">> & { headers?: HeaderEquals[] };

export interface HeaderEquals {
  name: string;
  value: string;
}

/** Pick `header.<name>=<value>` pairs out of a raw query; invalid names are reported by path. */
export function parseHeaderFilters(query: Record<string, string[]>): { filters: HeaderEquals[]; issues: { path: string; message: string }[] } {
  const filters: HeaderEquals[] = [];
  const issues: { path: string; message: string }[] = [];
  for (const [key, values] of Object.entries(query)) {
    if (!key.startsWith("header.")) continue;
    const name = key.slice("header.".length);
    if (!headerNameParam.safeParse(name).success) issues.push({ path: `query.${key}`, message: "header filters look like header.<name>=<value> with an HTTP header name" });
    else if (filters.length + values.length > 8) issues.push({ path: `query.${key}`, message: "at most 8 header filters" });
    else for (const value of values) {
      if (value.length > 4096) issues.push({ path: `query.${key}`, message: "value longer than 4096 characters" });
      else if (!isStorableText(value)) issues.push({ path: `query.${key}`, message: UNSTORABLE_TEXT_MESSAGE });
      else filters.push({ name: name.toLowerCase(), value });
    }
  }
  return { filters, issues };
}

export const recordStatsSchema = z.object({
  total: z.number(),
  byAgent: z.array(z.object({ agentId: z.string(), buckets: z.array(z.object({ start: z.string(), count: z.number() })) })),
  headers: z.array(z.object({ name: z.string(), records: z.number(), distinctValues: z.number() })),
  headerBytes: z.object({ p50: z.number().nullable(), p99: z.number().nullable() }),
  header: z
    .object({ name: z.string(), distinctValues: z.number(), top: z.array(z.object({ value: z.string(), count: z.number() })) })
    .nullable(),
});
export type RecordStats = z.infer<typeof recordStatsSchema>;
