/**
 * `hdrcap-agent run` as a process: logger, identity (stored or enrolled), metrics
 * endpoint, NATS link, daemon, and signal handling. Resolves with the exit code.
 */
import type { Server } from "node:http";
import { join } from "node:path";
import { destination, pino, type Logger } from "pino";
import { runSystemCheck } from "../capture/system-check.ts";
import { EnrollmentError } from "../enrollment/enroll-client.ts";
import { ensureIdentity } from "../enrollment/ensure-identity.ts";
import { collectHostFacts } from "../enrollment/host-facts.ts";
import { installedBundle } from "../install/self-update.ts";
import { connectNatsLink } from "../messaging/nats-link.ts";
import { AgentDaemon } from "./agent-daemon.ts";
import type { AgentMetrics } from "./agent-metrics.ts";
import type { CaptureFactory } from "./capture-factory.ts";
import { createUpgradeHandler } from "./upgrade-handler.ts";

export interface RunAgentOptions {
  controlPlaneUrl: string;
  token?: string;
  stateDir: string;
  labels?: Record<string, string>;
  metricsPort?: number;
  logLevel: string;
  desiredIntervalMs?: number;
  heartbeatIntervalMs?: number;
  maxQueuedRecords?: number;
  /** Bytes held in memory by sealed record batches (their reused slabs, see RecordPublisherOptions); more go to the spool. */
  maxQueuedBytes?: number;
  /** The disk spool for batches over the memory bounds. Default `<stateDir>/spool`. */
  spoolDir?: string;
  /** Bytes of the spool on disk at most (over it, batches are dropped and counted); 0 disables the spool. Default 1 GiB. */
  spoolMaxBytes?: number;
  flushTimeoutMs?: number;
  /**
   * The installed service's configuration file (`hdrcap-agent service`): enables the
   * `upgrade` command, which records the new version there. Without it upgrades are refused.
   */
  serviceConfigPath?: string;
  /** Defaults to the kernel (eBPF) capture engine. */
  captureFactory?: CaptureFactory;
  logger?: Logger;
}

export async function runAgent(options: RunAgentOptions): Promise<number> {
  const logger = options.logger ?? pino({ level: options.logLevel, base: { app: "hdrcap-agent" } }, destination(2));
  let shutdown: ((signal: string) => void) | null = null;
  let signalled: string | null = null;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      logger.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    signalled = signal;
    if (shutdown) shutdown(signal);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const check = runSystemCheck();
  if (!check.ok) logger.warn({ problems: check.problems }, "this host cannot capture yet; captures will report the error");
  // An installed agent reports its bundle's version (what `hdrcap agents upgrade` compares).
  const bundle = installedBundle();
  const facts = { ...collectHostFacts({ stateDir: options.stateDir, check }), ...(bundle ? { agentVersion: bundle.version } : {}) };

  let identity;
  try {
    ({ identity } = await ensureIdentity({
      controlPlaneUrl: options.controlPlaneUrl,
      stateDir: options.stateDir,
      token: options.token,
      labels: options.labels,
      facts,
      logger,
    }));
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    logger.fatal({ err: message }, "enrollment failed");
    process.stderr.write(`hdrcap-agent: ${message}\n`);
    return err instanceof EnrollmentError ? 2 : 1;
  }
  if (signalled) return 0;

  // prom-client (its own chunk of the bundle) is loaded only with a metrics port: nothing reads the registry otherwise.
  let metrics: AgentMetrics | undefined;
  let metricsServer: Server | null = null;
  if (options.metricsPort !== undefined) {
    const { AgentMetrics, serveMetrics } = await import("./agent-metrics.ts");
    metrics = new AgentMetrics({ defaultMetrics: true });
    metricsServer = await serveMetrics(metrics, options.metricsPort);
    logger.info({ port: options.metricsPort }, "serving metrics at /metrics");
  }

  let daemon: AgentDaemon | null = null;
  logger.info({ servers: identity.natsServers, agentId: identity.agentId }, "connecting to NATS");
  const linkPromise = connectNatsLink({
    servers: identity.natsServers,
    credentials: { jwt: identity.natsJwt, seed: identity.natsSeed },
    inboxPrefix: identity.inboxPrefix,
    name: `hdrcap-agent ${identity.agentId}`,
    logger,
    onConnectedChange: (up) => {
      metrics?.natsConnected.set(up ? 1 : 0);
      if (up) daemon?.onReconnected();
    },
  });
  // A signal while the first connection is still being retried ends the process right away.
  const early = new Promise<"signal">((resolve) => {
    shutdown = () => resolve("signal");
    if (signalled) resolve("signal");
  });
  const first = await Promise.race([linkPromise, early]);
  if (first === "signal") {
    metricsServer?.close();
    return 0;
  }
  const link = first;

  const captureFactory = options.captureFactory ?? (await import("./kernel-capture-factory.ts")).kernelCaptureFactory;
  let exitCode = 0;
  const onUpgrade =
    bundle && options.serviceConfigPath
      ? createUpgradeHandler({
          bundle,
          controlPlaneUrl: options.controlPlaneUrl,
          configPath: options.serviceConfigPath,
          logger,
          exit: (code) => {
            exitCode = code;
            shutdown?.("upgrade");
          },
        })
      : undefined;
  daemon = new AgentDaemon({
    tenantId: identity.tenantId,
    agentId: identity.agentId,
    link,
    facts,
    captureFactory,
    logger,
    metrics,
    desiredIntervalMs: options.desiredIntervalMs,
    heartbeatIntervalMs: options.heartbeatIntervalMs,
    publisher: {
      maxQueuedRecords: options.maxQueuedRecords,
      maxQueuedBytes: options.maxQueuedBytes,
      spool: options.spoolMaxBytes === 0 ? undefined : { dir: options.spoolDir ?? join(options.stateDir, "spool"), maxBytes: options.spoolMaxBytes },
    },
    onUpgrade,
  });
  daemon.start();
  logger.info({ agentId: identity.agentId, tenantId: identity.tenantId, version: facts.agentVersion }, "agent running");

  const running = daemon;
  return new Promise<number>((resolve) => {
    let stopping = false;
    shutdown = (signal) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, "shutting down");
      running
        .stop(options.flushTimeoutMs ?? 10_000)
        .catch((err: unknown) => logger.error({ err: (err as Error).message }, "shutdown failed"))
        .finally(() => {
          metricsServer?.close();
          resolve(exitCode);
        });
    };
    if (signalled) shutdown(signalled);
    void link.closed.then((err) => {
      if (stopping) return;
      // Closed without our asking: the server refused us for good (e.g. revoked or expired credentials).
      logger.fatal({ err: err?.message }, "NATS connection closed; exiting");
      stopping = true;
      void running.stop(1_000).finally(() => {
        metricsServer?.close();
        resolve(1);
      });
    });
  });
}
