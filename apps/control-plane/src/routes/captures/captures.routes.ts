import { CAPTURE_STATUSES, captureSchema, createCaptureInputSchema, idSchema, pageOf, pageQuerySchema, recordsQuerySchema, recordStatsSchema, storedRecordSchema } from "@hdrcap/api";
import { createRoute, z } from "@hono/zod-openapi";
import { bearerSecurity, errorResponses, jsonBody, jsonContent } from "../openapi.ts";

const tags = ["Captures"];
const captureIdParam = z.object({ id: idSchema("cap").openapi({ param: { name: "id", in: "path" } }) });

export const createCapture = createRoute({
  method: "post",
  path: "/v1/captures",
  tags,
  summary: "Start a capture job on the targeted agents",
  security: bearerSecurity,
  request: jsonBody(createCaptureInputSchema),
  responses: { 201: jsonContent(captureSchema, "The job"), ...errorResponses },
});

export const listCaptures = createRoute({
  method: "get",
  path: "/v1/captures",
  tags,
  summary: "List capture jobs, newest first",
  security: bearerSecurity,
  request: { query: pageQuerySchema.extend({ status: z.enum(CAPTURE_STATUSES).optional() }) },
  responses: { 200: jsonContent(pageOf(captureSchema, "CapturePage"), "A page of jobs"), ...errorResponses },
});

export const getCapture = createRoute({
  method: "get",
  path: "/v1/captures/{id}",
  tags,
  summary: "A job: status, per-agent status and completeness counters",
  security: bearerSecurity,
  request: { params: captureIdParam },
  responses: { 200: jsonContent(captureSchema, "The job"), ...errorResponses },
});

export const stopCapture = createRoute({
  method: "post",
  path: "/v1/captures/{id}/stop",
  tags,
  summary: "Stop a job; agents detach and the job ends as cancelled",
  security: bearerSecurity,
  request: { params: captureIdParam },
  responses: { 200: jsonContent(captureSchema, "The job"), ...errorResponses },
});

export const listRecords = createRoute({
  method: "get",
  path: "/v1/captures/{id}/records",
  tags,
  summary: "The capture's records: filter, paginate (opaque cursor), or export everything (format=ndjson|csv)",
  description:
    "Filters combine with AND. Besides the listed parameters, `header.<name>=<value>` (repeatable, at most 8) keeps records " +
    "that carry that header with exactly that value (name case-insensitive). format=ndjson and format=csv stream every " +
    "matching record (no limit, constant memory); json returns one page.",
  security: bearerSecurity,
  request: { params: captureIdParam, query: recordsQuerySchema },
  responses: {
    200: {
      description: "A page of records (json), or every matching record (ndjson: one JSON object per line; csv: RFC 4180 with a header row)",
      content: {
        "application/json": { schema: pageOf(storedRecordSchema, "RecordPage") },
        "application/x-ndjson": { schema: storedRecordSchema },
        "text/csv": { schema: z.string() },
      },
    },
    ...errorResponses,
  },
});

export const recordStats = createRoute({
  method: "get",
  path: "/v1/captures/{id}/stats",
  tags,
  summary: "Counts over time per agent, the header inventory, header block sizes, and top values of one header",
  security: bearerSecurity,
  request: {
    params: captureIdParam,
    query: recordsQuerySchema.omit({ limit: true, cursor: true, order: true, format: true }).extend({
      header: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$/, "must be an HTTP header name").optional(),
      bucketSeconds: z.coerce.number().int().min(1).max(86_400).default(60),
    }),
  },
  responses: { 200: jsonContent(recordStatsSchema.openapi("RecordStats"), "Statistics"), ...errorResponses },
});

export const deleteCapture = createRoute({
  method: "delete",
  path: "/v1/captures/{id}",
  tags,
  summary: "Stop a job and delete it with all its records",
  security: bearerSecurity,
  request: { params: captureIdParam },
  responses: { 200: jsonContent(z.object({ id: z.string(), deletedRecords: z.number() }).openapi("DeletedCapture"), "Deleted"), ...errorResponses },
});

export const streamRecords = createRoute({
  method: "get",
  path: "/v1/captures/{id}/stream",
  tags,
  summary: "Live tail (Server-Sent Events) of the capture's records, with the same filters as /records",
  description:
    "Each event is one record: `id` is the record id, `event: record`, `data` the record as JSON. Reconnect with " +
    "`Last-Event-ID` to resume after the last record received; without it the tail starts with records stored from now on " +
    "(`since` also replays stored records from that time).",
  security: bearerSecurity,
  request: { params: captureIdParam, query: recordsQuerySchema.omit({ limit: true, cursor: true, order: true, format: true }) },
  responses: { 200: { description: "text/event-stream of records", content: { "text/event-stream": { schema: z.string() } } }, ...errorResponses },
});
