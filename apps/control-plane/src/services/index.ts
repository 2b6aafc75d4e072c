import { ApiError, type Services } from "@hdrcap/api";
import { findApiKey, type Db } from "@hdrcap/db";
import { createApiKeysService } from "./api-keys.ts";
import { createTenantsService } from "./tenants.ts";
import { apiKeyView } from "./views.ts";

export function createServices(db: Db): Services {
  return {
    async whoami(auth) {
      const row = await findApiKey(db, auth.tenant.id, auth.key.id);
      if (!row) throw new ApiError("UNAUTHORIZED", "this API key no longer exists");
      return { tenant: auth.tenant, apiKey: apiKeyView(row) };
    },
    apiKeys: createApiKeysService(db),
    tenants: createTenantsService(db),
  };
}
