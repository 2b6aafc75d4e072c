/**
 * The control plane's NATS connection. With NATS_ACCOUNT_SEED (operator mode) it
 * mints its own short credentials from the account key; otherwise it connects
 * as the server allows (local development without auth).
 */
import { mintUserCreds } from "@hdrcap/local-services/nats-auth";
import { connect, credsAuthenticator, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../logger.ts";

export async function connectNats(url: string, logger: Logger, { accountSeed, name = "hdrcap-control-plane" }: { accountSeed?: string; name?: string } = {}): Promise<NatsConnection> {
  const authenticator = accountSeed ? credsAuthenticator(new TextEncoder().encode(await mintUserCreds(accountSeed, name))) : undefined;
  const nc = await connect({
    servers: url.split(","),
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    timeout: 5000,
    ...(authenticator ? { authenticator } : {}),
  });
  (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect" || s.type === "reconnect" || s.type === "error") logger.warn({ nats: s.type }, "NATS connection status");
    }
  })().catch(() => {});
  return nc;
}
