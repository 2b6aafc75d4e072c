/**
 * The agent's Prometheus metrics (own registry, so several agents can live in one
 * test process) and the tiny HTTP server exposing them at /metrics.
 */
import { createServer, type Server } from "node:http";
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";

export class AgentMetrics {
  readonly registry = new Registry();
  readonly recordsProduced = new Counter({ name: "hdrcap_agent_records_produced_total", help: "Records produced by captures", registers: [this.registry] });
  readonly recordsPublished = new Counter({ name: "hdrcap_agent_records_published_total", help: "Records acknowledged by JetStream", registers: [this.registry] });
  readonly recordsDropped = new Counter({
    name: "hdrcap_agent_records_dropped_total",
    help: "Records dropped in the agent",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  readonly batchesPublished = new Counter({ name: "hdrcap_agent_batches_published_total", help: "Record batches acknowledged by JetStream", registers: [this.registry] });
  readonly publishErrors = new Counter({ name: "hdrcap_agent_publish_errors_total", help: "Failed batch publishes (retried)", registers: [this.registry] });
  readonly queuedRecords = new Gauge({ name: "hdrcap_agent_queued_records", help: "Records held awaiting publish (memory and spool)", registers: [this.registry] });
  readonly queuedBytes = new Gauge({ name: "hdrcap_agent_queued_bytes", help: "Encoded bytes of record batches held in memory awaiting publish", registers: [this.registry] });
  readonly spoolBytes = new Gauge({ name: "hdrcap_agent_spool_bytes", help: "Bytes of record batch spool segments on disk", registers: [this.registry] });
  readonly batchesSpooled = new Counter({ name: "hdrcap_agent_spooled_batches_total", help: "Record batches written to the disk spool (over the memory bound)", registers: [this.registry] });
  readonly recordsSpooled = new Counter({ name: "hdrcap_agent_spooled_records_total", help: "Records written to the disk spool", registers: [this.registry] });
  readonly bytesSpooled = new Counter({ name: "hdrcap_agent_spooled_bytes_total", help: "Encoded batch bytes written to the disk spool", registers: [this.registry] });
  readonly recordsReplayed = new Counter({ name: "hdrcap_agent_spool_replayed_records_total", help: "Records read back from a spool left by an earlier run", registers: [this.registry] });
  readonly spoolCorruptFrames = new Counter({ name: "hdrcap_agent_spool_corrupt_frames_total", help: "Torn or corrupt spool frames skipped (e.g. a crash mid-write)", registers: [this.registry] });
  readonly capturesRunning = new Gauge({ name: "hdrcap_agent_captures_running", help: "Captures running on this host", registers: [this.registry] });
  readonly natsConnected = new Gauge({ name: "hdrcap_agent_nats_connected", help: "1 while connected to NATS", registers: [this.registry] });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: "hdrcap_agent_" });
  }
}

/** Serves GET /metrics on 127.0.0.1-or-all (host) and `port`; resolves once listening. */
export function serveMetrics(metrics: AgentMetrics, port: number, host = "0.0.0.0"): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404).end();
      return;
    }
    metrics.registry.metrics().then(
      (body) => res.writeHead(200, { "content-type": metrics.registry.contentType }).end(body),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve(server);
    });
  });
}
