/**
 * Packet-level capture of L3/L4 header elements: loads bpf/src/tc_capture.bpf.c,
 * attaches it to one interface's tcx ingress and/or egress hook as BPF links
 * (file descriptors: nothing outlives this process, even after SIGKILL),
 * keeps the filter maps in step with the caller's filter, drains the ring
 * buffer on a short timer (the kernel submits without wakeups) and hands
 * decoded PacketRecords to onPackets in batches.
 */
import { readNamedCounters, RingCatchUp, ringBufferBytes, swapFilterSets } from "../kernel-counters.ts";
import { tcCaptureObjectPath } from "@hdrcap/bpf/paths";
import {
  BpfObject,
  type BpfLink,
  type BpfMap,
  type LibbpfLogger,
  RingBufferReader,
  type TcDirection,
  attachTcx,
  bootToWallOffsetNs,
  inNetworkNamespace,
  interfaceIndex,
  setLibbpfLogger,
} from "../../libbpf/libbpf.ts";
import { assertCaptureReady } from "../system-check.ts";
import {
  type NormalizedPacketCaptureFilter,
  type PacketCaptureFilter,
  type PacketFilterMap,
  encodePacketConfig,
  normalizePacketFilter,
  packetFilterSetKeys,
} from "./packet-filter.ts";
import { HDRCAP_PKT_CNT__COUNT, hdrcapPktCounter } from "./packet-layout.generated.ts";
import { type PacketDecodeStats, type PacketRecord, decodeDrainedPackets } from "./packet-record.ts";

export type { NormalizedPacketCaptureFilter, PacketCaptureFilter, PacketProtocol } from "./packet-filter.ts";

export type PacketDirectionOption = TcDirection | "both";

export interface PacketCaptureOptions extends PacketCaptureFilter {
  /** Interface to attach to (in `netns` when given, else in the agent's namespace). */
  ifname: string;
  /** Network namespace of the interface: a name under /run/netns or a path such as /proc/<pid>/ns/net. */
  netns?: string;
  /** Default "both". */
  direction?: PacketDirectionOption;
  /** Receives decoded packets in batches, in ring-buffer order. Give this or onDrained. */
  onPackets?: (packets: PacketRecord[]) => void;
  /**
   * Instead of PacketRecords: each fill of the drain buffer as it is (drain framing, see
   * decodeDrainedPackets), for a consumer that decodes only what it needs. The buffer is
   * reused by the next fill, so nothing may keep a view of it past the call. Returns
   * the records it saw and how many were malformed (counted in counters()).
   */
  onDrained?: (buf: Buffer, bytes: number, wallOffsetNs: bigint) => PacketDecodeStats;
  /** An exception thrown by onPackets; default: printed to stderr. */
  onError?: (err: unknown) => void;
  /** How often the ring buffer is drained; default 20 ms. */
  drainIntervalMs?: number;
  /** Ring buffer size, rounded up to a power of two; default 8 MiB. */
  ringBufferBytes?: number;
  /** libbpf's own messages (verifier log etc.); default: dropped. */
  libbpfLogger?: LibbpfLogger;
  /**
   * Fill tgid/comm of packets sent by local sockets created by connect() or
   * accept() after the capture started (syscall tracepoints; needs tracefs).
   * Egress only: an ingress skb has no socket yet at the TC hook. Default false.
   */
  joinProcesses?: boolean;
}

/** Kernel counters summed over CPUs, plus the decoder's own. */
export interface PacketCaptureCounters {
  /** Packets the program ran on: seen = filtered + matched. */
  seen: bigint;
  filtered: bigint;
  /** matched = sampledOut + emitted + ringbufFull. */
  matched: bigint;
  sampledOut: bigint;
  emitted: bigint;
  /** Events lost because the ring buffer was full. */
  ringbufFull: bigint;
  /** Not IPv4/IPv6 or malformed IP header (included in filtered). */
  notIp: bigint;
  /** Payload bytes of emitted packets beyond payloadBytes. */
  payloadUncopied: bigint;
  recordsDrained: bigint;
  recordsMalformed: bigint;
}

