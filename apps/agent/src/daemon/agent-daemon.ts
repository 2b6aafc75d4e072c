/**
 * The long-running agent: says hello, keeps its captures converged on the
 * control plane's desired state (periodically and on `sync`), streams records to
 * JetStream, heartbeats per-capture status and completeness, and shuts down
 * without losing count of a record.
 */
import { NATS_SUBJECTS, type AgentCaptureReport, type AgentCommand, type AgentCommandReply, type AgentUpgradeCommand, type DesiredState } from "@hdrcap/api/nats";
import type { HostFacts } from "@hdrcap/api/agents";
import type { Logger } from "pino";
import { ControlChannel } from "../messaging/control-channel.ts";
import { createJetStreamBatchSink } from "../messaging/jetstream-batch-sink.ts";
import type { NatsLink } from "../messaging/nats-link.ts";
import { RecordPublisher, type BatchSink, type RecordPublisherOptions } from "../messaging/record-publisher.ts";
import type { AgentMetrics } from "./agent-metrics.ts";
import type { CaptureFactory } from "./capture-factory.ts";
import { CaptureSupervisor } from "./capture-supervisor.ts";

export interface AgentDaemonOptions {
  tenantId: string;
  agentId: string;
  link: NatsLink;
  facts: HostFacts;
  captureFactory: CaptureFactory;
  logger: Logger;
  metrics?: AgentMetrics;
  /** Desired state is re-fetched this often. Default 10 s. */
  desiredIntervalMs?: number;
  /** Heartbeats are published this often. Default 5 s. */
  heartbeatIntervalMs?: number;
  /** Timeout of hello/desired requests. Default 5 s. */
  requestTimeoutMs?: number;
  /** Finished captures stay in heartbeats at least this long. Default 60 s. */
  reportRetentionMs?: number;
  /** Publisher tuning (memory bounds, disk spool, batch limits, concurrency). */
  publisher?: Omit<RecordPublisherOptions, "sink" | "batchIdPrefix" | "observer">;
  /** Replaces the JetStream sink (tests). */
  sink?: BatchSink;
  /** Handles the `upgrade` command; without it (not an installed service) the agent refuses upgrades. */
  onUpgrade?: (command: AgentUpgradeCommand) => Promise<AgentCommandReply>;
}

export class AgentDaemon {
  readonly publisher: RecordPublisher;
  readonly supervisor: CaptureSupervisor;
  private readonly channel: ControlChannel;
  private readonly log: Logger;
  private readonly timers: NodeJS.Timeout[] = [];
  private helloDone = false;
  private refreshing: Promise<void> | null = null;
  private followUp: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;
  private desiredFailures = 0;
  /** Drops not yet logged, per capture and reason: logged at most every 5 s while NATS is down. */
  private unloggedDrops = new Map<string, number>();
  private dropLogTimer: NodeJS.Timeout | null = null;

  constructor(private readonly options: AgentDaemonOptions) {
    const { link, metrics } = options;
    this.log = options.logger;
    const sink =
      options.sink ??
      createJetStreamBatchSink(link.nc, {
        subject: NATS_SUBJECTS.records(options.tenantId, options.agentId),
        isConnected: () => link.connected(),
      });
    this.publisher = new RecordPublisher({
      ...options.publisher,
      sink,
      batchIdPrefix: options.agentId,
      observer: {
        batchPublished: (b) => {
          metrics?.batchesPublished.inc();
          metrics?.recordsPublished.inc(b.count);
        },
        publishFailed: (b, err) => {
          metrics?.publishErrors.inc();
          this.log.debug({ batchId: b.batchId, err: (err as Error).message }, "batch publish failed; will retry");
        },
        recordsDropped: (captureId, count, why) => {
          metrics?.recordsDropped.inc({ reason: why }, count);
          this.logDropped(captureId, count, why);
        },
        batchSpooled: (b) => {
          metrics?.batchesSpooled.inc();
          metrics?.recordsSpooled.inc(b.count);
          metrics?.bytesSpooled.inc(b.payload.length);
        },
        batchReplayed: (b) => metrics?.recordsReplayed.inc(b.count),
        spoolCorrupt: (frames, bytes) => {
          metrics?.spoolCorruptFrames.inc(frames);
          this.log.warn({ frames, bytes }, "skipped a torn or corrupt frame in the record spool");
        },
      },
    });
    this.channel = new ControlChannel(link.nc, { tenantId: options.tenantId, agentId: options.agentId, requestTimeoutMs: options.requestTimeoutMs });
    this.supervisor = new CaptureSupervisor({
      factory: options.captureFactory,
      publisher: this.publisher,
      logger: this.log,
      reportRetentionMs: options.reportRetentionMs,
      onStatusChange: () => this.sendHeartbeat(true),
      onRecordsProduced: (_id, n) => metrics?.recordsProduced.inc(n),
    });
  }

  /** Subscribes to commands, says hello, starts the timers. Does not wait for the control plane. */
  start(): void {
    this.channel.onCommand(
      (command) => this.onCommand(command),
      (err) => this.log.warn({ err: (err as Error).message }, "bad command"),
    );
    const desiredEvery = this.options.desiredIntervalMs ?? 10_000;
    const heartbeatEvery = this.options.heartbeatIntervalMs ?? 5_000;
    this.timers.push(setInterval(() => void this.refreshDesired(), desiredEvery));
    this.timers.push(setInterval(() => void this.sendHeartbeat(false), heartbeatEvery));
    this.timers.push(setInterval(() => this.updateGauges(), 1_000));
    void this.refreshDesired();
  }

