/**
 * Start-up identity: reuse `<state-dir>/agent.json` when it belongs to this
 * control plane, otherwise enroll with the token and save the result.
 */
import type { HostFacts } from "@hdrcap/api/agents";
import type { Logger } from "pino";
import { loadIdentity, sameControlPlane, saveIdentity, identityPath, type AgentIdentity } from "./agent-identity.ts";
import { EnrollmentError, enrollAcceptsLabels, enrollAgent } from "./enroll-client.ts";

export interface EnsureIdentityOptions {
  controlPlaneUrl: string;
  stateDir: string;
  token?: string;
  labels?: Record<string, string>;
  facts: HostFacts;
  logger: Logger;
  fetch?: typeof fetch;
}

export async function ensureIdentity(options: EnsureIdentityOptions): Promise<{ identity: AgentIdentity; enrolled: boolean }> {
  const stored = loadIdentity(options.stateDir);
  if (stored && sameControlPlane(stored.controlPlaneUrl, options.controlPlaneUrl)) {
    options.logger.info({ agentId: stored.agentId, path: identityPath(options.stateDir) }, "using stored agent identity");
    return { identity: stored, enrolled: false };
  }
  if (stored) options.logger.warn({ stored: stored.controlPlaneUrl }, "stored identity belongs to another control plane; enrolling again");
  if (!options.token)
    throw new EnrollmentError(
      `no agent identity for ${options.controlPlaneUrl} in ${options.stateDir}: pass --token <enrollment token> or set HDRCAP_ENROLLMENT_TOKEN`,
    );
  let labels = options.labels;
  if (labels && Object.keys(labels).length > 0 && !enrollAcceptsLabels()) {
    // EnrollInput is strict and has no labels field yet: enroll without them rather than fail.
    options.logger.warn({ labels }, "--labels ignored: the enrollment contract does not carry labels; put them on the enrollment token");
    labels = undefined;
  }
  const identity = await enrollAgent({
    controlPlaneUrl: options.controlPlaneUrl,
    token: options.token,
    facts: options.facts,
    labels,
    fetch: options.fetch,
  });
  saveIdentity(options.stateDir, identity);
  options.logger.info({ agentId: identity.agentId, tenantId: identity.tenantId }, "enrolled");
  return { identity, enrolled: true };
}
