/**
 * Enrollment: the agent generates its NATS user keypair, sends the public key
 * and its host facts to `POST /v1/enroll` with the enrollment token, and gets
 * back its ids, NATS servers and a user JWT for that key. The seed stays here.
 */
import { enrollInputSchema, enrollResultSchema, type EnrollInput, type EnrollResult, type HostFacts } from "@hdrcap/api/agents";
import { createUser } from "@nats-io/nkeys";
import type { AgentIdentity } from "./agent-identity.ts";

export class EnrollmentError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: string,
  ) {
    super(message);
    this.name = "EnrollmentError";
  }
}

export interface EnrollOptions {
  controlPlaneUrl: string;
  token: string;
  facts: HostFacts;
  /** Labels asked for by the host (the token's own labels take precedence on the control plane). */
  labels?: Record<string, string>;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

export async function enrollAgent(options: EnrollOptions): Promise<AgentIdentity> {
  const user = createUser();
  const body: EnrollInput & { labels?: Record<string, string> } = { facts: options.facts, natsPublicKey: user.getPublicKey() };
  if (options.labels && Object.keys(options.labels).length > 0) {
    if (!enrollAcceptsLabels()) throw new EnrollmentError("--labels: this control plane's enrollment contract does not accept labels; put them on the enrollment token");
    body.labels = options.labels;
  }
  const url = new URL("v1/enroll", options.controlPlaneUrl.endsWith("/") ? options.controlPlaneUrl : `${options.controlPlaneUrl}/`);
  let res: Response;
  try {
    res = await (options.fetch ?? fetch)(url, {
      method: "POST",
      headers: { authorization: `Bearer ${options.token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message;
    throw new EnrollmentError(`cannot reach the control plane at ${url.origin}: ${cause ?? (err as Error).message}`);
  }
  const text = await res.text();
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    data = undefined;
  }
  if (!res.ok) {
    const e = (data as { error?: { code?: string; message?: string; requestId?: string } } | undefined)?.error;
    const detail = e?.message ?? (text.slice(0, 200) || res.statusText);
    const hint = res.status === 401 ? " (is the enrollment token valid, unused and unexpired?)" : "";
    const rid = e?.requestId ? ` [request ${e.requestId}]` : "";
    throw new EnrollmentError(`enrollment refused: ${res.status} ${detail}${hint}${rid}`, res.status, e?.code);
  }
  const parsed = enrollResultSchema.safeParse(data);
  if (!parsed.success) throw new EnrollmentError(`enrollment reply is not an EnrollResult: ${parsed.error.issues[0]?.message ?? "invalid"}`);
  const result: EnrollResult = parsed.data;
  return {
    controlPlaneUrl: options.controlPlaneUrl,
    agentId: result.agentId,
    tenantId: result.tenantId,
    natsServers: result.natsServers,
    natsJwt: result.natsJwt,
    natsSeed: new TextDecoder().decode(user.getSeed()),
    inboxPrefix: result.inboxPrefix,
  };
}

/** Whether the EnrollInput contract carries host-chosen labels (it is strict: unknown keys are refused). */
export function enrollAcceptsLabels(): boolean {
  return "labels" in enrollInputSchema.shape;
}
