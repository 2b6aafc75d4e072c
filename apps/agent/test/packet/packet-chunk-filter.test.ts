import { describe, expect, it } from "vitest";
import type { CapturedChunk } from "../../src/capture/chunk.ts";
import { packetChunkFilter } from "../../src/capture/packet/packet-chunk-filter.ts";

const chunk = (role: CapturedChunk["role"], localPort: number, remotePort: number) =>
  ({ role, local: { ip: "127.0.0.1", port: localPort }, remote: { ip: "127.0.0.1", port: remotePort } }) as CapturedChunk;

describe("packetChunkFilter (what the packet source checks in the agent)", () => {
  it("is absent when the kernel's port filter says it all", () => {
    expect(packetChunkFilter({ ports: [80] })).toBeNull();
    expect(packetChunkFilter({ role: "any", tgids: [] })).toBeNull();
  });

  it("keeps only the chunks of connections in the role, never those of unknown role", () => {
    const keep = packetChunkFilter({ role: "server" })!;
    expect([chunk("server", 80, 5000), chunk("client", 5000, 80), chunk("unknown", 80, 5000)].map(keep)).toEqual([true, false, false]);
  });

  it("checks local and remote ports on their own side", () => {
    const keep = packetChunkFilter({ localPorts: [80], remotePorts: [5000, 5001] })!;
    expect([chunk("server", 80, 5000), chunk("server", 80, 6000), chunk("client", 5000, 80), chunk("server", 80, 5001)].map(keep)).toEqual([true, false, false, true]);
  });

  it("refuses process filters, which packets cannot honour", () => {
    expect(() => packetChunkFilter({ tgids: [1] })).toThrow(/socket source/);
    expect(() => packetChunkFilter({ comm: "nginx" })).toThrow(/socket source/);
    expect(() => packetChunkFilter({ cgroupIds: [1n] })).toThrow(/socket source/);
  });
});
