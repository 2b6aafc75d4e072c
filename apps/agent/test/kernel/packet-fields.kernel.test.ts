/**
 * The TC capture records L3/L4 header elements exactly as the kernel put
 * them on the wire: a TCP handshake and a UDP datagram between two test
 * namespaces, checked against what the sockets themselves report (ss -ti).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PacketCaptureSource } from "../../src/capture/packet/packet-capture-source.ts";
import type { PacketRecord } from "../../src/capture/packet/packet-record.ts";
import { createPacketTestNet, type PacketTestNet, sleep } from "./fixtures/packet-netns.ts";

let net: PacketTestNet;

beforeAll(() => {
  net = createPacketTestNet();
});
afterAll(() => net?.remove());

interface SsInfo {
  /** wscale:<peer's>,<own> */
  sndWscale: number;
  rcvWscale: number;
  advmss: number;
}

/** The established socket's TCP info from `ss -tni` inside a namespace. */
function ssInfo(ns: string, localPort: number): SsInfo {
  const out = net.exec(ns, "ss", ["-tniH", "state", "established", `( sport = :${localPort} )`]);
  const wscale = /wscale:(\d+),(\d+)/.exec(out);
  const advmss = /advmss:(\d+)/.exec(out);
  if (!wscale || !advmss) throw new Error(`unexpected ss output: ${out}`);
  return {
    sndWscale: Number(wscale[1]),
    rcvWscale: Number(wscale[2]),
    advmss: Number(advmss[1]),
  };
}

async function collect(source: PacketCaptureSource, packets: PacketRecord[], pred: () => boolean, what: string) {
  const deadline = Date.now() + 5000;
  while (!pred()) {
    source.drainNow();
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; have ${packets.length} packets`);
    await sleep(10);
  }
}

describe.each([4, 6] as const)("over IPv%d", (family) => {
  it("records the handshake's flags, TTL, lengths and TCP options as both sockets negotiated them", async () => {
    const ip = family === 4 ? net.ipv4 : net.ipv6;
    const port = 18_000 + family;
    const packets: PacketRecord[] = [];
    const source = PacketCaptureSource.open({
      ifname: net.ifA,
      netns: net.a,
      ports: [port],
      payloadBytes: 32,
      onPackets: (p) => packets.push(...p),
    });
    const server = await net.peer(net.a, ["tcp-server", ip.a, String(port)]);
    const client = await net.peer(net.b, ["tcp-client", ip.a, String(port), "100"]);
    try {
      const { localPort } = (await client.waitFor((l) => l.connected === true)) as { localPort: number };
      await collect(source, packets, () => packets.some((p) => p.payloadLength === 100), "the data segment");
      const tcpOf = (dir: string, flags: string) =>
        packets.find((p) => p.direction === dir && p.tcp?.flagNames.join(",") === flags);
      const syn = tcpOf("ingress", "SYN");
      const synAck = tcpOf("egress", "SYN,ACK");
      const data = packets.find((p) => p.payloadLength === 100);
      expect(syn && synAck && data).toBeTruthy();
      if (!syn?.tcp || !synAck?.tcp || !data?.tcp) return;

      const clientInfo = ssInfo(net.b, localPort);
      const serverInfo = ssInfo(net.a, port);
      const ipHeader = family === 4 ? 20 : 40;
      const mtu = Number(/mtu (\d+)/.exec(net.exec(net.b, "ip", ["link", "show", net.ifB]))?.[1]);
      // The SYN advertises the MTU-derived MSS; ss's advmss excludes the 12 bytes of the timestamps option.
      const wireMss = mtu - ipHeader - 20;
      expect(clientInfo.advmss).toBe(wireMss - 12);

      expect(syn).toMatchObject({
        family,
        src: ip.b,
        dst: ip.a,
        srcPort: localPort,
        dstPort: port,
        protocol: 6,
        ttl: 64,
        dscp: 0,
        ecn: 0,
        ipTotalLength: ipHeader + syn.tcp.headerLength,
        payloadLength: 0,
        fragment: false,
      });
      if (family === 4) expect(syn.ipFragOff).toBe(0x4000); // DF, no offset
      expect(syn.tcp.ack).toBe(0);
      expect(syn.tcp.options).toEqual({
        mss: wireMss,
        windowScale: clientInfo.rcvWscale,
        sackPermitted: true,
        timestamps: { tsval: syn.tcp.options.timestamps?.tsval, tsecr: 0 },
      });

      expect(synAck).toMatchObject({ src: ip.a, dst: ip.b, srcPort: port, dstPort: localPort, ttl: 64 });
      expect(synAck.tcp.ack).toBe((syn.tcp.seq + 1) % 2 ** 32);
      expect(synAck.tcp.options).toEqual({
        mss: serverInfo.advmss + 12,
        windowScale: clientInfo.sndWscale,
        sackPermitted: true,
        timestamps: { tsval: synAck.tcp.options.timestamps?.tsval, tsecr: syn.tcp.options.timestamps?.tsval },
      });
      expect(serverInfo.rcvWscale).toBe(clientInfo.sndWscale);

      expect(data.tcp.seq).toBe((syn.tcp.seq + 1) % 2 ** 32);
      expect(data.tcp.ack).toBe((synAck.tcp.seq + 1) % 2 ** 32);
      expect(data.tcp.flagNames).toContain("ACK");
      expect(data.ipTotalLength).toBe(ipHeader + data.tcp.headerLength + 100);
      expect(data.payload).toEqual(Buffer.alloc(32, 0x61));
      expect(data.payloadTruncated).toBe(true);
      expect(data.ifindex).toBe(source.ifindex);
      // The egress SYN-ACK carries the server socket's cookie; ingress packets have no socket yet.
      expect(synAck.socketCookie).toBeGreaterThan(0n);
    } finally {
      client.stop();
      server.stop();
      source.close();
    }
  });

  it("records a UDP datagram's length fields and payload prefix", async () => {
    const ip = family === 4 ? net.ipv4 : net.ipv6;
    const port = 18_100 + family;
    const packets: PacketRecord[] = [];
    const source = PacketCaptureSource.open({
      ifname: net.ifA,
      netns: net.a,
      direction: "ingress",
      ports: [port],
      protocols: ["udp"],
      payloadBytes: 64,
      onPackets: (p) => packets.push(...p),
    });
    const sender = await net.peer(net.b, ["udp-send", ip.a, String(port), "333", "1"]);
    try {
      const { localPort } = (await sender.waitFor((l) => l.ready === true)) as { localPort: number };
      await collect(source, packets, () => packets.length > 0, "the datagram");
      await sleep(50);
      source.drainNow();
      expect(packets).toHaveLength(1);
      const [p] = packets;
      expect(p).toMatchObject({
        direction: "ingress",
        family,
        src: ip.b,
        dst: ip.a,
        srcPort: localPort,
        dstPort: port,
        protocol: 17,
        ttl: 64,
        ipTotalLength: (family === 4 ? 20 : 40) + 8 + 333,
        udp: { length: 8 + 333 },
        payloadLength: 333,
        payload: Buffer.alloc(64, 0x75),
        payloadTruncated: true,
      });
      expect(p?.tcp).toBeUndefined();
      const c = source.counters();
      expect(c).toMatchObject({ emitted: 1n, matched: 1n, payloadUncopied: 333n - 64n, recordsDrained: 1n });
      expect(c.seen).toBe(c.filtered + c.matched);
    } finally {
      sender.stop();
      source.close();
    }
  });
});
