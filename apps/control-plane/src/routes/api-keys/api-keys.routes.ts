import { apiKeySchema, createApiKeyInputSchema, createdApiKeySchema, idSchema, pageOf, pageQuerySchema, rotateApiKeyInputSchema } from "@hdrcap/api";
import { createRoute, z } from "@hono/zod-openapi";
import { bearerSecurity, errorResponses, jsonBody, jsonContent } from "../openapi.ts";

const tags = ["API keys"];

export const createApiKey = createRoute({
  method: "post",
  path: "/v1/api-keys",
  tags,
  summary: "Create an API key (admin). The secret is returned once.",
  security: bearerSecurity,
  request: jsonBody(createApiKeyInputSchema),
  responses: { 201: jsonContent(createdApiKeySchema, "The new key and its secret"), ...errorResponses },
});

export const listApiKeys = createRoute({
  method: "get",
  path: "/v1/api-keys",
  tags,
  summary: "List the tenant's API keys (admin). Secrets are never returned.",
  security: bearerSecurity,
  request: { query: pageQuerySchema },
  responses: { 200: jsonContent(pageOf(apiKeySchema, "ApiKeyPage"), "A page of keys"), ...errorResponses },
});

export const revokeApiKey = createRoute({
  method: "delete",
  path: "/v1/api-keys/{id}",
  tags,
  summary: "Revoke an API key (admin). Takes effect immediately.",
  security: bearerSecurity,
  request: { params: z.object({ id: idSchema("key").openapi({ param: { name: "id", in: "path" } }) }) },
  responses: { 200: jsonContent(apiKeySchema, "The revoked key"), ...errorResponses },
});

export const rotateApiKey = createRoute({
  method: "post",
  path: "/v1/api-keys/{id}/rotate",
  tags,
  summary: "Rotate a key (admin): a new key with the same scopes; the old one works until the grace period ends",
  security: bearerSecurity,
  request: { params: z.object({ id: idSchema("key").openapi({ param: { name: "id", in: "path" } }) }), ...jsonBody(rotateApiKeyInputSchema) },
  responses: { 201: jsonContent(createdApiKeySchema, "The new key and its secret"), 409: { description: "Already rotated, revoked or expired", content: errorResponses[400].content }, ...errorResponses },
});
