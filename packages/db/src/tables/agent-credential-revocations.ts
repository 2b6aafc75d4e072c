import type { Generated, Selectable } from "kysely";

/** A revoked agent NATS user key; see the 2026-11-25T23-00-00 migration. */
export interface AgentCredentialRevocationsTable {
  nats_public_key: string;
  agent_id: string;
  tenant_id: string;
  revoked_at: Generated<Date>;
}
export type AgentCredentialRevocationRow = Selectable<AgentCredentialRevocationsTable>;
