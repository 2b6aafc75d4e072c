import type { Generated, Selectable } from "kysely";

export interface CapturesTable {
  id: string;
  tenant_id: string;
  name: string;
  protocol: string;
  selector: unknown;
  source: Generated<unknown>;
  filter: unknown;
  headers: unknown;
  limits: unknown;
  hash_key: string;
  status: Generated<string>;
  status_reason: string | null;
  max_records: string | null;
  stored_records: Generated<string>;
  expires_at: Date | null;
  stop_requested_at: Date | null;
  ended_at: Date | null;
  created_by_key_id: string | null;
  created_at: Generated<Date>;
}
export type CaptureRow = Selectable<CapturesTable>;

export interface CaptureAgentsTable {
  capture_id: string;
  agent_id: string;
  tenant_id: string;
  status: Generated<string>;
  message: string | null;
  counters: Generated<unknown>;
  stored: Generated<string>;
  updated_at: Generated<Date>;
}
export type CaptureAgentRow = Selectable<CaptureAgentsTable>;

export interface IngestedBatchesTable {
  batch_id: string;
  capture_id: string;
  agent_id: string;
  records: number;
  ingested_at: Generated<Date>;
}
