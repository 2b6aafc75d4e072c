/**
 * Agents: enrollment tokens, enrollment (token → agent identity + NATS user JWT),
 * listing, presence (hello/heartbeat) and offline detection.
 */
import {
  ApiError,
  agentNatsPermissions,
  agentInboxPrefix,
  requireScope,
  type AgentView,
  type AuthContext,
  type CreateEnrollmentTokenInput,
  type EnrollInput,
  type EnrollmentTokenView,
  type EnrollResult,
  type HostFacts,
} from "@hdrcap/api";
import { revokeAgentCredential, type AgentRow, type Db, type EnrollmentTokenRow } from "@hdrcap/db";
import { mintUserJwt } from "@hdrcap/local-services/nats-auth";
import { sql } from "kysely";
import { audit } from "./audit.ts";
import { decodeCursor, pageFrom } from "./cursor.ts";
import { hashApiKey, looksLikeEnrollmentToken, newEnrollmentTokenSecret, newId } from "./ids.ts";

export interface AgentsServiceConfig {
  /** Account seed signing agent JWTs; enrollment is refused without it. */
  natsAccountSeed: string | undefined;
  /** NATS URLs handed to agents. */
  agentNatsServers: string[];
  /** Called after a removal committed a credential revocation (pushes it to nats-server; never throws). */
  onAgentCredentialRevoked?: (why: "agent-delete" | "reenroll") => Promise<unknown>;
}

export function agentView(a: AgentRow): AgentView {
  return {
    id: a.id,
    hostname: a.hostname,
    labels: a.labels,
    status: a.status,
    facts: a.facts as HostFacts,
    enrolledAt: a.enrolled_at.toISOString(),
    lastSeenAt: a.last_seen_at?.toISOString() ?? null,
  };
}

function tokenView(t: EnrollmentTokenRow): EnrollmentTokenView {
  return {
    id: t.id,
    prefix: t.prefix,
    labels: t.labels,
    maxUses: t.max_uses,
    uses: t.uses,
    expiresAt: t.expires_at.toISOString(),
    revokedAt: t.revoked_at?.toISOString() ?? null,
    createdAt: t.created_at.toISOString(),
  };
}

