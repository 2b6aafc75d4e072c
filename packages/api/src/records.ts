/**
 * The HTTP record: one HTTP/1.x request or response header block, as captured by
 * an agent, published over NATS and served by the records API.
 */
import { z } from "zod";

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
