/**
 * The agent's NATS connection: authenticated with its user JWT and the nkey seed
 * that never left the host, replies under its own inbox prefix (the only one its
 * permissions allow), and reconnecting forever. Tracks whether it is connected
 * right now, so publishers wait instead of piling data into the client's buffer.
 */
import { connect, jwtAuthenticator, type NatsConnection, type Status } from "@nats-io/transport-node";
import type { Logger } from "pino";

export interface NatsLinkOptions {
  servers: string[];
  /** User JWT and nkey seed; omitted for an unauthenticated server (tests). */
  credentials?: { jwt: string; seed: string };
  inboxPrefix?: string;
  name?: string;
  logger: Logger;
  /** Called on every transition of `connected`. */
  onConnectedChange?: (connected: boolean) => void;
}

export interface NatsLink {
  readonly nc: NatsConnection;
  /** True while the client has a live connection to a server. */
  connected(): boolean;
  /** Resolves when the connection is closed for good (drain, close, or a fatal error). */
  readonly closed: Promise<Error | undefined>;
}

export async function connectNatsLink(options: NatsLinkOptions): Promise<NatsLink> {
  const { logger } = options;
  const nc = await connect({
    servers: options.servers,
    ...(options.credentials
      ? { authenticator: jwtAuthenticator(options.credentials.jwt, new TextEncoder().encode(options.credentials.seed)) }
      : {}),
    ...(options.inboxPrefix ? { inboxPrefix: options.inboxPrefix } : {}),
    name: options.name ?? "hdrcap-agent",
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1_000,
    // The first connection is retried like a reconnect: an agent may start before NATS does.
    waitOnFirstConnect: true,
  });
  let up = true;
  const set = (value: boolean) => {
    if (value === up) return;
    up = value;
    options.onConnectedChange?.(value);
  };
  logger.info({ server: nc.getServer() }, "connected to NATS");
  options.onConnectedChange?.(true);
  void (async () => {
    for await (const s of nc.status()) logStatus(logger, s, set);
  })().catch(() => {});
  const closed = nc.closed().then((err) => {
    set(false);
    return err instanceof Error ? err : undefined;
  });
  return { nc, connected: () => up && !nc.isClosed(), closed };
}

function logStatus(logger: Logger, s: Status, set: (up: boolean) => void): void {
  switch (s.type) {
    case "disconnect":
      set(false);
      logger.warn({ server: s.server }, "disconnected from NATS; reconnecting");
      break;
    case "reconnect":
      set(true);
      logger.info({ server: s.server }, "reconnected to NATS");
      break;
    case "error":
      logger.error({ err: s.error.message }, "NATS error");
      break;
    case "staleConnection":
      logger.warn("NATS connection stale");
      break;
    default:
      break;
  }
}
