import { agentSchema, createdEnrollmentTokenSchema, createEnrollmentTokenInputSchema, enrollmentTokenSchema, idSchema, pageOf, pageQuerySchema } from "@hdrcap/api";
import { createRoute, z } from "@hono/zod-openapi";
import { bearerSecurity, errorResponses, jsonBody, jsonContent } from "../openapi.ts";

const tags = ["Agents"];
const agentIdParam = z.object({ id: idSchema("agt").openapi({ param: { name: "id", in: "path" } }) });

export const listAgents = createRoute({
  method: "get",
  path: "/v1/agents",
  tags,
  summary: "List the tenant's agents (online and offline)",
  security: bearerSecurity,
  request: { query: pageQuerySchema.extend({ status: z.enum(["online", "offline"]).optional() }) },
  responses: { 200: jsonContent(pageOf(agentSchema, "AgentPage"), "A page of agents"), ...errorResponses },
});

export const getAgent = createRoute({
  method: "get",
  path: "/v1/agents/{id}",
  tags,
  summary: "One agent: status, labels, host facts",
  security: bearerSecurity,
  request: { params: agentIdParam },
  responses: { 200: jsonContent(agentSchema, "The agent"), ...errorResponses },
});

export const deleteAgent = createRoute({
  method: "delete",
  path: "/v1/agents/{id}",
  tags,
  summary: "Remove an agent (agents:write) and revoke its NATS credentials: its connections are closed and it cannot reconnect",
  description:
    "For a compromised or retired host. The agent's row goes (stored records keep its id) and its NATS user key is revoked; with revocation configured (NATS_OPERATOR_SIGNING_SEED, NATS_SYSTEM_CREDS) nats-server closes its connections within about a second. The host can only come back by enrolling again with a new token.",
  security: bearerSecurity,
  request: { params: agentIdParam },
  responses: { 200: jsonContent(agentSchema, "The removed agent"), ...errorResponses },
});

export const createEnrollmentToken = createRoute({
  method: "post",
  path: "/v1/enrollment-tokens",
  tags,
  summary: "Create an enrollment token (agents:write). The token is returned once.",
  security: bearerSecurity,
  request: jsonBody(createEnrollmentTokenInputSchema),
  responses: { 201: jsonContent(createdEnrollmentTokenSchema, "The token"), ...errorResponses },
});

export const revokeEnrollmentToken = createRoute({
  method: "delete",
  path: "/v1/enrollment-tokens/{id}",
  tags,
  summary: "Revoke an enrollment token",
  security: bearerSecurity,
  request: { params: z.object({ id: idSchema("etk").openapi({ param: { name: "id", in: "path" } }) }) },
  responses: { 200: jsonContent(enrollmentTokenSchema, "The revoked token"), ...errorResponses },
});