  /** Called by whoever owns the link when the connection comes back: say hello again, resume publishing. */
  onReconnected(): void {
    this.helloDone = false;
    this.publisher.kick();
    void this.refreshDesired();
  }

  /**
   * Fetches the desired state (hello first, until one succeeded) and reconciles. Never
   * throws. When a fetch is already in flight it may predate the caller's reason to ask
   * (a sync command), so one more fetch is queued after it; concurrent callers share it.
   */
  refreshDesired(): Promise<void> {
    if (this.stopping) return Promise.resolve();
    if (!this.refreshing) {
      this.refreshing = this.fetchAndReconcile().finally(() => {
        this.refreshing = null;
      });
      return this.refreshing;
    }
    this.followUp ??= this.refreshing.then(() => {
      this.followUp = null;
      return this.refreshDesired();
    });
    return this.followUp;
  }

  private async fetchAndReconcile(): Promise<void> {
    let desired: DesiredState;
    try {
      desired = this.helloDone ? await this.channel.desired() : await this.channel.hello(this.options.facts);
      if (!this.helloDone) this.log.info({ captures: desired.captures.length }, "hello acknowledged");
      this.helloDone = true;
      this.desiredFailures = 0;
    } catch (err) {
      // Keep running what runs; the next tick retries.
      const level = this.desiredFailures++ === 0 ? "warn" : "debug";
      this.log[level]({ err: (err as Error).message }, "fetching desired state failed; keeping current captures");
      return;
    }
    if (this.stopping) return;
    try {
      await this.supervisor.reconcile(desired.captures);
    } catch (err) {
      this.log.error({ err: (err as Error).message }, "reconcile failed");
    }
    this.updateGauges();
  }

  reports(): AgentCaptureReport[] {
    return this.supervisor.reports();
  }

  /**
   * Stops captures (their final records go to the publisher), flushes the publisher
   * for at most `flushTimeoutMs` (the rest is counted as dropped), sends a final
   * heartbeat and drains the connection.
   */
  stop(flushTimeoutMs = 10_000): Promise<void> {
    this.stopping ??= (async () => {
      for (const t of this.timers) clearInterval(t);
      this.channel.close();
      await this.refreshing;
      await this.supervisor.stopAll();
      const abandoned = await this.publisher.close(flushTimeoutMs);
      if (abandoned > 0) this.log.error({ records: abandoned }, "records not published before shutdown (counted as dropped)");
      const kept = this.publisher.recordsKeptInSpool;
      if (kept > 0) this.log.warn({ records: kept }, "records not published before shutdown kept in the spool for the next start");
      if (this.dropLogTimer) clearTimeout(this.dropLogTimer);
      this.flushDropLog();
      this.updateGauges();
      await this.sendHeartbeat(true);
      const { nc } = this.options.link;
      if (!nc.isClosed()) {
        await Promise.race([nc.drain().catch(() => {}), delay(5_000)]);
        if (!nc.isClosed()) await nc.close();
      }
      this.log.info("agent stopped");
    })();
    return this.stopping;
  }

  private async onCommand(command: AgentCommand): Promise<AgentCommandReply> {
    switch (command.type) {
      case "sync":
        this.log.info("sync requested");
        // Answer within a bound even when reconcile is slow (detaching takes seconds).
        await Promise.race([this.refreshDesired(), delay(2_000)]);
        return { v: 1, ok: true, captures: this.reports() };
      case "upgrade":
        this.log.info({ version: command.version, upgradeId: command.upgradeId }, "upgrade requested");
        if (!this.options.onUpgrade) {
          return { v: 1, ok: false, captures: [], error: "this agent does not run as an installed service (hdrcap-agent service); it cannot upgrade itself" };
        }
        return this.options.onUpgrade(command);
    }
  }

  private async sendHeartbeat(flush: boolean): Promise<void> {
    const { link } = this.options;
    if (!link.connected() || link.nc.isClosed()) return;
    try {
      this.channel.heartbeat(this.reports());
      if (flush) await Promise.race([link.nc.flush(), delay(1_000)]);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, "heartbeat failed");
    }
  }

  private logDropped(captureId: string, count: number, why: string): void {
    const key = `${captureId}\u0000${why}`;
    this.unloggedDrops.set(key, (this.unloggedDrops.get(key) ?? 0) + count);
    if (this.dropLogTimer) return;
    // The first drop is logged at once; later ones are summed over 5 s.
    this.flushDropLog();
    this.dropLogTimer = setTimeout(() => {
      this.dropLogTimer = null;
      this.flushDropLog();
    }, 5_000);
    this.dropLogTimer.unref();
  }

  private flushDropLog(): void {
    for (const [key, count] of this.unloggedDrops) {
      const [captureId, why] = key.split("\u0000");
      this.log.warn({ captureId, count, why, queuedRecords: this.publisher.heldRecords }, "records dropped in agent");
    }
    this.unloggedDrops.clear();
  }

  private updateGauges(): void {
    const m = this.options.metrics;
    if (!m) return;
    m.capturesRunning.set(this.supervisor.runningCount);
    m.queuedRecords.set(this.publisher.heldRecords);
    m.queuedBytes.set(this.publisher.heldBytes);
    m.spoolBytes.set(this.publisher.spoolBytes);
    m.natsConnected.set(this.options.link.connected() ? 1 : 0);
  }
}

const delay = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref();
  });
