import type { ApiKeysTable } from "./api-keys.ts";
import type { AuditLogTable } from "./audit-log.ts";
import type { RecordsTable } from "./records.ts";
import type { TenantsTable } from "./tenants.ts";
import type { AgentsTable, EnrollmentTokensTable } from "./agents.ts";
import type { CaptureAgentsTable, CapturesTable, IngestedBatchesTable } from "./captures.ts";
import type { PublishedApiConsumersTable, PublishedApisTable } from "./published-apis.ts";
import type { AgentUpgradeAgentsTable, AgentUpgradesTable } from "./agent-upgrades.ts";
import type { AgentCredentialRevocationsTable } from "./agent-credential-revocations.ts";

export interface Database {
  tenants: TenantsTable;
  api_keys: ApiKeysTable;
  audit_log: AuditLogTable;
  records: RecordsTable;
  enrollment_tokens: EnrollmentTokensTable;
  agents: AgentsTable;
  captures: CapturesTable;
  capture_agents: CaptureAgentsTable;
  ingested_batches: IngestedBatchesTable;
  published_apis: PublishedApisTable;
  published_api_consumers: PublishedApiConsumersTable;
  agent_upgrades: AgentUpgradesTable;
  agent_upgrade_agents: AgentUpgradeAgentsTable;
  agent_credential_revocations: AgentCredentialRevocationsTable;
}

export type { Tenant, NewTenant } from "./tenants.ts";
export type { ApiKeyRow, NewApiKeyRow } from "./api-keys.ts";
export type { AuditEntry, NewAuditEntry } from "./audit-log.ts";
export type { RecordRow, NewRecordRow } from "./records.ts";
export type { AgentRow, EnrollmentTokenRow } from "./agents.ts";
export type { CaptureRow, CaptureAgentRow } from "./captures.ts";
export type { PublishedApiRow, NewPublishedApiRow, PublishedApiConsumerRow, NewPublishedApiConsumerRow } from "./published-apis.ts";
export type { AgentUpgradeRow, AgentUpgradeAgentRow } from "./agent-upgrades.ts";
export type { AgentCredentialRevocationRow } from "./agent-credential-revocations.ts";
