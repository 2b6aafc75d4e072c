/**
 * The service layer's contract. The control plane implements it; the REST routes
 * and the tRPC router are thin adapters that call it, so both have the same
 * semantics (scope checks and tenant scoping happen inside the services).
 */
import type { ApiKeyView, CreateApiKeyInput, CreatedApiKey, CreatedTenant, CreateTenantInput, Page, PageQuery, TenantView, WhoAmI } from "./schemas.ts";

/** Who is calling: the verified API key and its tenant. */
export interface AuthContext {
  tenant: { id: string; slug: string; name: string; createdAt: string };
  key: { id: string; name: string; prefix: string; scopes: string[] };
  requestId: string;
  ip: string | null;
}

export interface Services {
  whoami(auth: AuthContext): Promise<WhoAmI>;
  apiKeys: {
    create(auth: AuthContext, input: CreateApiKeyInput): Promise<CreatedApiKey>;
    list(auth: AuthContext, page: PageQuery): Promise<Page<ApiKeyView>>;
    revoke(auth: AuthContext, id: string): Promise<ApiKeyView>;
  };
  tenants: {
    create(auth: AuthContext, input: CreateTenantInput): Promise<CreatedTenant>;
    list(auth: AuthContext, page: PageQuery): Promise<Page<TenantView>>;
  };
}
