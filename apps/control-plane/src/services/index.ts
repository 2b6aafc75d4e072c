import { ApiError, requireScope, type Services } from "@hdrcap/api";
import { findApiKey, listAuditEntries, type Db } from "@hdrcap/db";
import { decodeCursor, pageFrom } from "./cursor.ts";
import { createAgentsService, type AgentsServiceConfig } from "./agents.ts";
import { createAgentUpgradesService } from "./agent-upgrades.ts";
import { createApiKeysService } from "./api-keys.ts";
import { createCapturesService, type NudgeAgent } from "./captures.ts";
import { createPublishedApisService } from "./published-apis.ts";
import { captureRecordStats, listCaptureRecords } from "./records.ts";
import { createTenantsService } from "./tenants.ts";
import { apiKeyView, auditEntryView } from "./views.ts";

export interface ServicesConfig extends AgentsServiceConfig {
  /** Called after a key is revoked (cache eviction on every replica). */
  onKeyRevoked?: (keyHash: string) => Promise<void>;
  /** Called after a published API's consumer key is revoked (cache eviction on every replica). */
  onConsumerKeyRevoked?: (keyHash: string) => Promise<void>;
  nudge: NudgeAgent;
  onNudgeError?: (err: unknown) => void;
}

export function createServices(db: Db, config: ServicesConfig) {
  const agents = createAgentsService(db, config);
  const captures = createCapturesService(db, config.nudge, config.onNudgeError);
  return {
    async whoami(auth) {
      const row = await findApiKey(db, auth.tenant.id, auth.key.id);
      if (!row) throw new ApiError("UNAUTHORIZED", "this API key no longer exists");
      return { tenant: auth.tenant, apiKey: apiKeyView(row) };
    },
    apiKeys: createApiKeysService(db, config.onKeyRevoked),
    tenants: createTenantsService(db),
    audit: {
      async list(auth, page) {
        requireScope(auth.key.scopes, "admin");
        // Audit ids are bigints: a cursor that is not one is forged (and would be a Postgres cast error).
        const before = decodeCursor(page.cursor);
        if (before !== undefined && !/^\d{1,18}$/.test(before)) {
          throw new ApiError("BAD_REQUEST", "invalid query.cursor: not a cursor returned by this API", [{ path: "query.cursor", message: "not a cursor returned by this API" }]);
        }
        const rows = await listAuditEntries(db, auth.tenant.id, { limit: page.limit + 1, before });
        return pageFrom(rows, page.limit, (r) => r.id, auditEntryView);
      },
    },
    agents,
    agentUpgrades: createAgentUpgradesService(db),
    captures: {
      ...captures,
      records: (auth, id, query) => listCaptureRecords(db, auth, id, query),
      stats: (auth, id, query) => captureRecordStats(db, auth, id, query),
    },
    publishedApis: createPublishedApisService(db, config.onConsumerKeyRevoked),
    /** Not part of the tenant API: agents call it with an enrollment token. */
    enroll: agents.enroll,
  } satisfies Services & { enroll: typeof agents.enroll };
}

export type ControlPlaneServices = ReturnType<typeof createServices>;
