import { whoamiSchema } from "@hdrcap/api";
import { createRoute } from "@hono/zod-openapi";
import { bearerSecurity, createRouter, errorResponses, jsonContent } from "../openapi.ts";

const whoami = createRoute({
  method: "get",
  path: "/v1/whoami",
  tags: ["Auth"],
  summary: "The calling key's tenant and metadata (never the secret)",
  security: bearerSecurity,
  responses: { 200: jsonContent(whoamiSchema, "Tenant and key"), ...errorResponses },
});

export const whoamiRouter = createRouter().openapi(whoami, async (c) => c.json(await c.get("services").whoami(c.get("auth")), 200));