export function createAgentsService(db: Db, config: AgentsServiceConfig) {
  return {
    async createEnrollmentToken(auth: AuthContext, input: CreateEnrollmentTokenInput) {
      requireScope(auth.key.scopes, "agents:write");
      const secret = newEnrollmentTokenSecret();
      const row = await db
        .insertInto("enrollment_tokens")
        .values({
          id: newId("etk"),
          tenant_id: auth.tenant.id,
          prefix: secret.prefix,
          hash: secret.hash,
          labels: input.labels,
          max_uses: input.maxUses,
          expires_at: new Date(Date.now() + input.expiresInSeconds * 1000),
          revoked_at: null,
          created_by_key_id: auth.key.id,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await audit(db, auth, "enrollment_token.create", { type: "enrollment_token", id: row.id }, { labels: input.labels, maxUses: input.maxUses });
      return { enrollmentToken: tokenView(row), token: secret.token };
    },

    async revokeEnrollmentToken(auth: AuthContext, id: string) {
      requireScope(auth.key.scopes, "agents:write");
      const row = await db
        .updateTable("enrollment_tokens")
        .set({ revoked_at: sql<Date>`coalesce(revoked_at, now())` })
        .where("tenant_id", "=", auth.tenant.id)
        .where("id", "=", id)
        .returningAll()
        .executeTakeFirst();
      if (!row) throw new ApiError("NOT_FOUND", `no enrollment token ${id}`);
      await audit(db, auth, "enrollment_token.revoke", { type: "enrollment_token", id });
      return tokenView(row);
    },

    /** Exchange an enrollment token for an agent identity. The same host keeps its agent id. */
    async enroll(presentedToken: string | undefined, input: EnrollInput, ip: string | null): Promise<EnrollResult> {
      if (!config.natsAccountSeed) throw new ApiError("UNAVAILABLE", "this control plane has no NATS account key (NATS_ACCOUNT_SEED); it cannot enroll agents");
      if (!presentedToken || !looksLikeEnrollmentToken(presentedToken)) {
        throw new ApiError("UNAUTHORIZED", "missing or malformed enrollment token: send Authorization: Bearer hcet_…");
      }
      let replacedKey = false;
      const result = await db.transaction().execute(async (tx) => {
        const token = await tx.selectFrom("enrollment_tokens").selectAll().where("hash", "=", hashApiKey(presentedToken)).forUpdate().executeTakeFirst();
        if (!token) throw new ApiError("UNAUTHORIZED", "unknown enrollment token");
        if (token.revoked_at) throw new ApiError("UNAUTHORIZED", "this enrollment token was revoked");
        if (token.expires_at <= new Date()) throw new ApiError("UNAUTHORIZED", `this enrollment token expired at ${token.expires_at.toISOString()}`);
        if (token.uses >= token.max_uses) throw new ApiError("UNAUTHORIZED", `this enrollment token is used up (${token.max_uses} use${token.max_uses === 1 ? "" : "s"})`);
        await tx.updateTable("enrollment_tokens").set({ uses: sql<number>`uses + 1` }).where("id", "=", token.id).execute();

        const existing = await tx
          .selectFrom("agents")
          .selectAll()
          .where("tenant_id", "=", token.tenant_id)
          .where("machine_id", "=", input.facts.machineId)
          .executeTakeFirst();
        const labels = { ...(existing?.labels ?? {}), ...(input.labels ?? {}), ...token.labels };
        const agentId = existing?.id ?? newId("agt");
        if (existing) {
          // A re-enrolled host with a new key: the old key's credentials go, as on removal.
          if (existing.nats_public_key !== input.natsPublicKey) {
            await revokeAgentCredential(tx, { natsPublicKey: existing.nats_public_key, agentId, tenantId: token.tenant_id });
            replacedKey = true;
          }
          await tx
            .updateTable("agents")
            .set({ hostname: input.facts.hostname, facts: input.facts, labels: labels, nats_public_key: input.natsPublicKey })
            .where("id", "=", agentId)
            .execute();
        } else {
          await tx
            .insertInto("agents")
            .values({
              id: agentId,
              tenant_id: token.tenant_id,
              machine_id: input.facts.machineId,
              hostname: input.facts.hostname,
              labels: labels,
              facts: input.facts,
              nats_public_key: input.natsPublicKey,
              last_seen_at: null,
            })
            .execute();
        }
        await tx
          .insertInto("audit_log")
          .values({
            tenant_id: token.tenant_id,
            actor_key_id: null,
            action: existing ? "agent.reenroll" : "agent.enroll",
            resource_type: "agent",
            resource_id: agentId,
            request_id: null,
            ip,
            details: { enrollmentTokenId: token.id, hostname: input.facts.hostname },
          })
          .execute();
        const natsJwt = await mintUserJwt(config.natsAccountSeed!, `agent:${agentId}`, input.natsPublicKey, agentNatsPermissions(token.tenant_id, agentId));
        return { agentId, tenantId: token.tenant_id, natsServers: config.agentNatsServers, natsJwt, inboxPrefix: agentInboxPrefix(agentId) };
      });
      if (replacedKey) await config.onAgentCredentialRevoked?.("reenroll");
      return result;
    },

    async list(auth: AuthContext, page: { limit: number; cursor?: string; status?: "online" | "offline" }) {
      requireScope(auth.key.scopes, "agents:read");
      let q = db.selectFrom("agents").selectAll().where("tenant_id", "=", auth.tenant.id).orderBy("id").limit(page.limit + 1);
      const after = decodeCursor(page.cursor);
      if (after) q = q.where("id", ">", after);
      if (page.status) q = q.where("status", "=", page.status);
      return pageFrom(await q.execute(), page.limit, (r) => r.id, agentView);
    },

    async get(auth: AuthContext, id: string) {
      requireScope(auth.key.scopes, "agents:read");
      const row = await db.selectFrom("agents").selectAll().where("tenant_id", "=", auth.tenant.id).where("id", "=", id).executeTakeFirst();
      if (!row) throw new ApiError("NOT_FOUND", `no agent ${id}`);
      return agentView(row);
    },

    /**
     * Removes the agent (its capture status rows go with it; stored records keep its id) and
     * revokes its NATS user key in the same transaction, then has the revocation pushed.
     */
    async remove(auth: AuthContext, id: string): Promise<AgentView> {
      requireScope(auth.key.scopes, "agents:write");
      const removed = await db.transaction().execute(async (tx) => {
        const row = await tx.deleteFrom("agents").where("tenant_id", "=", auth.tenant.id).where("id", "=", id).returningAll().executeTakeFirst();
        if (!row) throw new ApiError("NOT_FOUND", `no agent ${id}`);
        await revokeAgentCredential(tx, { natsPublicKey: row.nats_public_key, agentId: row.id, tenantId: row.tenant_id });
        await audit(tx, auth, "agent.delete", { type: "agent", id }, { hostname: row.hostname, natsPublicKey: row.nats_public_key });
        return row;
      });
      await config.onAgentCredentialRevoked?.("agent-delete");
      return agentView(removed);
    },
  };
}

export type AgentsService = ReturnType<typeof createAgentsService>;

/** Presence: an agent said hello or sent a heartbeat. Returns false for an unknown agent. */
export async function markAgentSeen(db: Db, tenantId: string, agentId: string, facts?: HostFacts): Promise<boolean> {
  const res = await db
    .updateTable("agents")
    .set({ status: "online", last_seen_at: new Date(), ...(facts ? { facts: facts, hostname: facts.hostname } : {}) })
    .where("tenant_id", "=", tenantId)
    .where("id", "=", agentId)
    .executeTakeFirst();
  return Number(res.numUpdatedRows) > 0;
}

/** Agents silent for longer than `afterMs` become offline (they stay listed). */
export async function markSilentAgentsOffline(db: Db, afterMs: number): Promise<string[]> {
  const rows = await db
    .updateTable("agents")
    .set({ status: "offline" })
    .where("status", "=", "online")
    .where("last_seen_at", "<", new Date(Date.now() - afterMs))
    .returning("id")
    .execute();
  return rows.map((r) => r.id);
}
