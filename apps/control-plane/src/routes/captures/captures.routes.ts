import { CAPTURE_STATUSES, captureSchema, createCaptureInputSchema, idSchema, pageOf, pageQuerySchema, storedRecordSchema } from "@hdrcap/api";
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
  summary: "The capture's records, oldest first by default",
  security: bearerSecurity,
  request: { params: captureIdParam, query: pageQuerySchema.extend({ order: z.enum(["asc", "desc"]).default("asc") }) },
  responses: { 200: jsonContent(pageOf(storedRecordSchema, "RecordPage"), "A page of records"), ...errorResponses },
});
