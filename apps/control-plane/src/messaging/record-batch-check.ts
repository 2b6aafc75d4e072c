/**
 * The ingester's check of a parsed record batch: the same rules as
 * `recordBatchSchema` (packages/api) without building a copy of the batch.
 *
 * zod returns a deep copy of every record (≈ 20 objects and arrays each), which
 * was a large share of the ingester's CPU and garbage at 500 records per batch;
 * the ingester stores the parsed records as they are, so it only needs to know
 * that the parsed value has the schema's shape. `record-batch-check.test.ts`
 * holds this function to the schema on generated good and broken batches. One rule
 * is stricter than the schema: `ts` must be an ISO 8601 UTC time as agents write it
 * (`toISOString()`), so Postgres can never read it differently from JavaScript.
 */
import { MAX_BATCH_RECORDS, type RecordBatch } from "@hdrcap/api";

/** On success, `batch` is the value that was checked (not a copy). */
export type RecordBatchCheck = { ok: true; batch: RecordBatch } | { ok: false; issue: string };

const ISO_UTC_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isString = (v: unknown): v is string => typeof v === "string";
const isInt = (v: unknown): v is number => Number.isSafeInteger(v);
const isFiniteNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

function endpointIssue(v: unknown): string | undefined {
  if (!isObject(v)) return "expected an object";
  if (!isString(v.ip)) return "ip: expected a string";
  if (!isInt(v.port) || v.port < 0 || v.port > 65535) return "port: expected an integer from 0 to 65535";
  return undefined;
}

/** The first thing wrong with one record, as "<field>: <problem>", or undefined. */
function recordIssue(r: unknown): string | undefined {
  if (!isObject(r)) return "expected an object";
  if (!isString(r.ts) || !ISO_UTC_TIME.test(r.ts) || Number.isNaN(Date.parse(r.ts))) return "ts: expected an ISO 8601 UTC time";
  if (!isString(r.connectionId)) return "connectionId: expected a string";
  if (r.kind !== "request" && r.kind !== "response") return 'kind: expected "request" or "response"';
  if (r.role !== "client" && r.role !== "server" && r.role !== "unknown") return 'role: expected "client", "server" or "unknown"';
  const src = endpointIssue(r.src);
  if (src) return `src.${src}`;
  const dst = endpointIssue(r.dst);
  if (dst) return `dst.${dst}`;
  if (!isInt(r.pid)) return "pid: expected an integer";
  if (!isString(r.comm)) return "comm: expected a string";
  if (r.method !== null && !isString(r.method)) return "method: expected a string or null";
  if (r.path !== null && !isString(r.path)) return "path: expected a string or null";
  if (!isString(r.version)) return "version: expected a string";
  if (r.status !== null && !isInt(r.status)) return "status: expected an integer or null";
  if (r.reason !== null && !isString(r.reason)) return "reason: expected a string or null";
  if (r.latencyMs !== null && !isFiniteNumber(r.latencyMs)) return "latencyMs: expected a number or null";
  if (!Array.isArray(r.headers)) return "headers: expected an array";
  for (let i = 0; i < r.headers.length; i++) {
    const h: unknown = r.headers[i];
    if (!isObject(h) || !isString(h.name) || !isString(h.value)) return `headers.${i}: expected { name: string, value: string }`;
  }
  if (!isInt(r.headerBytes)) return "headerBytes: expected an integer";
  if (!Array.isArray(r.redacted)) return "redacted: expected an array";
  for (let i = 0; i < r.redacted.length; i++) if (!isString(r.redacted[i])) return `redacted.${i}: expected a string`;
  return undefined;
}

/** Whether a parsed message is a record batch (`recordBatchSchema`), and the issue if not. */
export function checkRecordBatch(body: unknown): RecordBatchCheck {
  const fail = (issue: string): RecordBatchCheck => ({ ok: false, issue });
  if (!isObject(body)) return fail("expected an object");
  if (body.v !== 1) return fail("v: expected 1");
  const { batchId, captureId, records } = body;
  if (!isString(batchId) || batchId.length < 8 || batchId.length > 200) return fail("batchId: expected a string of 8 to 200 characters");
  if (!isString(captureId) || captureId.length > 64) return fail("captureId: expected a string of at most 64 characters");
  if (!Array.isArray(records) || records.length < 1 || records.length > MAX_BATCH_RECORDS) return fail(`records: expected an array of 1 to ${MAX_BATCH_RECORDS} records`);
  for (let i = 0; i < records.length; i++) {
    const issue = recordIssue(records[i]);
    if (issue) return fail(`records.${i}.${issue}`);
  }
  return { ok: true, batch: body as RecordBatch };
}
