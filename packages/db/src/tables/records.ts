import type { Generated, Insertable, Selectable } from "kysely";

/**
 * Captured HTTP header blocks. Range-partitioned by day on `ts`
 * (records_pYYYYMMDD + records_default); retention drops whole partitions.
 */
export interface RecordsTable {
  id: Generated<string>;
  ts: Date;
  tenant_id: string;
  capture_id: string;
  agent_id: string;
  connection_id: string;
  kind: "request" | "response";
  direction: "ingress" | "egress";
  role: "client" | "server" | "unknown";
  src_ip: string;
  src_port: number;
  dst_ip: string;
  dst_port: number;
  pid: number;
  comm: string;
  method: string | null;
  path: string | null;
  version: string;
  status: number | null;
  latency_ms: number | null;
  /** Ordered [[name, value], ...] exactly as on the wire (after redaction). */
  headers: unknown;
  /**
   * What hasHeader / header.<name>=<value> filters find the record by (one GIN index): each distinct lower-cased
   * name and each "name=value"; `headerTerms(headers)` (header-terms.ts) is the rule. Every writer fills it.
   */
  header_terms: string[];
  header_bytes: number;
}
export type RecordRow = Selectable<RecordsTable>;
export type NewRecordRow = Insertable<RecordsTable>;
