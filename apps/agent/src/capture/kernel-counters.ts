/**
 * What both kernel capture sources share: per-CPU counters read by their C enum
 * names (HDRCAP_CNT_SYSCALLS_SEEN → syscallsSeen), ring buffer sizing and catch-up
 * drains, and the order in which a filter change reaches the kernel's maps.
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

/**
 * Switches filter set maps from `prev` to `next` without a moment where a packet
 * or syscall matches neither: new entries go in first, then `writeConfig` (which
 * turns filters on or off), then entries only `prev` had come out.
 */
export function swapFilterSets<Name extends string>(
  maps: Record<Name, BpfMap>,
  next: Record<Name, Buffer[]>,
  prev: Record<Name, Buffer[]>,
  writeConfig: () => void,
): void {
  const one = Buffer.from([1]);
  for (const [name, keys] of Object.entries(next) as [Name, Buffer[]][]) {
    for (const k of keys) maps[name].update(k, one);
  }
  writeConfig();
  for (const [name, keys] of Object.entries(prev) as [Name, Buffer[]][]) {
    const keep = new Set(next[name].map((k) => k.toString("hex")));
    for (const k of keys) if (!keep.has(k.toString("hex"))) maps[name].delete(k);
  }
}

/**
 * The drain-again-at-once rule of both sources: when a drain leaves more than 1/8 of the ring
 * filled (a burst arrived while it decoded), drain again on the next turn of the event loop
 * instead of a whole interval later. At most one such drain is pending.
 */
export class RingCatchUp {
  private scheduled = false;

  constructor(
    private readonly ringBytes: number,
    private readonly drain: () => void,
  ) {}

  /** Call after a drain with the bytes still in the ring. */
  afterDrain(pendingBytes: number): void {
    if (this.scheduled || pendingBytes <= this.ringBytes / 8) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.drain();
    });
  }
}
