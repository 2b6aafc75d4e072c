/**
 * The service layer's contract. The control plane implements it; the REST routes
 * and the tRPC router are thin adapters that call it, so both have the same
 * semantics (scope checks and tenant scoping happen inside the services).
 */
import type { AgentView, CreatedEnrollmentToken, CreateEnrollmentTokenInput, EnrollmentTokenView } from "./agents.ts";
import type { AgentUpgradeStatus, AgentUpgradeView, CreateAgentUpgradeInput } from "./agent-upgrades.ts";
import type { CaptureStatus, CaptureView, CreateCaptureInput } from "./captures.ts";
import type { ConsumerView, CreateConsumerInput, CreatedConsumer, CreatePublishedApiInput, DeprecatePublishedApiInput, PublishedApiView } from "./published-apis.ts";
import type { RecordsFilter, RecordStats, StoredRecordView } from "./records.ts";
import type { AuditEntryView } from "./schemas.ts";
import type { ApiKeyView, CreateApiKeyInput, CreatedApiKey, CreatedTenant, CreateTenantInput, Page, PageQuery, RotateApiKeyInput, TenantView, WhoAmI } from "./schemas.ts";

/** Who is calling: the verified API key and its tenant. */
export interface AuthContext {
  tenant: { id: string; slug: string; name: string; createdAt: string };
  key: { id: string; name: string; prefix: string; scopes: string[] };
  /** The key's own rate limit, when it has one. */
  rateLimit?: { perSecond: number; burst: number };
  requestId: string;
  ip: string | null;
}

export interface Services {
  whoami(auth: AuthContext): Promise<WhoAmI>;
  apiKeys: {
    create(auth: AuthContext, input: CreateApiKeyInput): Promise<CreatedApiKey>;
    list(auth: AuthContext, page: PageQuery): Promise<Page<ApiKeyView>>;
    revoke(auth: AuthContext, id: string): Promise<ApiKeyView>;
    rotate(auth: AuthContext, id: string, input: RotateApiKeyInput): Promise<CreatedApiKey>;
  };
  agents: {
    list(auth: AuthContext, page: PageQuery & { status?: "online" | "offline" }): Promise<Page<AgentView>>;
    get(auth: AuthContext, id: string): Promise<AgentView>;
    createEnrollmentToken(auth: AuthContext, input: CreateEnrollmentTokenInput): Promise<CreatedEnrollmentToken>;
    revokeEnrollmentToken(auth: AuthContext, id: string): Promise<EnrollmentTokenView>;
    /** Removes the agent and revokes its NATS credentials (a compromised or retired host). */
    remove(auth: AuthContext, id: string): Promise<AgentView>;
  };
  agentUpgrades: {
    create(auth: AuthContext, input: CreateAgentUpgradeInput): Promise<AgentUpgradeView>;
    get(auth: AuthContext, id: string): Promise<AgentUpgradeView>;
    list(auth: AuthContext, page: PageQuery & { status?: AgentUpgradeStatus }): Promise<Page<AgentUpgradeView>>;
    cancel(auth: AuthContext, id: string): Promise<AgentUpgradeView>;
  };
  captures: {
    create(auth: AuthContext, input: CreateCaptureInput): Promise<CaptureView>;
    get(auth: AuthContext, id: string): Promise<CaptureView>;
    list(auth: AuthContext, page: PageQuery & { status?: CaptureStatus }): Promise<Page<CaptureView>>;
    stop(auth: AuthContext, id: string): Promise<CaptureView>;
    remove(auth: AuthContext, id: string): Promise<{ id: string; deletedRecords: number }>;
    records(auth: AuthContext, id: string, query: RecordsFilter & PageQuery): Promise<Page<StoredRecordView>>;
    stats(auth: AuthContext, id: string, query: RecordsFilter & { header?: string; bucketSeconds: number }): Promise<RecordStats>;
  };
  audit: {
    list(auth: AuthContext, page: PageQuery): Promise<Page<AuditEntryView>>;
  };
  tenants: {
    create(auth: AuthContext, input: CreateTenantInput): Promise<CreatedTenant>;
    list(auth: AuthContext, page: PageQuery): Promise<Page<TenantView>>;
  };
  publishedApis: {
    create(auth: AuthContext, input: CreatePublishedApiInput): Promise<PublishedApiView>;
    list(auth: AuthContext, page: PageQuery): Promise<Page<PublishedApiView>>;
    get(auth: AuthContext, id: string): Promise<PublishedApiView>;
    publish(auth: AuthContext, id: string): Promise<PublishedApiView>;
    deprecate(auth: AuthContext, id: string, input: DeprecatePublishedApiInput): Promise<PublishedApiView>;
    retire(auth: AuthContext, id: string): Promise<PublishedApiView>;
    remove(auth: AuthContext, id: string): Promise<{ id: string; deleted: true }>;
    createConsumer(auth: AuthContext, id: string, input: CreateConsumerInput): Promise<CreatedConsumer>;
    listConsumers(auth: AuthContext, id: string, page: PageQuery): Promise<Page<ConsumerView>>;
    revokeConsumer(auth: AuthContext, id: string, consumerId: string): Promise<ConsumerView>;
  };
}
