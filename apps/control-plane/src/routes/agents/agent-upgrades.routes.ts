/** Route definitions of agent upgrade rollouts (`hdrcap agents upgrade`). */
import { AGENT_UPGRADE_STATUSES, agentUpgradeSchema, createAgentUpgradeInputSchema, idSchema, pageOf, pageQuerySchema } from "@hdrcap/api";
import { createRoute, z } from "@hono/zod-openapi";
import { bearerSecurity, errorResponses, jsonBody, jsonContent } from "../openapi.ts";

const tags = ["Agents"];

export const createAgentUpgrade = createRoute({
  method: "post",
  path: "/v1/agent-upgrades",
  tags,
  summary:
    "Upgrade the selected online agents to the control plane's current bundle, one batch at a time (agents:write). " +
    "A batch succeeds when each of its agents is back online reporting the new version within timeoutSeconds; the rollout stops at the first failure. " +
    "409 while another rollout of the tenant runs, or when no bundle is built.",
  security: bearerSecurity,
  request: jsonBody(createAgentUpgradeInputSchema),
  responses: { 201: jsonContent(agentUpgradeSchema, "The rollout, as planned (status completed at once when nothing needs upgrading)"), ...errorResponses },
});

export const listAgentUpgrades = createRoute({
  method: "get",
  path: "/v1/agent-upgrades",
  tags,
  summary: "List upgrade rollouts, newest first",
  security: bearerSecurity,
  request: { query: pageQuerySchema.extend({ status: z.enum(AGENT_UPGRADE_STATUSES).optional() }) },
  responses: { 200: jsonContent(pageOf(agentUpgradeSchema, "AgentUpgradePage"), "A page of rollouts"), ...errorResponses },
});

export const getAgentUpgrade = createRoute({
  method: "get",
  path: "/v1/agent-upgrades/{id}",
  tags,
  summary: "A rollout: its status (and why it failed or what a cancel left to finish), and each agent's state: pending, upgrading, upgraded, failed or skipped",
  security: bearerSecurity,
  request: { params: z.object({ id: idSchema("upg").openapi({ param: { name: "id", in: "path" } }) }) },
  responses: { 200: jsonContent(agentUpgradeSchema, "The rollout"), ...errorResponses },
});

export const cancelAgentUpgrade = createRoute({
  method: "post",
  path: "/v1/agent-upgrades/{id}/cancel",
  tags,
  summary:
    "Cancel a running rollout (agents:write): no further batch starts and agents not yet sent the upgrade command become skipped (\"cancelled\"). " +
    "Agents already upgrading are left to finish, since an upgrade command already sent cannot be recalled; their outcome is still recorded, and finishedAt is set once they are done. " +
    "Another rollout can be started at once. 409 when the rollout is not running (the message names its status).",
  security: bearerSecurity,
  request: { params: z.object({ id: idSchema("upg").openapi({ param: { name: "id", in: "path" } }) }) },
  responses: { 200: jsonContent(agentUpgradeSchema, "The rollout, now cancelled (statusReason names the agents left to finish)"), ...errorResponses },
});
