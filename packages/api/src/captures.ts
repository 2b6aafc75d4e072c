/**
 * Capture jobs: the request body, the spec agents receive, and the views the API returns.
 * Plain zod (the agent bundles these through `@hdrcap/api/nats`; @hono/zod-openapi would cost it
 * ~5 MiB): `.meta({ id })` names the OpenAPI component, as `.openapi("…")` does.
 */
import { z } from "zod";

const port = z.number().int().min(1).max(65535);
const headerName = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, "must be an HTTP header name (token characters only)");
const labelKey = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*$/, "letters, digits, '.', '_', '/', '-'");
const labelValue = z.string().max(255);
export const labelsSchema = z.record(labelKey, labelValue).refine((l) => Object.keys(l).length <= 32, "at most 32 labels");

export const agentSelectorSchema = z
  .object({
    ids: z.array(z.string().regex(/^agt_[A-Za-z0-9]{8,40}$/, "must be an agent id (agt_…)")).max(1000).optional(),
    labels: labelsSchema.optional(),
  })
  .strict()
  .meta({ id: "AgentSelector" });
export type AgentSelector = z.infer<typeof agentSelectorSchema>;

export const captureFilterSchema = z
  .object({
    ports: z.array(port).max(64).optional(),
    pids: z.array(z.number().int().min(1).max(4_194_304)).max(64).optional(),
    comm: z.string().min(1).max(15).optional(),
    role: z.enum(["client", "server", "any"]).default("any"),
  })
  .strict()
  .meta({ id: "CaptureFilter" });

export const headerPolicySchema = z
  .object({
    include: z.array(headerName).max(256).optional(),
    redact: z.array(headerName).max(256).optional(),
    redactMode: z.enum(["mask", "drop", "hash"]).default("mask"),
    allowSensitive: z.boolean().default(false).meta({ description: "Keep Authorization, Cookie, Set-Cookie, API-key-like headers in clear (explicit opt-in)" }),
  })
  .strict()
  .meta({ id: "HeaderPolicy" });

export const captureLimitsSchema = z
  .object({
    durationSeconds: z.number().int().min(1).max(7 * 86_400).optional(),
    maxRecords: z.number().int().min(1).max(1_000_000_000).optional(),
    captureBytes: z.number().int().min(256).max(65_536).default(4096).meta({ description: "Bytes copied per syscall; header blocks longer than this are truncated (and counted)" }),
  })
  .strict()
  .meta({ id: "CaptureLimits" });

export const PROTOCOLS = ["http"] as const;

export const captureSourceSchema = z
  .object({
    kind: z.enum(["socket", "packet"]).default("socket").meta({
      description: "socket: syscall tracepoints, every process, with process identity (default); packet: TC on one interface (e.g. traffic of a container's veth)",
    }),
    interface: z
      .string()
      .regex(/^[A-Za-z0-9_.:@-]{1,15}$/, "must be a network interface name")
      .optional()
      .meta({ description: "Required for kind packet" }),
  })
  .strict()
  .refine((s) => s.kind !== "packet" || s.interface !== undefined, { message: "required when kind is packet", path: ["interface"] })
  .meta({ id: "CaptureSource" });
export type CaptureSource = z.infer<typeof captureSourceSchema>;

export const createCaptureInputSchema = z
  .object({
    name: z.string().trim().min(1).max(200),
    agents: agentSelectorSchema.default({}),
    protocol: z.enum(PROTOCOLS).default("http").meta({ description: "Only http for now; tcp, udp, dns, http2 will follow" }),
    source: captureSourceSchema.default({ kind: "socket" }),
    filter: captureFilterSchema.default({ role: "any" }),
    headers: headerPolicySchema.default({ redactMode: "mask", allowSensitive: false }),
    limits: captureLimitsSchema.default({ captureBytes: 4096 }),
  })
  .strict()
  .superRefine((input, ctx) => {
    // A TC hook knows a packet's process only on egress: process filters need the socket source.
    if (input.source.kind !== "packet") return;
    const message = "process filters need source.kind socket (packets carry no process on ingress)";
    if (input.filter.pids?.length) ctx.addIssue({ code: "custom", path: ["filter", "pids"], message });
    if (input.filter.comm !== undefined) ctx.addIssue({ code: "custom", path: ["filter", "comm"], message });
  })
  .meta({ id: "CreateCaptureInput" });
export type CreateCaptureInput = z.infer<typeof createCaptureInputSchema>;

export const CAPTURE_STATUSES = ["pending", "running", "stopping", "completed", "cancelled", "failed", "expired"] as const;
export type CaptureStatus = (typeof CAPTURE_STATUSES)[number];
export const TERMINAL_CAPTURE_STATUSES: readonly CaptureStatus[] = ["completed", "cancelled", "failed", "expired"];

export const AGENT_CAPTURE_STATUSES = ["assigned", "attaching", "running", "detached", "error", "unreachable"] as const;
export type AgentCaptureStatus = (typeof AGENT_CAPTURE_STATUSES)[number];

export const completenessSchema = z
  .object({
    seen: z.number().meta({ description: "Syscalls the kernel programs saw for matching sockets" }),
    emitted: z.number().meta({ description: "Chunks the kernel emitted" }),
    lostInKernel: z.number().meta({ description: "Chunks lost because the ring buffer was full" }),
    truncated: z.number(),
    malformed: z.number().meta({ description: "Header blocks the agent could not parse" }),
    records: z.number().meta({ description: "Records the agent produced" }),
    droppedInAgent: z.number().meta({ description: "Records dropped in the agent (buffer overflow while NATS was unreachable)" }),
    published: z.number(),
    stored: z.number(),
  })
  .meta({ id: "Completeness" });
export type Completeness = z.infer<typeof completenessSchema>;
export const emptyCompleteness = (): Completeness => ({ seen: 0, emitted: 0, lostInKernel: 0, truncated: 0, malformed: 0, records: 0, droppedInAgent: 0, published: 0, stored: 0 });

export const captureAgentSchema = z
  .object({
    agentId: z.string(),
    status: z.enum(AGENT_CAPTURE_STATUSES),
    message: z.string().nullable(),
    counters: completenessSchema,
    updatedAt: z.string(),
  })
  .meta({ id: "CaptureAgent" });

export const captureSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    protocol: z.enum(PROTOCOLS),
    status: z.enum(CAPTURE_STATUSES),
    statusReason: z.string().nullable(),
    agents: agentSelectorSchema,
    source: captureSourceSchema,
    filter: captureFilterSchema,
    headers: headerPolicySchema,
    limits: captureLimitsSchema,
    createdAt: z.string(),
    expiresAt: z.string().nullable(),
    endedAt: z.string().nullable(),
    agentStatuses: z.array(captureAgentSchema),
    completeness: completenessSchema,
  })
  .meta({ id: "Capture" });
export type CaptureView = z.infer<typeof captureSchema>;

/** What an agent needs to run one capture (part of its desired state). */
export const captureSpecSchema = z.object({
  captureId: z.string(),
  protocol: z.enum(PROTOCOLS),
  /** Older control planes send no source: socket. */
  source: captureSourceSchema.default({ kind: "socket" }),
  filter: captureFilterSchema,
  headers: headerPolicySchema,
  limits: captureLimitsSchema,
  /** Absolute end time (ISO) when the job has a duration. */
  expiresAt: z.string().nullable(),
  /** Per-job key for redactMode "hash" (base64), so equal values hash equally on every agent. */
  hashKey: z.string(),
});
export type CaptureSpec = z.infer<typeof captureSpecSchema>;
