import type { Generated, Selectable } from "kysely";

export interface AgentUpgradesTable {
  id: string;
  tenant_id: string;
  target_version: string;
  bundle_file: string;
  bundle_sha256: string;
  /** bigint: postgres.js returns it as a string. */
  bundle_size: string | number;
  selector: unknown;
  batch_size: number;
  timeout_seconds: number;
  batch_count: number;
  status: Generated<"running" | "completed" | "failed" | "cancelled">;
  status_reason: string | null;
  current_batch: number | null;
  batch_started_at: Date | null;
  created_by_key_id: string | null;
  created_at: Generated<Date>;
  finished_at: Date | null;
}
export type AgentUpgradeRow = Selectable<AgentUpgradesTable>;

export interface AgentUpgradeAgentsTable {
  upgrade_id: string;
  agent_id: string;
  tenant_id: string;
  hostname: string;
  batch: number | null;
  status: "pending" | "upgrading" | "upgraded" | "failed" | "skipped";
  from_version: string | null;
  message: string | null;
  commanded_at: Date | null;
  updated_at: Generated<Date>;
}
export type AgentUpgradeAgentRow = Selectable<AgentUpgradeAgentsTable>;
