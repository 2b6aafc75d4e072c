/**
 * The installed agent's configuration, `/etc/hdrcap/agent.json` (mode 0600), written by
 * `install.sh`: which control plane, where the identity lives, the labels asked for at
 * enrollment and the pinned CA. It never holds the enrollment token or any secret.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";

export const DEFAULT_SERVICE_CONFIG_PATH = "/etc/hdrcap/agent.json";

export const serviceConfigSchema = z.object({
  controlPlaneUrl: z.url({ protocol: /^https?$/ }),
  stateDir: z.string().startsWith("/").default("/var/lib/hdrcap"),
  labels: z.record(z.string(), z.string()).default({}),
  caFile: z.string().startsWith("/").nullable().default(null),
  installedVersion: z.string().optional(),
});
export type ServiceConfig = z.infer<typeof serviceConfigSchema>;

export function loadServiceConfig(path: string): ServiceConfig {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(`cannot read the agent configuration ${path}: ${(err as Error).message}`);
  }
  const parsed = serviceConfigSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${path} is not an agent configuration: ${issue?.path.join(".") || "(root)"}: ${issue?.message}`);
  }
  return parsed.data;
}
