/**
 * `hdrcap-agent enroll`: enroll (or confirm the stored identity) and exit. `install.sh` runs
 * it with the token in this one process's environment, before it changes anything else on
 * the host, so a refused token leaves the host untouched and the token never reaches a file,
 * a unit or the service's environment.
 */
import { destination, pino } from "pino";
import { runSystemCheck } from "../capture/system-check.ts";
import { EnrollmentError } from "../enrollment/enroll-client.ts";
import { ensureIdentity } from "../enrollment/ensure-identity.ts";
import { collectHostFacts } from "../enrollment/host-facts.ts";

export interface EnrollOnceOptions {
  controlPlaneUrl: string;
  stateDir: string;
  token?: string;
  labels?: Record<string, string>;
}

/** Resolves with the exit code: 0 enrolled or already enrolled, 2 refused (token), 1 other failures. */
export async function enrollOnce(options: EnrollOnceOptions): Promise<number> {
  const logger = pino({ level: "warn", base: { app: "hdrcap-agent" } }, destination(2));
  const facts = collectHostFacts({ stateDir: options.stateDir, check: runSystemCheck() });
  try {
    const { identity, enrolled } = await ensureIdentity({ ...options, facts, logger });
    process.stdout.write(`${enrolled ? "enrolled" : "already enrolled"} as ${identity.agentId} (tenant ${identity.tenantId}) with ${identity.controlPlaneUrl}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`hdrcap-agent: ${err instanceof Error ? err.message : String(err)}\n`);
    return err instanceof EnrollmentError ? 2 : 1;
  }
}
