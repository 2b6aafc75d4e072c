/**
 * Deregistration: the agent proves it is itself by signing a short, timestamped statement
 * with the NATS user key it generated at enrollment (its seed never leaves the host; the
 * control plane holds only the public key). The control plane verifies the signature against
 * the key it signed a JWT for, so an agent can only ever deregister itself.
 * `deregistrationStatement` must match the control plane's (services/agent-deregistration.ts).
 */
import { fromSeed } from "@nats-io/nkeys";
import { loadIdentity } from "../enrollment/agent-identity.ts";

export const DEREGISTRATION_PATH = "v1/agents/self/deregister";

/** The exact bytes signed: a purpose tag, the agent id and the time, so a signature serves nothing else. */
export function deregistrationStatement(agentId: string, timestampMs: number): Uint8Array {
  return new TextEncoder().encode(`hdrcap-agent-deregister/v1\n${agentId}\n${timestampMs}`);
}

export interface SignedDeregistration {
  agentId: string;
  timestamp: number;
  signature: string;
}

export function signDeregistration(agentId: string, natsSeed: string, now = Date.now()): SignedDeregistration {
  const key = fromSeed(new TextEncoder().encode(natsSeed));
  try {
    const signature = Buffer.from(key.sign(deregistrationStatement(agentId, now))).toString("base64url");
    return { agentId, timestamp: now, signature };
  } finally {
    key.clear();
  }
}

export class DeregistrationError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = "DeregistrationError";
  }
}

/** Deregisters the agent whose identity is in `stateDir` from the control plane that enrolled it. */
export async function deregisterSelf(options: { stateDir: string; timeoutMs?: number; fetch?: typeof fetch }): Promise<{ agentId: string; controlPlaneUrl: string }> {
  const identity = loadIdentity(options.stateDir);
  if (!identity) throw new DeregistrationError(`no agent identity in ${options.stateDir}: nothing to deregister`);
  const base = identity.controlPlaneUrl.endsWith("/") ? identity.controlPlaneUrl : `${identity.controlPlaneUrl}/`;
  const url = new URL(DEREGISTRATION_PATH, base);
  let res: Response;
  try {
    res = await (options.fetch ?? fetch)(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(signDeregistration(identity.agentId, identity.natsSeed)),
      signal: AbortSignal.timeout(options.timeoutMs ?? 15_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { message?: string } }).cause?.message;
    throw new DeregistrationError(`cannot reach the control plane at ${url.origin}: ${cause ?? (err as Error).message}`);
  }
  if (!res.ok) {
    const text = await res.text();
    let message = text.slice(0, 200) || res.statusText;
    try {
      message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? message;
    } catch {
      // not JSON: keep the text
    }
    throw new DeregistrationError(`the control plane refused to deregister ${identity.agentId}: ${res.status} ${message}`, res.status);
  }
  return { agentId: identity.agentId, controlPlaneUrl: identity.controlPlaneUrl };
}
