/**
 * Agent upgrade rollouts (`hdrcap agents upgrade`): the request body and the view of a
 * rollout with the state of each agent in it.
 */
import { z } from "@hono/zod-openapi";
import { agentSelectorSchema } from "./captures.ts";

export const createAgentUpgradeInputSchema = z
  .object({
    agents: agentSelectorSchema.default({}).openapi({ description: "Which agents (ids and labels both constrain; empty = every agent of the tenant)" }),
    batchSize: z.number().int().min(1).max(1000).default(1).openapi({ description: "Agents upgraded at the same time; the next batch starts when all of this one are back" }),
    timeoutSeconds: z
      .number()
      .int()
      .min(10)
      .max(3600)
      .default(180)
      .openapi({ description: "How long each agent of a batch has to come back online reporting the new version" }),
  })
  .strict()
  .openapi("CreateAgentUpgradeInput");
export type CreateAgentUpgradeInput = z.infer<typeof createAgentUpgradeInputSchema>;

export const AGENT_UPGRADE_STATUSES = ["running", "completed", "failed", "cancelled"] as const;
export type AgentUpgradeStatus = (typeof AGENT_UPGRADE_STATUSES)[number];
export const UPGRADE_AGENT_STATUSES = ["pending", "upgrading", "upgraded", "failed", "skipped"] as const;
export type UpgradeAgentStatus = (typeof UPGRADE_AGENT_STATUSES)[number];

export const agentUpgradeAgentSchema = z
  .object({
    agentId: z.string(),
    hostname: z.string(),
    /** 0-based batch; null for agents skipped when the rollout was planned. */
    batch: z.number().nullable(),
    status: z.enum(UPGRADE_AGENT_STATUSES),
    fromVersion: z.string().nullable(),
    message: z.string().nullable(),
    updatedAt: z.string(),
  })
  .openapi("AgentUpgradeAgent");
export type AgentUpgradeAgentView = z.infer<typeof agentUpgradeAgentSchema>;

export const agentUpgradeSchema = z
  .object({
    id: z.string(),
    status: z.enum(AGENT_UPGRADE_STATUSES),
    statusReason: z
      .string()
      .nullable()
      .openapi({ description: "Why the rollout failed (which agent, and why), or which agents a cancel left to finish" }),
    targetVersion: z.string(),
    bundleSha256: z.string(),
    agents: agentSelectorSchema,
    batchSize: z.number(),
    timeoutSeconds: z.number(),
    batchCount: z.number(),
    currentBatch: z.number().nullable().openapi({ description: "The batch being upgraded (0-based), null when none is" }),
    createdAt: z.string(),
    finishedAt: z
      .string()
      .nullable()
      .openapi({ description: "When it ended; a cancelled rollout ends once the agents already commanded have come back or failed" }),
    counts: z.record(z.enum(UPGRADE_AGENT_STATUSES), z.number()),
    agentStates: z.array(agentUpgradeAgentSchema),
  })
  .openapi("AgentUpgrade");
export type AgentUpgradeView = z.infer<typeof agentUpgradeSchema>;
