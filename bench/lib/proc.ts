/**
 * What /proc says about a process: CPU time (own and reaped children),
 * peak RSS, and the bpf programs it holds open with their run statistics.
 */
import { readFileSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";

const TICKS_PER_SECOND = 100; // USER_HZ on Linux x86-64 and arm64

export interface CpuTimes {
  /** utime + stime of the process itself, in seconds. */
  self: number;
  /** cutime + cstime: children it has waited for, in seconds. */
  children: number;
}

/** CPU times of one process (all its threads). */
export function cpuTimes(pid: number | "self"): CpuTimes {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // comm may contain spaces and parentheses: fields start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state): utime is field 14, so index 11.
  const n = (i: number) => Number(fields[i]) / TICKS_PER_SECOND;
  return { self: n(11) + n(12), children: n(13) + n(14) };
}

/** Sum of utime + stime over processes, seconds; vanished processes count 0. */
export function cpuSeconds(pids: number[]): number {
  let total = 0;
  for (const pid of pids) {
    try {
      total += cpuTimes(pid).self;
    } catch {
      /* exited */
    }
  }
  return total;
}

function statusField(pid: number | "self", field: string): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

/** Peak resident set size (VmHWM) in bytes. */
export function peakRssBytes(pid: number | "self"): number {
  return statusField(pid, "VmHWM");
}

/** Resets VmHWM to the current RSS (clear_refs "5"), so a later read is the peak since now. */
export function resetPeakRss(pid: number | "self"): void {
  writeFileSync(`/proc/${pid}/clear_refs`, "5");
}

export interface BpfRunStats {
  programs: number;
  runTimeNs: number;
  runCount: number;
}

/**
 * Run statistics of the bpf programs a process holds, read from the fdinfo
 * of its bpf-prog fds (bpftool on Debian 12 cannot map programs to pids).
 * run_time_ns / run_cnt only advance while kernel.bpf_stats_enabled = 1.
 */
export function bpfRunStats(pid: number | "self"): BpfRunStats {
  const out: BpfRunStats = { programs: 0, runTimeNs: 0, runCount: 0 };
  const seen = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    if (target !== "anon_inode:bpf-prog") continue;
    let info: string;
    try {
      info = readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8");
    } catch {
      continue;
    }
    const id = /^prog_id:\s+(\d+)/m.exec(info)?.[1];
    if (!id || seen.has(id)) continue;
    seen.add(id);
    out.programs++;
    out.runTimeNs += Number(/^run_time_ns:\s+(\d+)/m.exec(info)?.[1] ?? 0);
    out.runCount += Number(/^run_cnt:\s+(\d+)/m.exec(info)?.[1] ?? 0);
  }
  return out;
}

const BPF_STATS_SYSCTL = "/proc/sys/kernel/bpf_stats_enabled";

/** Turns on kernel.bpf_stats_enabled; returns a function restoring the previous value. */
export function enableBpfStats(): () => void {
  const previous = readFileSync(BPF_STATS_SYSCTL, "utf8").trim();
  writeFileSync(BPF_STATS_SYSCTL, "1");
  return () => writeFileSync(BPF_STATS_SYSCTL, previous);
}
