/** Prometheus metrics of the control plane (one registry per app instance). */
import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface Metrics {
  registry: Registry;
  httpRequests: Counter<"method" | "route" | "status">;
  httpDuration: Histogram<"method" | "route">;
  authFailures: Counter<"reason">;
  agentMessages: Counter<"kind" | "result">;
  ingestBatches: Counter<"result">;
  ingestRecords: Counter<never>;
  natsRevocationPushes: Counter<"trigger" | "result">;
}

export function createMetrics({ defaults = true }: { defaults?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (defaults) collectDefaultMetrics({ register: registry, prefix: "hdrcap_cp_" });
  return {
    registry,
    httpRequests: new Counter({
      name: "hdrcap_cp_http_requests_total",
      help: "HTTP requests by route and status",
      labelNames: ["method", "route", "status"],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: "hdrcap_cp_http_request_duration_seconds",
      help: "HTTP request duration",
      labelNames: ["method", "route"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    authFailures: new Counter({
      name: "hdrcap_cp_auth_failures_total",
      help: "Rejected API keys by reason",
      labelNames: ["reason"],
      registers: [registry],
    }),
    agentMessages: new Counter({
      name: "hdrcap_cp_agent_messages_total",
      help: "Messages from agents by kind and result",
      labelNames: ["kind", "result"],
      registers: [registry],
    }),
    ingestBatches: new Counter({
      name: "hdrcap_cp_ingest_batches_total",
      help: "Record batches taken from JetStream by result (stored, duplicate, rejected, retry)",
      labelNames: ["result"],
      registers: [registry],
    }),
    ingestRecords: new Counter({
      name: "hdrcap_cp_ingest_records_total",
      help: "Records stored in Postgres",
      registers: [registry],
    }),
    natsRevocationPushes: new Counter({
      name: "hdrcap_cp_nats_revocation_pushes_total",
      help: "Pushes of the NATS account JWT carrying revoked agent credentials, by trigger and result (ok, failed)",
      labelNames: ["trigger", "result"],
      registers: [registry],
    }),
  };
}
