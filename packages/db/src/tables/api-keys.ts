import type { Generated, Insertable, Selectable } from "kysely";

export interface ApiKeysTable {
  id: string;
  tenant_id: string;
  name: string;
  /** First characters of the key, shown to users to recognise it ("hc_AbCd1234"). */
  prefix: string;
  /** Hex SHA-256 of the full key. The key itself is never stored. */
  hash: string;
  scopes: string[];
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
  created_by_key_id: string | null;
  /** Token bucket: refill rate and size; null = the server default. */
  rate_limit_per_second: number | null;
  rate_limit_burst: number | null;
  /** Set when the key was rotated: its successor (the old key works until expires_at). */
  rotated_to_key_id: string | null;
  created_at: Generated<Date>;
}
export type ApiKeyRow = Selectable<ApiKeysTable>;
export type NewApiKeyRow = Insertable<ApiKeysTable>;
