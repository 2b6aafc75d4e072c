import type { Generated, Selectable } from "kysely";

export interface EnrollmentTokensTable {
  id: string;
  tenant_id: string;
  prefix: string;
  hash: string;
  labels: Record<string, string>;
  max_uses: number;
  uses: Generated<number>;
  expires_at: Date;
  revoked_at: Date | null;
  created_by_key_id: string | null;
  created_at: Generated<Date>;
}
export type EnrollmentTokenRow = Selectable<EnrollmentTokensTable>;

export interface AgentsTable {
  id: string;
  tenant_id: string;
  machine_id: string;
  hostname: string;
  labels: Record<string, string>;
  facts: unknown;
  status: Generated<"online" | "offline">;
  nats_public_key: string;
  enrolled_at: Generated<Date>;
  last_seen_at: Date | null;
}
export type AgentRow = Selectable<AgentsTable>;
