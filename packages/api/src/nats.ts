/**
 * The NATS contract between agents and the control plane: every subject and every
 * message (zod, with a version field). Both apps import this; nothing else builds
 * subjects. Subjects carry the tenant and agent ids, and each agent's NATS
 * permissions allow only its own, so the control plane trusts the subject, never
 * ids in a payload.
 */
import { z } from "zod";
import { captureSpecSchema, completenessSchema, AGENT_CAPTURE_STATUSES } from "./captures.ts";
import { hostFactsSchema } from "./agents.ts";
import { httpRecordSchema } from "./records.ts";

const ROOT = "hdrcap.v1";

export const NATS_SUBJECTS = {
  /** Agent → CP (request): register presence with host facts; reply: desired state. */
  agentHello: (tenantId: string, agentId: string) => `${ROOT}.t.${tenantId}.agent.${agentId}.hello`,
  /** Agent → CP (request): what should I run? reply: desired state. */
  agentDesired: (tenantId: string, agentId: string) => `${ROOT}.t.${tenantId}.agent.${agentId}.desired`,
  /** Agent → CP (publish): heartbeat with per-capture status and counters. */
  agentHeartbeat: (tenantId: string, agentId: string) => `${ROOT}.t.${tenantId}.agent.${agentId}.heartbeat`,
  /** CP → agent (request): commands (sync now, self-upgrade). */
  agentCommand: (tenantId: string, agentId: string) => `${ROOT}.t.${tenantId}.agent.${agentId}.cmd`,
  /** Agent → JetStream: record batches. */
  records: (tenantId: string, agentId: string) => `${ROOT}.t.${tenantId}.records.${agentId}`,
  /** CP replica ↔ replica: API key revocations etc. */
  keyRevoked: () => `${ROOT}.cp.key-revoked`,
  /** CP replica → replicas: rate-limit tokens granted per key since its last message. */
  rateConsumed: () => `${ROOT}.cp.rate-consumed`,

  // Wildcards the control plane subscribes to.
  allAgentHello: `${ROOT}.t.*.agent.*.hello`,
  allAgentDesired: `${ROOT}.t.*.agent.*.desired`,
  allAgentHeartbeat: `${ROOT}.t.*.agent.*.heartbeat`,
  allRecords: `${ROOT}.t.*.records.*`,
} as const;

/** The JetStream stream holding record batches until ingested. */
export const RECORDS_STREAM = "HDRCAP_RECORDS";
export const RECORDS_CONSUMER = "ingest";
/** The inbox prefix an agent uses for replies (its permissions allow only this one). */
export const agentInboxPrefix = (agentId: string) => `_INBOX_${agentId}`;

/** Parse "hdrcap.v1.t.<tenant>.agent.<agent>.<verb>" or "hdrcap.v1.t.<tenant>.records.<agent>". */
export function parseAgentSubject(subject: string): { tenantId: string; agentId: string; verb: string } | null {
  const p = subject.split(".");
  if (p[0] !== "hdrcap" || p[1] !== "v1" || p[2] !== "t" || !p[3]) return null;
  if (p[4] === "agent" && p[5] && p[6] && p.length === 7) return { tenantId: p[3], agentId: p[5], verb: p[6] };
  if (p[4] === "records" && p[5] && p.length === 6) return { tenantId: p[3], agentId: p[5], verb: "records" };
  return null;
}

/** The NATS permissions of one agent's user JWT. */
export function agentNatsPermissions(tenantId: string, agentId: string) {
  return {
    pub: {
      allow: [
        NATS_SUBJECTS.agentHello(tenantId, agentId),
        NATS_SUBJECTS.agentDesired(tenantId, agentId),
        NATS_SUBJECTS.agentHeartbeat(tenantId, agentId),
        NATS_SUBJECTS.records(tenantId, agentId),
      ],
    },
    sub: { allow: [NATS_SUBJECTS.agentCommand(tenantId, agentId), `${agentInboxPrefix(agentId)}.>`] },
    allowResponses: true,
  };
}

export const desiredStateSchema = z.object({
  v: z.literal(1),
  captures: z.array(captureSpecSchema),
});
export type DesiredState = z.infer<typeof desiredStateSchema>;

export const agentHelloSchema = z.object({
  v: z.literal(1),
  facts: hostFactsSchema,
});
export type AgentHello = z.infer<typeof agentHelloSchema>;

export const agentCaptureReportSchema = z.object({
  captureId: z.string(),
  status: z.enum(AGENT_CAPTURE_STATUSES),
  message: z.string().max(2000).nullable(),
  counters: completenessSchema.partial(),
});
export type AgentCaptureReport = z.infer<typeof agentCaptureReportSchema>;

export const agentHeartbeatSchema = z.object({
  v: z.literal(1),
  captures: z.array(agentCaptureReportSchema).max(1000),
});
export type AgentHeartbeat = z.infer<typeof agentHeartbeatSchema>;

/**
 * `upgrade`: download this bundle from the control plane's /bundles/<file>, verify its SHA-256
 * (carried here, over NATS, not read from the same HTTP server), switch to it and restart.
 */
export const agentUpgradeCommandSchema = z.object({
  v: z.literal(1),
  type: z.literal("upgrade"),
  upgradeId: z.string().max(64),
  version: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
  file: z.string().regex(/^agent-[A-Za-z0-9._-]+-linux-x64\.tar\.gz$/),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  size: z.number().int().nonnegative(),
});
export type AgentUpgradeCommand = z.infer<typeof agentUpgradeCommandSchema>;

export const agentCommandSchema = z.discriminatedUnion("type", [z.object({ v: z.literal(1), type: z.literal("sync") }), agentUpgradeCommandSchema]);
export type AgentCommand = z.infer<typeof agentCommandSchema>;

export const agentCommandReplySchema = z.object({
  v: z.literal(1),
  ok: z.boolean(),
  captures: z.array(agentCaptureReportSchema),
  /** Why a command failed (upgrade: download, checksum, unpack), for the operator. */
  error: z.string().max(2000).optional(),
  /** Upgrade accepted: the version switched to; the agent restarts right after replying. */
  upgradedTo: z.string().max(64).optional(),
});
export type AgentCommandReply = z.infer<typeof agentCommandReplySchema>;

export const MAX_BATCH_RECORDS = 500;
export const recordBatchSchema = z.object({
  v: z.literal(1),
  /** Unique per batch; also the JetStream Nats-Msg-Id (server dedupe) and the ingest dedupe key. */
  batchId: z.string().min(8).max(200),
  captureId: z.string().max(64),
  records: z.array(httpRecordSchema).min(1).max(MAX_BATCH_RECORDS),
});
export type RecordBatch = z.infer<typeof recordBatchSchema>;
