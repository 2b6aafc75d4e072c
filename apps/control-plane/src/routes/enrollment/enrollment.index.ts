/** POST /v1/enroll: an agent exchanges its enrollment token (not an API key) for its identity. */
import { enrollInputSchema, enrollResultSchema } from "@hdrcap/api";
import { createRoute } from "@hono/zod-openapi";
import { getConnInfo } from "@hono/node-server/conninfo";
import { bearerToken } from "../../middleware/auth.ts";
import { createRouter, errorResponses, jsonBody, jsonContent } from "../openapi.ts";

const enroll = createRoute({
  method: "post",
  path: "/v1/enroll",
  tags: ["Agents"],
  summary: "Enroll an agent with an enrollment token (Authorization: Bearer hcet_…)",
  request: jsonBody(enrollInputSchema),
  responses: { 200: jsonContent(enrollResultSchema, "The agent's identity and NATS credentials"), ...errorResponses },
});

export const enrollmentRouter = createRouter().openapi(enroll, async (c) => {
  let ip: string | null = null;
  try {
    ip = getConnInfo(c).remote.address ?? null;
  } catch {
    // not served by node (tests): no peer address
  }
  return c.json(await c.get("services").enroll(bearerToken(c.req.header("authorization")), c.req.valid("json"), ip), 200);
});
