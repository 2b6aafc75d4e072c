import {
  consumerSchema,
  createConsumerInputSchema,
  createdConsumerSchema,
  createPublishedApiInputSchema,
  deprecatePublishedApiInputSchema,
  errorBodySchema,
  idSchema,
  pageOf,
  pageQuerySchema,
  publishedApiSchema,
} from "@hdrcap/api";
import { createRoute, z } from "@hono/zod-openapi";
import { bearerSecurity, errorResponses, jsonBody, jsonContent } from "../openapi.ts";

const tags = ["Published APIs"];
const apiIdParam = z.object({ id: idSchema("api").openapi({ param: { name: "id", in: "path" } }) });
const consumerParams = apiIdParam.extend({ consumerId: idSchema("apc").openapi({ param: { name: "consumerId", in: "path" } }) });
const conflict = { 409: { description: "Not allowed in the API's current state (or the name is taken)", content: { "application/json": { schema: errorBodySchema } } } };

export const createApi = createRoute({
  method: "post",
  path: "/v1/apis",
  tags,
  summary: "Create a published API (as a draft) over a capture's records, with fixed filters and a field set",
  security: bearerSecurity,
  request: jsonBody(createPublishedApiInputSchema),
  responses: { 201: jsonContent(publishedApiSchema, "The API, in state draft"), ...errorResponses, ...conflict },
});

export const listApis = createRoute({
  method: "get",
  path: "/v1/apis",
  tags,
  summary: "List the tenant's published APIs",
  security: bearerSecurity,
  request: { query: pageQuerySchema },
  responses: { 200: jsonContent(pageOf(publishedApiSchema, "PublishedApiPage"), "A page of APIs"), ...errorResponses },
});

export const getApi = createRoute({
  method: "get",
  path: "/v1/apis/{id}",
  tags,
  summary: "A published API",
  security: bearerSecurity,
  request: { params: apiIdParam },
  responses: { 200: jsonContent(publishedApiSchema, "The API"), ...errorResponses },
});

export const deleteApi = createRoute({
  method: "delete",
  path: "/v1/apis/{id}",
  tags,
  summary: "Delete a draft or retired API and its consumer keys",
  security: bearerSecurity,
  request: { params: apiIdParam },
  responses: { 200: jsonContent(z.object({ id: z.string(), deleted: z.literal(true) }).openapi("DeletedPublishedApi"), "Deleted"), ...errorResponses, ...conflict },
});

const transition = (verb: "publish" | "retire", summary: string) =>
  createRoute({
    method: "post",
    path: `/v1/apis/{id}/${verb}`,
    tags,
    summary,
    security: bearerSecurity,
    request: { params: apiIdParam },
    responses: { 200: jsonContent(publishedApiSchema, "The API in its new state"), ...errorResponses, ...conflict },
  });

export const publishApi = transition("publish", "Publish a draft: consumers can call it");
export const retireApi = transition("retire", "Retire a published or deprecated API: consumers get 410 Gone");

export const deprecateApi = createRoute({
  method: "post",
  path: "/v1/apis/{id}/deprecate",
  tags,
  summary: "Deprecate a published API: still served, with Deprecation (and Sunset) headers",
  security: bearerSecurity,
  // The body is optional: without one the API is deprecated with no sunset date.
  request: { params: apiIdParam, body: { content: { "application/json": { schema: deprecatePublishedApiInputSchema } }, required: false } },
  responses: { 200: jsonContent(publishedApiSchema, "The API in its new state"), ...errorResponses, ...conflict },
});

export const createConsumer = createRoute({
  method: "post",
  path: "/v1/apis/{id}/consumers",
  tags,
  summary: "Issue a consumer key for this API (shown once)",
  security: bearerSecurity,
  request: { params: apiIdParam, ...jsonBody(createConsumerInputSchema) },
  responses: { 201: jsonContent(createdConsumerSchema, "The consumer and its key"), ...errorResponses, ...conflict },
});

export const listConsumers = createRoute({
  method: "get",
  path: "/v1/apis/{id}/consumers",
  tags,
  summary: "List this API's consumers (never their keys)",
  security: bearerSecurity,
  request: { params: apiIdParam, query: pageQuerySchema },
  responses: { 200: jsonContent(pageOf(consumerSchema, "ConsumerPage"), "A page of consumers"), ...errorResponses },
});

export const revokeConsumer = createRoute({
  method: "delete",
  path: "/v1/apis/{id}/consumers/{consumerId}",
  tags,
  summary: "Revoke a consumer key",
  security: bearerSecurity,
  request: { params: consumerParams },
  responses: { 200: jsonContent(consumerSchema, "The revoked consumer"), ...errorResponses },
});
