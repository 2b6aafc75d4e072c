/**
 * Agent self-deregistration (`install.sh --uninstall`). No API key is involved: the agent
 * signs `deregistrationStatement(agentId, timestamp)` with the NATS user key it generated at
 * enrollment, and the signature must verify against the public key this control plane signed
 * the agent's JWT for. Only the holder of an agent's seed can therefore remove that agent, and
 * only that one. A timestamp window bounds replays; a replay after success finds no agent, and
 * a re-enrolled host has a new id and key, so an old signature never removes it.
 *
 * The agent's NATS user key is revoked in the same transaction (agent_credential_revocations);
 * the caller then pushes the revocations to nats-server (messaging/credential-revocations.ts).
 */
import { ApiError } from "@hdrcap/api";
import { revokeAgentCredential, type Db } from "@hdrcap/db";
import { fromPublic } from "@nats-io/nkeys";

/** How far the agent's clock may be from ours. */
export const DEREGISTRATION_MAX_SKEW_MS = 5 * 60_000;

/** Must match the agent's (apps/agent/src/install/deregistration.ts). */
export function deregistrationStatement(agentId: string, timestampMs: number): Uint8Array {
  return new TextEncoder().encode(`hdrcap-agent-deregister/v1\n${agentId}\n${timestampMs}`);
}

export interface DeregistrationRequest {
  agentId: string;
  timestamp: number;
  signature: string;
}

const REFUSED = "the signature does not prove this agent's identity (unknown agent, or not signed with its enrollment key)";

/**
 * Removes the agent: its row and, by cascade, its per-capture status rows, and revokes its
 * NATS credentials. Stored records keep their agent id. Errors say nothing about whether the
 * agent id exists.
 */
export async function deregisterAgent(db: Db, request: DeregistrationRequest, ip: string | null, now = Date.now()): Promise<{ agentId: string; tenantId: string }> {
  if (Math.abs(now - request.timestamp) > DEREGISTRATION_MAX_SKEW_MS) {
    throw new ApiError(
      "UNAUTHORIZED",
      `the request's timestamp is ${Math.round((request.timestamp - now) / 1000)} s off this control plane's clock (at most ${DEREGISTRATION_MAX_SKEW_MS / 1000} s allowed): check the host's time`,
    );
  }
  const signature = Buffer.from(request.signature, "base64url");
  return db.transaction().execute(async (tx) => {
    const agent = await tx.selectFrom("agents").select(["id", "tenant_id", "hostname", "nats_public_key"]).where("id", "=", request.agentId).forUpdate().executeTakeFirst();
    if (!agent || !verifies(agent.nats_public_key, deregistrationStatement(request.agentId, request.timestamp), signature)) {
      throw new ApiError("UNAUTHORIZED", REFUSED);
    }
    await tx.deleteFrom("agents").where("id", "=", agent.id).execute();
    await revokeAgentCredential(tx, { natsPublicKey: agent.nats_public_key, agentId: agent.id, tenantId: agent.tenant_id });
    await tx
      .insertInto("audit_log")
      .values({
        tenant_id: agent.tenant_id,
        actor_key_id: null,
        action: "agent.deregister",
        resource_type: "agent",
        resource_id: agent.id,
        request_id: null,
        ip,
        details: { hostname: agent.hostname, authenticatedBy: "agent-nkey" },
      })
      .execute();
    return { agentId: agent.id, tenantId: agent.tenant_id };
  });
}

function verifies(publicKey: string, statement: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64) return false;
  try {
    return fromPublic(publicKey).verify(statement, signature);
  } catch {
    return false;
  }
}