/**
 * One fill of the drain buffer is decoded and delivered before the next: small fills keep
 * what a fill allocates short-lived (a 4 MiB fill's ≈ 10 k packets outlived young-generation
 * collections and were promoted: a third of the agent's time went to GC).
 */
const DRAIN_BUFFER_BYTES = 256 * 1024;
/** Drain calls per tick: 64 MiB at most, so a tick cannot monopolise the event loop. */
const MAX_DRAINS_PER_TICK = 256;
const PROGRAMS: Record<TcDirection, string> = { ingress: "hc_tc_ingress", egress: "hc_tc_egress" };
const OWNER_PROGRAMS = ["hc_owner_connect", "hc_owner_accept4", "hc_owner_accept", "hc_owner_forget"];



function netnsPath(netns: string): string {
  return netns.includes("/") ? netns : `/run/netns/${netns}`;
}

export class PacketCaptureSource {
  readonly ifname: string;
  readonly ifindex: number;
  readonly directions: readonly TcDirection[];
  private readonly obj: BpfObject;
  private readonly ring: RingBufferReader;
  private readonly configMap: BpfMap;
  private readonly countersMap: BpfMap;
  private readonly setMaps: Record<PacketFilterMap, BpfMap>;
  private readonly drainBuffer = Buffer.alloc(DRAIN_BUFFER_BYTES);
  private readonly onPackets: ((packets: PacketRecord[]) => void) | undefined;
  private readonly onDrained: PacketCaptureOptions["onDrained"];
  private readonly onError: (err: unknown) => void;
  private links: BpfLink[] = [];
  private filter: NormalizedPacketCaptureFilter;
  private timer: NodeJS.Timeout | undefined;
  private recordsDrained = 0n;
  private recordsMalformed = 0n;
  private closed = false;
  private readonly catchUp: RingCatchUp;

  private constructor(
    obj: BpfObject,
    options: PacketCaptureOptions,
    filter: NormalizedPacketCaptureFilter,
    ifindex: number,
    directions: TcDirection[],
    ringBytes: number,
  ) {
    this.obj = obj;
    this.catchUp = new RingCatchUp(ringBytes, () => this.drainNow());
    this.ifname = options.ifname;
    this.ifindex = ifindex;
    this.directions = directions;
    this.onPackets = options.onPackets;
    this.onDrained = options.onDrained;
    this.onError = options.onError ?? ((err) => console.error("packet capture: onPackets failed:", err));
    this.filter = filter;
    this.configMap = obj.map("pkt_cfg");
    this.countersMap = obj.map("pkt_counters");
    this.setMaps = { pkt_ports: obj.map("pkt_ports"), pkt_cidr4: obj.map("pkt_cidr4"), pkt_cidr6: obj.map("pkt_cidr6") };
    this.ring = RingBufferReader.open(obj.map("pkt_events"));
  }

  /** Loads the program, writes the filter, attaches to the interface and starts draining. */
  static open(options: PacketCaptureOptions): PacketCaptureSource {
    if (!options.onPackets === !options.onDrained) throw new TypeError("give exactly one of onPackets and onDrained");
    const filter = normalizePacketFilter(options);
    const direction = options.direction ?? "both";
    if (!["ingress", "egress", "both"].includes(direction)) throw new RangeError(`invalid direction ${direction}`);
    const directions: TcDirection[] = direction === "both" ? ["ingress", "egress"] : [direction];
    if (options.joinProcesses) assertCaptureReady();
    setLibbpfLogger(options.libbpfLogger);
    const inNs = <T>(fn: () => T): T => (options.netns ? inNetworkNamespace(netnsPath(options.netns), fn) : fn());
    const ifindex = inNs(() => interfaceIndex(options.ifname));
    const obj = BpfObject.open(tcCaptureObjectPath);
    let source: PacketCaptureSource | undefined;
    try {
      const ringBytes = ringBufferBytes(options.ringBufferBytes ?? 8 * 1024 * 1024);
      obj.setMapMaxEntries("pkt_events", ringBytes);
      if (!options.joinProcesses) for (const p of OWNER_PROGRAMS) obj.setAutoload(p, false);
      obj.load();
      source = new PacketCaptureSource(obj, options, filter, ifindex, directions, ringBytes);
      // Filters are in the maps before the first packet runs the program.
      source.writeFilter(filter, normalizePacketFilter({}));
      const s = source;
      if (options.joinProcesses) for (const p of OWNER_PROGRAMS) s.links.push(obj.attachProgram(p));
      inNs(() => {
        for (const d of directions) s.links.push(attachTcx(obj.programFd(PROGRAMS[d]), ifindex, d, PROGRAMS[d]));
      });
    } catch (err) {
      for (const l of source?.links ?? []) l.destroy();
      source?.ring.close();
      obj.close();
      throw err;
    }
    const interval = options.drainIntervalMs ?? 20;
    source.timer = setInterval(() => source.drainNow(), interval);
    source.timer.unref();
    return source;
  }

