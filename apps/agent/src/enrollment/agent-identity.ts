/**
 * The agent's identity on disk (`<state-dir>/agent.json`, mode 0600): which
 * control plane enrolled it, its ids, NATS servers, user JWT and the nkey seed
 * that never leaves the host. The enrollment token is never stored.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { z } from "zod";

export const agentIdentitySchema = z.object({
  controlPlaneUrl: z.string().min(1),
  agentId: z.string().min(1),
  tenantId: z.string().min(1),
  natsServers: z.array(z.string()).min(1),
  natsJwt: z.string().min(1),
  natsSeed: z.string().startsWith("SU"),
  inboxPrefix: z.string().min(1),
});
export type AgentIdentity = z.infer<typeof agentIdentitySchema>;

export const identityPath = (stateDir: string) => join(stateDir, "agent.json");

/** Control plane URLs compare equal regardless of a trailing slash or letter case of the host. */
export function sameControlPlane(a: string, b: string): boolean {
  const norm = (u: string) => {
    try {
      const url = new URL(u);
      return `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, "")}`;
    } catch {
      return u.replace(/\/+$/, "");
    }
  };
  return norm(a) === norm(b);
}

/** The stored identity, or null when there is none; throws when the file is unreadable or invalid. */
export function loadIdentity(stateDir: string): AgentIdentity | null {
  const path = identityPath(stateDir);
  if (!existsSync(path)) return null;
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(`${path} is not valid JSON (${(err as Error).message}); remove it to enroll again`);
  }
  const parsed = agentIdentitySchema.safeParse(data);
  if (!parsed.success) throw new Error(`${path} is not an agent identity (${parsed.error.issues[0]?.message}); remove it to enroll again`);
  if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600); // it holds a secret
  return parsed.data;
}

/** Writes the identity atomically with mode 0600 (the state dir is created 0700). */
export function saveIdentity(stateDir: string, identity: AgentIdentity): void {
  const path = identityPath(stateDir);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(identity, null, 2) + "\n", { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}
