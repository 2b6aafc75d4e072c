/**
 * Revoked agent NATS credentials. Inserted in the transaction that removes the agent; read
 * whole to build the account JWT pushed to nats-server.
 */
import { sql, type Transaction } from "kysely";
import type { Db } from "../client.ts";
import type { AgentCredentialRevocationRow, Database } from "../tables/index.ts";

type Executor = Db | Transaction<Database>;

/**
 * Revokes `natsPublicKey` as of now. A key revoked again (re-enrolled with the same key, then
 * removed) moves its time forward, which also revokes the JWT issued at re-enrollment.
 */
export async function revokeAgentCredential(db: Executor, revocation: { natsPublicKey: string; agentId: string; tenantId: string }): Promise<void> {
  await db
    .insertInto("agent_credential_revocations")
    .values({ nats_public_key: revocation.natsPublicKey, agent_id: revocation.agentId, tenant_id: revocation.tenantId })
    .onConflict((oc) => oc.column("nats_public_key").doUpdateSet({ agent_id: revocation.agentId, tenant_id: revocation.tenantId, revoked_at: sql`now()` }))
    .execute();
}

export async function listAgentCredentialRevocations(db: Executor): Promise<AgentCredentialRevocationRow[]> {
  return db.selectFrom("agent_credential_revocations").selectAll().orderBy("revoked_at").orderBy("nats_public_key").execute();
}