  /** Changes the filter while running. Fields given replace the current ones; absent fields stay. */
  updateFilter(patch: PacketCaptureFilter): void {
    this.assertOpen();
    const defined = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
    const next = normalizePacketFilter({ ...this.filter, ...defined });
    this.writeFilter(next, this.filter);
    this.filter = next;
  }

  /** The filter in force. */
  currentFilter(): NormalizedPacketCaptureFilter {
    return structuredClone(this.filter);
  }

  /** Kernel ids of the attached programs (as `bpftool net show` lists them). */
  programIds(): number[] {
    this.assertOpen();
    const wanted = new Set(this.directions.map((d) => PROGRAMS[d]));
    return this.obj
      .programs()
      .filter((p) => wanted.has(p.name))
      .map((p) => p.id);
  }

  /** Drains everything in the ring buffer now and delivers it. Returns the number of records drained. */
  drainNow(): number {
    if (this.closed) return 0;
    const packets: PacketRecord[] = [];
    const wallOffset = bootToWallOffsetNs();
    let drained = 0;
    // Bounded: what arrives while we decode waits for the next tick.
    for (let i = 0; i < MAX_DRAINS_PER_TICK; i++) {
      const { bytes, records } = this.ring.drain(this.drainBuffer);
      if (records === 0) break;
      let stats: PacketDecodeStats;
      if (this.onDrained) {
        try {
          stats = this.onDrained(this.drainBuffer, bytes, wallOffset);
        } catch (err) {
          this.onError(err);
          stats = { records, malformed: 0 };
        }
      } else {
        stats = decodeDrainedPackets(this.drainBuffer, bytes, wallOffset, packets);
      }
      drained += stats.records;
      this.recordsDrained += BigInt(stats.records);
      this.recordsMalformed += BigInt(stats.malformed);
      if (bytes < this.drainBuffer.length / 2) break;
    }
    if (packets.length > 0 && this.onPackets) {
      try {
        this.onPackets(packets);
      } catch (err) {
        this.onError(err);
      }
    }
    if (!this.closed) this.catchUp.afterDrain(this.ring.pendingBytes());
    return drained;
  }

  counters(): PacketCaptureCounters {
    this.assertOpen();
    const out = readNamedCounters(this.countersMap, hdrcapPktCounter, HDRCAP_PKT_CNT__COUNT, "HDRCAP_PKT_CNT_");
    return {
      ...(out as unknown as Omit<PacketCaptureCounters, "recordsDrained" | "recordsMalformed">),
      recordsDrained: this.recordsDrained,
      recordsMalformed: this.recordsMalformed,
    };
  }

  /** Detaches from the interface, delivers what is still buffered, unloads everything. Idempotent. */
  close(): void {
    if (this.closed) return;
    if (this.timer) clearInterval(this.timer);
    for (const l of this.links) l.destroy();
    this.links = [];
    try {
      this.drainNow();
    } finally {
      this.closed = true;
      this.ring.close();
      this.obj.close();
    }
  }

  private assertOpen(): void {
    if (this.closed) throw new Error("packet capture source is closed");
  }

  /** New set entries first, then the config (which switches filters on/off), then stale entries out. */
  private writeFilter(next: NormalizedPacketCaptureFilter, prev: NormalizedPacketCaptureFilter): void {
    swapFilterSets(this.setMaps, packetFilterSetKeys(next), packetFilterSetKeys(prev), () =>
      this.configMap.update(Buffer.alloc(4), encodePacketConfig(next)),
    );
  }
}
