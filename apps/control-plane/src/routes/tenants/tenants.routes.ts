import { createdTenantSchema, createTenantInputSchema, pageOf, pageQuerySchema, tenantSchema } from "@hdrcap/api";
import { createRoute } from "@hono/zod-openapi";
import { bearerSecurity, errorResponses, jsonBody, jsonContent } from "../openapi.ts";

const tags = ["Tenants"];

export const createTenant = createRoute({
  method: "post",
  path: "/v1/tenants",
  tags,
  summary: "Create a tenant and its first admin key (operator). The key is returned once.",
  security: bearerSecurity,
  request: jsonBody(createTenantInputSchema),
  responses: {
    201: jsonContent(createdTenantSchema, "The tenant, its admin key and the secret"),
    409: { description: "Slug already taken", content: errorResponses[400].content },
    ...errorResponses,
  },
});

export const listTenants = createRoute({
  method: "get",
  path: "/v1/tenants",
  tags,
  summary: "List tenants (operator)",
  security: bearerSecurity,
  request: { query: pageQuerySchema },
  responses: { 200: jsonContent(pageOf(tenantSchema, "TenantPage"), "A page of tenants"), ...errorResponses },
});
