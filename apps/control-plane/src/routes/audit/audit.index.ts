import { auditEntrySchema, pageOf, pageQuerySchema } from "@hdrcap/api";
import { createRoute } from "@hono/zod-openapi";
import { bearerSecurity, createRouter, errorResponses, jsonContent } from "../openapi.ts";

const listAudit = createRoute({
  method: "get",
  path: "/v1/audit",
  tags: ["Audit"],
  summary: "Every mutating call of the tenant, newest first: who (key), what, when, from where (admin)",
  security: bearerSecurity,
  request: { query: pageQuerySchema },
  responses: { 200: jsonContent(pageOf(auditEntrySchema, "AuditPage"), "A page of audit entries"), ...errorResponses },
});

export const auditRouter = createRouter().openapi(listAudit, async (c) => c.json(await c.get("services").audit.list(c.get("auth"), c.req.valid("query")), 200));
