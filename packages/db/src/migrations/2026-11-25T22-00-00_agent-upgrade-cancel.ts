import { sql, type Kysely } from "kysely";

/**
 * A rollout can be cancelled (`POST /v1/agent-upgrades/{id}/cancel`): `cancelled` joins the
 * statuses. Only `running` holds the one-per-tenant index, so a cancelled rollout makes room
 * for the next at once.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table agent_upgrades drop constraint agent_upgrades_status_check`.execute(db);
  await sql`alter table agent_upgrades add constraint agent_upgrades_status_check check (status in ('running', 'completed', 'failed', 'cancelled'))`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  // The old constraint has no place for them: a cancelled rollout is recorded as failed, saying why.
  await sql`update agent_upgrades set status = 'failed', status_reason = coalesce(status_reason, 'cancelled') where status = 'cancelled'`.execute(db);
  await sql`alter table agent_upgrades drop constraint agent_upgrades_status_check`.execute(db);
  await sql`alter table agent_upgrades add constraint agent_upgrades_status_check check (status in ('running', 'completed', 'failed'))`.execute(db);
}
