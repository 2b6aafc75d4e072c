/** Every migration, in order. Names are ISO timestamps; add new ones at the end. */
import type { Migration } from "kysely";
import * as tenantsAndKeys from "./2026-11-25T15-00-00_tenants-and-keys.ts";
import * as records from "./2026-11-25T15-30-00_records.ts";
import * as agentsAndCaptures from "./2026-11-25T16-00-00_agents-and-captures.ts";
import * as apiKeyLimits from "./2026-11-25T17-00-00_api-key-limits.ts";
import * as captureSource from "./2026-11-25T17-30-00_capture-source.ts";
import * as publishedApis from "./2026-11-25T18-00-00_published-apis.ts";
import * as recordHeaderPairs from "./2026-11-25T19-00-00_record-header-pairs.ts";
import * as agentUpgrades from "./2026-11-25T20-00-00_agent-upgrades.ts";
import * as recordHeaderTerms from "./2026-11-25T21-00-00_record-header-terms.ts";
import * as agentUpgradeCancel from "./2026-11-25T22-00-00_agent-upgrade-cancel.ts";
import * as agentCredentialRevocations from "./2026-11-25T23-00-00_agent-credential-revocations.ts";

export const migrations: Record<string, Migration> = {
  "2026-11-25T15-00-00_tenants-and-keys": tenantsAndKeys,
  "2026-11-25T15-30-00_records": records,
  "2026-11-25T16-00-00_agents-and-captures": agentsAndCaptures,
  "2026-11-25T17-00-00_api-key-limits": apiKeyLimits,
  "2026-11-25T17-30-00_capture-source": captureSource,
  "2026-11-25T18-00-00_published-apis": publishedApis,
  "2026-11-25T19-00-00_record-header-pairs": recordHeaderPairs,
  "2026-11-25T20-00-00_agent-upgrades": agentUpgrades,
  "2026-11-25T21-00-00_record-header-terms": recordHeaderTerms,
  "2026-11-25T22-00-00_agent-upgrade-cancel": agentUpgradeCancel,
  "2026-11-25T23-00-00_agent-credential-revocations": agentCredentialRevocations,
};
