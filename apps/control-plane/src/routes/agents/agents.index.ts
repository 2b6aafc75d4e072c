import { createRouter } from "../openapi.ts";
import * as upgrades from "./agent-upgrades.routes.ts";
import * as routes from "./agents.routes.ts";

export const agentsRouter = createRouter()
  .openapi(routes.listAgents, async (c) => c.json(await c.get("services").agents.list(c.get("auth"), c.req.valid("query")), 200))
  .openapi(routes.getAgent, async (c) => c.json(await c.get("services").agents.get(c.get("auth"), c.req.valid("param").id), 200))
  .openapi(routes.deleteAgent, async (c) => c.json(await c.get("services").agents.remove(c.get("auth"), c.req.valid("param").id), 200))
  .openapi(routes.createEnrollmentToken, async (c) => c.json(await c.get("services").agents.createEnrollmentToken(c.get("auth"), c.req.valid("json")), 201))
  .openapi(routes.revokeEnrollmentToken, async (c) => c.json(await c.get("services").agents.revokeEnrollmentToken(c.get("auth"), c.req.valid("param").id), 200))
  .openapi(upgrades.createAgentUpgrade, async (c) => c.json(await c.get("services").agentUpgrades.create(c.get("auth"), c.req.valid("json")), 201))
  .openapi(upgrades.listAgentUpgrades, async (c) => c.json(await c.get("services").agentUpgrades.list(c.get("auth"), c.req.valid("query")), 200))
  .openapi(upgrades.getAgentUpgrade, async (c) => c.json(await c.get("services").agentUpgrades.get(c.get("auth"), c.req.valid("param").id), 200))
  .openapi(upgrades.cancelAgentUpgrade, async (c) => c.json(await c.get("services").agentUpgrades.cancel(c.get("auth"), c.req.valid("param").id), 200));
