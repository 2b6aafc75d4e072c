import type { Generated, Insertable, Selectable } from "kysely";

/** A capture's records published as a named API, served at /apis/<tenant-slug>/<name>. */
export interface PublishedApisTable {
  id: string;
  tenant_id: string;
  /** Slug, unique per tenant; the last segment of the public URL. */
  name: string;
  capture_id: string;
  description: string | null;
  /** The fixed records filter (RecordsFilter minus time window and paging). */
  filter: unknown;
  /** The record fields served, in the order the tenant chose. */
  fields: string[];
  /** draft | published | deprecated | retired */
  state: Generated<string>;
  sunset_at: Date | null;
  published_at: Date | null;
  deprecated_at: Date | null;
  retired_at: Date | null;
  created_by_key_id: string | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}
export type PublishedApiRow = Selectable<PublishedApisTable>;
export type NewPublishedApiRow = Insertable<PublishedApisTable>;

/** A consumer key of one published API. The key itself is never stored. */
export interface PublishedApiConsumersTable {
  id: string;
  api_id: string;
  tenant_id: string;
  name: string;
  /** First characters of the key ("hcc_AbCd1234"), for recognising it. */
  prefix: string;
  /** Hex SHA-256 of the full key. */
  hash: string;
  /** Token bucket for this consumer; null = the server default. */
  rate_limit_per_second: number | null;
  rate_limit_burst: number | null;
  revoked_at: Date | null;
  created_by_key_id: string | null;
  created_at: Generated<Date>;
}
export type PublishedApiConsumerRow = Selectable<PublishedApiConsumersTable>;
export type NewPublishedApiConsumerRow = Insertable<PublishedApiConsumersTable>;
