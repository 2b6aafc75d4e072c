/**
 * HttpCapture with the packet-level source (TC on one interface) instead of the
 * socket syscalls: the same records reach onRecords, exactly as on the wire.
 */
import type { HttpRecord } from "@hdrcap/api/records";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HttpCapture } from "../../src/capture/http-capture.ts";
import { createPacketTestNet, type PacketTestNet, sleep } from "./fixtures/packet-netns.ts";

let net: PacketTestNet;
beforeAll(() => {
  net = createPacketTestNet();
});
afterAll(() => net?.remove());

describe("HttpCapture with source: packet", () => {
  it("delivers exact request and response records from TC packets, with redaction applied", async () => {
    const port = 18_310;
    const records: HttpRecord[] = [];
    const capture = HttpCapture.start({
      source: { kind: "packet", ifname: net.ifA, netns: net.a },
      filter: { ports: [port], captureBytes: 4096 },
      policy: { redactMode: "mask" },
      onRecords: (r) => records.push(...r),
      drainIntervalMs: 10,
    });
    const server = await net.peer(net.a, ["http-server", net.ipv4.a, String(port)]);
    try {
      net.exec(net.b, "curl", ["-sS", "-o", "/dev/null", "-H", "X-Trace-Id: t-1", "-H", "Authorization: Bearer s3cr3t", `http://${net.ipv4.a}:${port}/packet?x=1`]);
      const served = (await server.waitFor((l) => l.url === "/packet?x=1")) as { rawHeaders: string[]; remotePort: number };
      const deadline = Date.now() + 5000;
      while (records.filter((r) => r.kind === "response").length < 1 && Date.now() < deadline) await sleep(50);

      const request = records.find((r) => r.kind === "request");
      const response = records.find((r) => r.kind === "response");
      const pairs = (raw: string[]) => raw.flatMap((v, i) => (i % 2 === 0 ? [{ name: v, value: raw[i + 1] ?? "" }] : []));
      expect(request).toMatchObject({ method: "GET", path: "/packet?x=1", version: "HTTP/1.1", role: "server" });
      expect(request!.headers).toEqual(pairs(served.rawHeaders).map((h) => (h.name === "Authorization" ? { ...h, value: "[REDACTED]" } : h)));
      expect(request!.src).toEqual({ ip: net.ipv4.b, port: served.remotePort });
      expect(response).toMatchObject({ status: 200, role: "server", src: { ip: net.ipv4.a, port } });
      expect(response!.latencyMs).toBeGreaterThanOrEqual(0);
      const k = capture.counters().kernel;
      expect(k.chunksEmitted).toBeGreaterThan(0n);
      expect(k.ringbufFull).toBe(0n);
    } finally {
      server.stop();
      capture.stop();
    }
  });

  it("applies the role filter to both sides of a loopback connection, and refuses process filters", async () => {
    const port = 18_311;
    const run = async (role: "server" | "any") => {
      const records: HttpRecord[] = [];
      const capture = HttpCapture.start({
        // On lo each packet passes both hooks: the client's and the server's flows are both seen.
        source: { kind: "packet", ifname: "lo", netns: net.a, direction: "both" },
        filter: { ports: [port], role },
        onRecords: (r) => records.push(...r),
        drainIntervalMs: 10,
      });
      const server = await net.peer(net.a, ["http-server", "127.0.0.1", String(port)]);
      try {
        net.exec(net.a, "curl", ["-sS", "-o", "/dev/null", `http://127.0.0.1:${port}/role-${role}`]);
        await server.waitFor((l) => l.url === `/role-${role}`);
        const want = role === "any" ? 4 : 2;
        const deadline = Date.now() + 5000;
        while (records.length < want && Date.now() < deadline) await sleep(50);
        await sleep(200); // anything beyond `want` would arrive by now
      } finally {
        server.stop();
        capture.stop();
      }
      return records.map((r) => `${r.role} ${r.kind}`).sort();
    };
    expect(await run("any")).toEqual(["client request", "client response", "server request", "server response"]);
    expect(await run("server")).toEqual(["server request", "server response"]);
    expect(() =>
      HttpCapture.start({ source: { kind: "packet", ifname: "lo", netns: net.a }, filter: { ports: [port], tgids: [1] }, onRecords: () => {} }),
    ).toThrow(/need the socket source/);
  });
});
