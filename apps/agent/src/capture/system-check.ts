/**
 * Pre-flight for kernel capture: mounts tracefs and bpffs when missing,
 * checks privileges and BTF, and reports which hook types this kernel
 * offers. `assertCaptureReady()` fails with one message listing every
 * problem, so an operator fixes them in one go.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";

export const TRACEFS_PATH = "/sys/kernel/tracing";
export const BPFFS_PATH = "/sys/fs/bpf";
export const VMLINUX_BTF_PATH = "/sys/kernel/btf/vmlinux";

const CAPS = { CAP_NET_ADMIN: 12, CAP_SYS_ADMIN: 21, CAP_PERFMON: 38, CAP_BPF: 39 } as const;
type CapName = keyof typeof CAPS;

export interface HookAvailability {
  /** Syscall tracepoints (syscalls:sys_enter_* / sys_exit_*), needed by socket capture. */
  syscallTracepoints: boolean;
  /** Other tracepoints, e.g. sock:inet_sock_set_state. */
  sockTracepoints: boolean;
  uprobes: boolean;
  kprobes: boolean;
}

export interface SystemCheckReport {
  ok: boolean;
  /** Every reason capture cannot start; empty when ok. */
  problems: string[];
  /** Filesystems this check mounted. */
  mounted: string[];
  isRoot: boolean;
  capabilities: Record<CapName, boolean>;
  btf: boolean;
  kernelRelease: string;
  hooks: HookAvailability;
}

function mountedFilesystems(): { target: string; type: string }[] {
  return readFileSync("/proc/self/mounts", "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [, target = "", type = ""] = line.split(" ");
      return { target, type };
    });
}

function ensureMounted(type: "tracefs" | "bpf", target: string, mounted: string[], problems: string[]): void {
  if (mountedFilesystems().some((m) => m.target === target && m.type === type)) return;
  try {
    if (!existsSync(target)) mkdirSync(target, { recursive: true });
    execFileSync("mount", ["-t", type, type === "bpf" ? "bpf" : "nodev", target], { stdio: "pipe" });
    mounted.push(`${type} on ${target}`);
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    problems.push(`${type} is not mounted at ${target} and mounting it failed: ${stderr || (err as Error).message}`);
  }
}

function effectiveCapabilities(): Record<CapName, boolean> {
  let eff = 0n;
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "utf8"));
  if (m?.[1]) eff = BigInt(`0x${m[1]}`);
  const out = {} as Record<CapName, boolean>;
  for (const [name, bit] of Object.entries(CAPS) as [CapName, number][]) out[name] = ((eff >> BigInt(bit)) & 1n) === 1n;
  return out;
}

function detectHooks(): HookAvailability {
  const events = `${TRACEFS_PATH}/events`;
  return {
    syscallTracepoints:
      existsSync(`${events}/syscalls/sys_enter_read/id`) && existsSync(`${events}/syscalls/sys_exit_read/id`),
    sockTracepoints: existsSync(`${events}/sock/inet_sock_set_state/id`),
    uprobes: existsSync(`${TRACEFS_PATH}/uprobe_events`),
    kprobes: existsSync(`${TRACEFS_PATH}/kprobe_events`),
  };
}

/** Mounts what is missing and reports; never throws. */
export function runSystemCheck(): SystemCheckReport {
  const problems: string[] = [];
  const mounted: string[] = [];
  const isRoot = process.getuid?.() === 0;
  const capabilities = effectiveCapabilities();
  const privileged = capabilities.CAP_SYS_ADMIN || (capabilities.CAP_BPF && capabilities.CAP_PERFMON);

  if (!privileged) {
    const missing = (["CAP_BPF", "CAP_PERFMON"] as const).filter((c) => !capabilities[c]);
    problems.push(
      `missing capabilities ${missing.join(", ")} (or CAP_SYS_ADMIN): loading tracing BPF programs needs CAP_BPF and attaching tracepoints needs CAP_PERFMON; run as root or grant them`,
    );
  }
  if (privileged) {
    ensureMounted("tracefs", TRACEFS_PATH, mounted, problems);
    ensureMounted("bpf", BPFFS_PATH, mounted, problems);
  } else if (!mountedFilesystems().some((m) => m.type === "tracefs")) {
    problems.push(`tracefs is not mounted at ${TRACEFS_PATH} (mounting it needs CAP_SYS_ADMIN)`);
  }

  const btf = existsSync(VMLINUX_BTF_PATH);
  if (!btf) problems.push(`kernel BTF missing at ${VMLINUX_BTF_PATH}: CO-RE needs a kernel built with CONFIG_DEBUG_INFO_BTF=y`);

  const hooks = detectHooks();
  if (!hooks.syscallTracepoints && problems.length === 0)
    problems.push(
      `syscall tracepoints not found under ${TRACEFS_PATH}/events/syscalls: kernel built without CONFIG_FTRACE_SYSCALLS`,
    );
  if (!hooks.sockTracepoints && problems.length === 0)
    problems.push(`tracepoint sock:inet_sock_set_state not found under ${TRACEFS_PATH}/events/sock`);

  let kernelRelease = "";
  try {
    kernelRelease = readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
  } catch {
    // informational only
  }

  return { ok: problems.length === 0, problems, mounted, isRoot, capabilities, btf, kernelRelease, hooks };
}

export class SystemCheckError extends Error {
  constructor(readonly report: SystemCheckReport) {
    super(`kernel capture cannot start:\n- ${report.problems.join("\n- ")}`);
    this.name = "SystemCheckError";
  }
}

/** runSystemCheck() that throws SystemCheckError listing every problem. */
export function assertCaptureReady(): SystemCheckReport {
  const report = runSystemCheck();
  if (!report.ok) throw new SystemCheckError(report);
  return report;
}
