/**
 * What both kernel capture sources share: per-CPU counters read by their C enum
 * names (HDRCAP_CNT_SYSCALLS_SEEN → syscallsSeen) and ring buffer sizing.
 */
import { sumPerCpuArray, type BpfMap } from "../libbpf/libbpf.ts";

/** Sums a PERCPU_ARRAY of counters and names each value after its enum constant, minus `prefix`. */
export function readNamedCounters(map: BpfMap, indexByName: Record<string, number>, count: number, prefix: string): Record<string, bigint> {
  const values = sumPerCpuArray(map, count);
  const out: Record<string, bigint> = {};
  for (const [name, index] of Object.entries(indexByName)) {
    if (index >= count) continue;
    const key = name
      .slice(name.startsWith(prefix) ? prefix.length : 0)
      .toLowerCase()
      .replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
    out[key] = values[index] ?? 0n;
  }
  return out;
}

/** Ring buffers must be a power of two of at least a page. */
export function ringBufferBytes(requested: number): number {
  let p = 4096;
  while (p < requested) p *= 2;
  return p;
}
