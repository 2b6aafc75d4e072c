/**
 * Agents and enrollment tokens: request bodies and views.
 * Plain zod (the agent bundles these through `@hdrcap/api/nats`; @hono/zod-openapi would cost it
 * ~5 MiB): `.meta({ id })` names the OpenAPI component, as `.openapi("…")` does.
 */
import { z } from "zod";
import { labelsSchema } from "./captures.ts";

export const hostFactsSchema = z
  .object({
    hostname: z.string().min(1).max(255),
    /** Stable host identity (/etc/machine-id); re-enrolling the same host keeps its agent id. */
    machineId: z.string().min(8).max(128).regex(/^[A-Za-z0-9._-]+$/),
    kernelRelease: z.string().max(128),
    arch: z.string().max(32),
    btf: z.boolean(),
    hooks: z.record(z.string(), z.boolean()),
    agentVersion: z.string().max(64),
  })
  .meta({ id: "HostFacts" });
export type HostFacts = z.infer<typeof hostFactsSchema>;

export const AGENT_STATUSES = ["online", "offline"] as const;

export const agentSchema = z
  .object({
    id: z.string(),
    hostname: z.string(),
    labels: z.record(z.string(), z.string()),
    status: z.enum(AGENT_STATUSES),
    facts: hostFactsSchema,
    enrolledAt: z.string(),
    lastSeenAt: z.string().nullable(),
  })
  .meta({ id: "Agent" });
export type AgentView = z.infer<typeof agentSchema>;

export const createEnrollmentTokenInputSchema = z
  .object({
    labels: labelsSchema.default({}),
    expiresInSeconds: z.number().int().min(60).max(30 * 86_400).default(86_400),
    maxUses: z.number().int().min(1).max(100_000).default(1),
  })
  .strict()
  .meta({ id: "CreateEnrollmentTokenInput" });
export type CreateEnrollmentTokenInput = z.infer<typeof createEnrollmentTokenInputSchema>;

export const enrollmentTokenSchema = z
  .object({
    id: z.string(),
    prefix: z.string(),
    labels: z.record(z.string(), z.string()),
    maxUses: z.number(),
    uses: z.number(),
    expiresAt: z.string(),
    revokedAt: z.string().nullable(),
    createdAt: z.string(),
  })
  .meta({ id: "EnrollmentToken" });
export type EnrollmentTokenView = z.infer<typeof enrollmentTokenSchema>;

export const createdEnrollmentTokenSchema = z
  .object({ enrollmentToken: enrollmentTokenSchema, token: z.string().meta({ description: "Shown once" }) })
  .meta({ id: "CreatedEnrollmentToken" });
export type CreatedEnrollmentToken = z.infer<typeof createdEnrollmentTokenSchema>;

/** Agent → control plane, authenticated by the enrollment token (Authorization: Bearer hcet_…). */
export const enrollInputSchema = z
  .object({
    facts: hostFactsSchema,
    /** The agent's own NATS user public key (nkey "U…"); its seed never leaves the host. */
    natsPublicKey: z.string().regex(/^U[A-Z2-7]{55}$/, "must be a NATS user public key"),
    /** Labels the host asks for; the enrollment token's labels win on conflicts. */
    labels: labelsSchema.optional(),
  })
  .strict()
  .meta({ id: "EnrollInput" });
export type EnrollInput = z.infer<typeof enrollInputSchema>;

export const enrollResultSchema = z
  .object({
    agentId: z.string(),
    tenantId: z.string(),
    natsServers: z.array(z.string()),
    /** User JWT for natsPublicKey, signed by the control plane's account key. */
    natsJwt: z.string(),
    inboxPrefix: z.string(),
  })
  .meta({ id: "EnrollResult" });
export type EnrollResult = z.infer<typeof enrollResultSchema>;
