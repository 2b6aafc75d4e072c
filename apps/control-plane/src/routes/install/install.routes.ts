/** Route definitions of fleet install: the bundle manifest and agent self-deregistration. */
import { createRoute, z } from "@hono/zod-openapi";
import { errorResponses, jsonBody, jsonContent } from "../openapi.ts";

const tags = ["Install"];

export const bundleManifestView = z
  .object({
    version: z.string(),
    file: z.string().openapi({ description: "Download from /bundles/{file}" }),
    sha256: z.string().openapi({ description: "SHA-256 of the tarball, hex" }),
    size: z.number(),
    node: z.string().optional().openapi({ description: "Node.js version of the bundled runtime" }),
  })
  .openapi("AgentBundle");

export const latestBundle = createRoute({
  method: "get",
  path: "/bundles/latest.json",
  tags,
  summary: "The current agent bundle (no auth): version, file name and checksum, as install.sh reads it",
  responses: { 200: jsonContent(bundleManifestView, "The current bundle"), ...errorResponses },
});

export const deregistrationInput = z
  .object({
    agentId: z.string().regex(/^agt_[A-Za-z0-9]{8,40}$/, "must be an agent id (agt_…)"),
    timestamp: z.number().int().positive().openapi({ description: "Unix time in milliseconds when the request was signed" }),
    signature: z
      .string()
      .regex(/^[A-Za-z0-9_-]{80,100}$/, "must be a base64url Ed25519 signature")
      .openapi({ description: 'base64url Ed25519 signature of "hdrcap-agent-deregister/v1\\n<agentId>\\n<timestamp>" by the agent\'s NATS user key' }),
  })
  .strict()
  .openapi("AgentDeregistration");

export const deregisterSelf = createRoute({
  method: "post",
  path: "/v1/agents/self/deregister",
  tags,
  summary: "An agent removes itself (install.sh --uninstall); authenticated by a signature with the agent's own enrollment key, not an API key",
  request: jsonBody(deregistrationInput),
  responses: {
    200: jsonContent(z.object({ agentId: z.string(), deregistered: z.literal(true) }).openapi("AgentDeregistered"), "The agent is gone"),
    ...errorResponses,
  },
});
