/**
 * The TC capture's in-kernel filters: port set, CIDR tries (IPv4 and IPv6,
 * either address), protocol, 1-in-N sampling, all changeable while
 * attached, with counters that add up: seen = filtered + matched and
 * matched = sampledOut + emitted + ringbufFull.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type PacketCaptureCounters, type PacketCaptureOptions, PacketCaptureSource } from "../../src/capture/packet/packet-capture-source.ts";
import type { PacketRecord } from "../../src/capture/packet/packet-record.ts";
import { createPacketTestNet, type PacketTestNet, sleep } from "./fixtures/packet-netns.ts";

let net: PacketTestNet;

beforeAll(() => {
  net = createPacketTestNet();
});
afterAll(() => net?.remove());

/** Sends n UDP datagrams from namespace b and waits until the sender is done. */
async function sendUdp(dst: string, port: number, n: number, size = 100): Promise<void> {
  const sender = await net.peer(net.b, ["udp-send", dst, String(port), String(size), String(n)]);
  try {
    await sender.waitFor((l) => l.sent === n, 20_000);
  } finally {
    sender.stop();
  }
}

function open(packets: PacketRecord[], filter: Omit<PacketCaptureOptions, "ifname" | "netns" | "onPackets">) {
  return PacketCaptureSource.open({
    ifname: net.ifA,
    netns: net.a,
    direction: "ingress",
    ...filter,
    onPackets: (p) => packets.push(...p),
  });
}

async function settle(source: PacketCaptureSource): Promise<void> {
  await sleep(100);
  source.drainNow();
}

function expectConsistent(c: PacketCaptureCounters): void {
  expect(c.seen).toBe(c.filtered + c.matched);
  expect(c.matched).toBe(c.sampledOut + c.emitted + c.ringbufFull);
  expect(c.recordsDrained).toBe(c.emitted);
}

describe("packet capture filters", () => {
  it("keeps only packets with a listed port on either side, and follows port changes while attached", async () => {
    const packets: PacketRecord[] = [];
    const source = open(packets, { ports: [19_001] });
    try {
      await sendUdp(net.ipv4.a, 19_001, 10);
      await sendUdp(net.ipv4.a, 19_002, 10);
      await settle(source);
      expect(packets.map((p) => p.dstPort)).toEqual(new Array(10).fill(19_001));
      const first = source.counters();
      expect(first.matched).toBe(10n);
      expectConsistent(first);

      source.updateFilter({ ports: [19_002] });
      packets.length = 0;
      await sendUdp(net.ipv4.a, 19_001, 10);
      await sendUdp(net.ipv4.a, 19_002, 10);
      await settle(source);
      expect(packets.map((p) => p.dstPort)).toEqual(new Array(10).fill(19_002));
      expect(source.currentFilter().ports).toEqual([19_002]);
      const second = source.counters();
      expect(second.matched).toBe(20n);
      expectConsistent(second);
    } finally {
      source.close();
    }
  });

  it("keeps only packets whose source or destination is inside an allowed CIDR, for IPv4 and IPv6", async () => {
    const packets: PacketRecord[] = [];
    const source = open(packets, { cidrs: [`${net.ipv4.a2}/32`, "fd48:4350::10/128"], protocols: ["udp"] });
    try {
      for (const dst of [net.ipv4.a, net.ipv4.a2, net.ipv6.a, net.ipv6.a2]) await sendUdp(dst, 19_010, 5);
      await settle(source);
      expect(packets.map((p) => p.dst)).toEqual([...new Array(5).fill(net.ipv4.a2), ...new Array(5).fill(net.ipv6.a2)]);
      expectConsistent(source.counters());

      // The sender's side of the address pair matches as well (either address); a v4-only list drops IPv6.
      source.updateFilter({ cidrs: ["198.51.100.0/30"] });
      packets.length = 0;
      for (const dst of [net.ipv4.a2, net.ipv6.a2]) await sendUdp(dst, 19_010, 5);
      await settle(source);
      expect(packets.map((p) => [p.src, p.dst])).toEqual(new Array(5).fill([net.ipv4.b, net.ipv4.a2]));
    } finally {
      source.close();
    }
  });

  it("keeps only the listed protocols", async () => {
    const packets: PacketRecord[] = [];
    const source = open(packets, { protocols: ["tcp"], ports: [19_020] });
    try {
      await sendUdp(net.ipv4.a, 19_020, 10);
      await settle(source);
      expect(packets).toEqual([]);
      const c = source.counters();
      expect(c.matched).toBe(0n);
      expect(c.filtered).toBeGreaterThanOrEqual(10n);
      expectConsistent(c);
      source.updateFilter({ protocols: ["udp"] });
      await sendUdp(net.ipv4.a, 19_020, 10);
      await settle(source);
      expect(packets).toHaveLength(10);
    } finally {
      source.close();
    }
  });

  it("samples one matched packet in N, within binomial tolerance over 4000 packets, with exact counters", async () => {
    const packets: PacketRecord[] = [];
    const n = 4000;
    const source = open(packets, { ports: [19_030], sampleEvery: 4 });
    try {
      await sendUdp(net.ipv4.a, 19_030, n, 20);
      await settle(source);
      const c = source.counters();
      expectConsistent(c);
      expect(c.matched).toBe(BigInt(n));
      expect(c.ringbufFull).toBe(0n);
      // Expected 1000, sd = sqrt(4000 * 1/4 * 3/4) ≈ 27: allow 5 sd.
      expect(Number(c.emitted)).toBeGreaterThan(1000 - 140);
      expect(Number(c.emitted)).toBeLessThan(1000 + 140);
      expect(packets).toHaveLength(Number(c.emitted));
    } finally {
      source.close();
    }
  });
});
