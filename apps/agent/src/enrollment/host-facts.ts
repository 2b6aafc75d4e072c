/**
 * Facts about this host sent at enrollment and in hello: a stable machine id
 * (/etc/machine-id, else a random id kept in the state dir), hostname, kernel,
 * architecture, BTF and hook availability, agent version.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { arch, hostname, release } from "node:os";
import { join } from "node:path";
import type { HostFacts } from "@hdrcap/api/agents";
import type { SystemCheckReport } from "../capture/system-check.ts";

export const AGENT_VERSION = "0.1.0";

const MACHINE_ID_RE = /^[A-Za-z0-9._-]{8,128}$/;

/** /etc/machine-id when usable, else an id generated once and kept in `<stateDir>/machine-id`. */
export function resolveMachineId(stateDir: string, machineIdPath = "/etc/machine-id"): string {
  for (const path of [machineIdPath, join(stateDir, "machine-id")]) {
    try {
      const id = readFileSync(path, "utf8").trim();
      if (MACHINE_ID_RE.test(id)) return id;
    } catch {
      // try the next source
    }
  }
  const id = randomBytes(16).toString("hex");
  if (!existsSync(stateDir)) mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(stateDir, "machine-id"), id + "\n", { mode: 0o600 });
  return id;
}

export function collectHostFacts(options: { stateDir: string; check: SystemCheckReport; machineIdPath?: string }): HostFacts {
  const { check } = options;
  return {
    hostname: (hostname() || "unknown").slice(0, 255),
    machineId: resolveMachineId(options.stateDir, options.machineIdPath),
    kernelRelease: (check.kernelRelease || release()).slice(0, 128),
    arch: arch().slice(0, 32),
    btf: check.btf,
    hooks: { ...check.hooks },
    agentVersion: AGENT_VERSION,
  };
}
