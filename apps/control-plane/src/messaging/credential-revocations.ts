/**
 * Revoking removed agents' NATS credentials. Postgres holds the revoked user keys
 * (agent_credential_revocations); this module turns the whole list into the application
 * account JWT (the usual claims + `revocations`), signs it with the operator signing key and
 * pushes it to nats-server's full resolver on `$SYS.REQ.CLAIMS.UPDATE` as a system-account
 * user. nats-server then closes the revoked users' connections and refuses their JWTs.
 *
 * Every push sends the complete list, read under a transaction-scoped advisory lock held
 * until nats-server has answered, so pushes from several replicas are serialised and a stale
 * list never lands after a newer one. A failed push is logged and counted, never thrown: every
 * replica pushes again when its NATS connection comes back (a restarted nats-server starts
 * from its preloaded JWT, without revocations), and the scheduler role pushes at start and
 * every minute.
 */
import { listAgentCredentialRevocations, type Db } from "@hdrcap/db";
import { encodeApplicationAccountJwt } from "@hdrcap/local-services/nats-auth";
import { fromSeed } from "@nats-io/nkeys";
import { connect, credsAuthenticator, NoRespondersError, RequestError, type NatsConnection } from "@nats-io/transport-node";
import { sql } from "kysely";
import type { Logger } from "../logger.ts";
import type { Metrics } from "../metrics.ts";

export const CLAIMS_UPDATE_SUBJECT = "$SYS.REQ.CLAIMS.UPDATE";
const PUSH_LOCK = "hdrcap.nats-account-revocations";
const REPLY_TIMEOUT_MS = 5000;
export const DEFAULT_REPUSH_INTERVAL_MS = 60_000;

export type PushTrigger = "deregistration" | "agent-delete" | "reenroll" | "start" | "periodic" | "reconnect";

export interface CredentialRevocations {
  /**
   * Pushes the account JWT with every revocation in Postgres; true once nats-server accepted
   * it. Never throws. Concurrent calls share one push plus at most one more queued behind it,
   * which starts after they were made and so carries their revocations.
   */
  push(trigger: PushTrigger): Promise<boolean>;
  /** The scheduler role: push now and every `intervalMs`. */
  startRepushing(intervalMs?: number): () => Promise<void>;
  close(): Promise<void>;
}

export interface CredentialRevocationsConfig {
  natsUrl: string;
  /** .creds of a system-account user allowed to publish `$SYS.REQ.CLAIMS.UPDATE`. */
  systemCreds: string;
  operatorSigningSeed: string;
  /** The application account's seed (only its public key is used here). */
  accountSeed: string;
}

export async function startCredentialRevocations(db: Db, config: CredentialRevocationsConfig, logger: Logger, metrics: Metrics): Promise<CredentialRevocations> {
  const accountPublicKey = fromSeed(new TextEncoder().encode(config.accountSeed)).getPublicKey();
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: config.natsUrl.split(","),
      name: "hdrcap-control-plane-revocations",
      authenticator: credsAuthenticator(new TextEncoder().encode(config.systemCreds)),
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
      timeout: 5000,
    });
  } catch (err) {
    throw new Error(`cannot connect to NATS as the system-account user of NATS_SYSTEM_CREDS: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }

  // While NATS is away a push fails at once instead of making a deregistration wait out the
  // request timeout; the push on reconnect carries it.
  let connected = true;
  let closing = false;

  const pushOnce = async (trigger: PushTrigger): Promise<boolean> => {
    const started = Date.now();
    try {
      if (!connected) throw new Error("not connected to NATS (the revocations are pushed again on reconnect)");
      const revoked = await db.transaction().execute(async (tx) => {
        // Waiting behind another replica's push is fine; waiting forever is not.
        await sql`set local lock_timeout = '15s'`.execute(tx);
        await sql`select pg_advisory_xact_lock(hashtext(${PUSH_LOCK}))`.execute(tx);
        const rows = await listAgentCredentialRevocations(tx);
        const revocations = Object.fromEntries(rows.map((r) => [r.nats_public_key, Math.floor(r.revoked_at.getTime() / 1000)]));
        const jwt = await encodeApplicationAccountJwt(accountPublicKey, config.operatorSigningSeed, revocations);
        await requestClaimsUpdate(nc, jwt);
        return rows.length;
      });
      metrics.natsRevocationPushes.inc({ trigger, result: "ok" });
      logger.debug({ trigger, revoked, ms: Date.now() - started }, "pushed the NATS account JWT with agent credential revocations");
      return true;
    } catch (err) {
      metrics.natsRevocationPushes.inc({ trigger, result: "failed" });
      logger.error({ err, trigger }, "could not push agent credential revocations to nats-server (pushed again on NATS reconnect and by the scheduler role every HDRCAP_NATS_REVOCATION_REPUSH_SECONDS)");
      return false;
    }
  };

  let inFlight: Promise<boolean> | undefined;
  let queued: Promise<boolean> | undefined;
  const push = (trigger: PushTrigger): Promise<boolean> => {
    if (!inFlight) {
      inFlight = pushOnce(trigger).finally(() => {
        inFlight = undefined;
      });
      return inFlight;
    }
    queued ??= inFlight.then(() => {
      queued = undefined;
      return push(trigger);
    });
    return queued;
  };

  (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") connected = false;
      if (s.type === "reconnect") {
        connected = true;
        // A restarted nats-server may have started from the preloaded JWT, without revocations.
        if (!closing) void push("reconnect");
      }
    }
  })().catch(() => {});

  return {
    push,
    startRepushing(intervalMs = DEFAULT_REPUSH_INTERVAL_MS) {
      void push("start");
      const timer = setInterval(() => void push("periodic"), intervalMs);
      return async () => {
        clearInterval(timer);
        await Promise.allSettled([inFlight, queued]);
      };
    },
    async close() {
      closing = true;
      await Promise.allSettled([inFlight, queued]);
      await nc.drain().catch(() => {});
    },
  };
}

interface ClaimsUpdateReply {
  data?: { account?: string; code?: number; message?: string };
  error?: { account?: string; code?: number; description?: string };
}

/** One request/reply on the claims update subject; throws unless nats-server stored the JWT. */
async function requestClaimsUpdate(nc: NatsConnection, jwt: string): Promise<void> {
  let reply: ClaimsUpdateReply;
  try {
    reply = (await nc.request(CLAIMS_UPDATE_SUBJECT, jwt, { timeout: REPLY_TIMEOUT_MS })).json<ClaimsUpdateReply>();
  } catch (err) {
    if (err instanceof NoRespondersError || (err instanceof RequestError && err.isNoResponders())) {
      throw new Error(`no nats-server answered ${CLAIMS_UPDATE_SUBJECT}: is it running the NATS-based full resolver (resolver: { type: full })?`, { cause: err });
    }
    throw err;
  }
  if (reply.error) throw new Error(`nats-server refused the account JWT: ${reply.error.description ?? "no description"} (code ${reply.error.code ?? "?"})`);
  if (reply.data?.code !== 200) throw new Error(`unexpected reply to the account JWT update: ${JSON.stringify(reply)}`);
}
