/**
 * Packet-level HTTP: with payload capture on, TC packets reassembled per
 * flow and direction feed HttpDecoder the same CapturedChunks a socket
 * source would, so a Node http server in one namespace answering curl in
 * the other yields header records exactly as on the wire, and the same
 * records as the socket-level source (process identity aside: it is joined
 * for egress packets of sockets accepted or connected after the start).
 */
import type { HttpRecord } from "@hdrcap/api/records";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CapturedChunk } from "../../src/capture/chunk.ts";
import { createHeaderPolicy } from "../../src/capture/http/header-policy.ts";
import { HttpDecoder } from "../../src/capture/http/http-decoder.ts";
import { PacketCaptureSource } from "../../src/capture/packet/packet-capture-source.ts";
import type { PacketRecord } from "../../src/capture/packet/packet-record.ts";
import { TcpStreamAssembler } from "../../src/capture/packet/tcp-stream-assembler.ts";
import { SocketCaptureSource } from "../../src/capture/socket/socket-capture-source.ts";
import { createPacketTestNet, type PacketTestNet, sleep } from "./fixtures/packet-netns.ts";

let net: PacketTestNet;

beforeAll(() => {
  net = createPacketTestNet();
});
afterAll(() => net?.remove());

const decoder = () => new HttpDecoder({ policy: createHeaderPolicy({ redactMode: "mask", allowSensitive: true }) });

/** `curl -D -` output → the header fields of each response, in wire order. */
function curlResponseHeaders(dump: string): { status: number; headers: { name: string; value: string }[] }[] {
  return dump
    .split(/\r\n\r\n/)
    .filter((block) => block.startsWith("HTTP/"))
    .map((block) => {
      const [statusLine, ...lines] = block.split("\r\n");
      return {
        status: Number(statusLine?.split(" ")[1]),
        headers: lines.map((l) => ({ name: l.slice(0, l.indexOf(":")), value: l.slice(l.indexOf(":") + 1).trim() })),
      };
    });
}

describe.each([4, 6] as const)("over IPv%d", (family) => {
  it("reassembles the request and response header blocks exactly, as the socket source sees them", async () => {
    const ip = family === 4 ? net.ipv4 : net.ipv6;
    const port = 18_200 + family;
    const host = family === 4 ? ip.a : `[${ip.a}]`;
    const packets: PacketRecord[] = [];
    const socketChunks: CapturedChunk[] = [];
    const source = PacketCaptureSource.open({
      ifname: net.ifA,
      netns: net.a,
      ports: [port],
      payloadBytes: 4096,
      joinProcesses: true,
      onPackets: (p) => packets.push(...p),
    });
    let socketSource: SocketCaptureSource | undefined;
    const server = await net.peer(net.a, ["http-server", ip.a, String(port)]);
    try {
      socketSource = SocketCaptureSource.open({ localPorts: [port], onChunks: (c) => socketChunks.push(...c) });
      const dump = net.exec(net.b, "curl", [
        "-sS",
        "-g",
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        "-H",
        "X-Trace-Id: abc123",
        "-H",
        "Cookie: session=s3cr3t",
        "-H",
        "x-MiXeD-Case: Value With  Spaces",
        `http://${host}:${port}/first?q=1`,
        `http://${host}:${port}/second`,
      ]);
      const served = await server.waitFor((l) => l.url === "/second");
      const first = server.lines.find((l) => l.url === "/first?q=1") as { rawHeaders: string[]; remotePort: number };
      await sleep(100);
      source.drainNow();
      socketSource.drainNow();

      const asm = new TcpStreamAssembler();
      const chunks = [...asm.push(packets), ...asm.flushAll()];
      const records = decoder().push(chunks);
      expect(asm.counters()).toMatchObject({ gaps: 0 });

      const requests = records.filter((r) => r.kind === "request");
      const responses = records.filter((r) => r.kind === "response");
      const pairs = (raw: string[]) => raw.flatMap((v, i) => (i % 2 === 0 ? [{ name: v, value: raw[i + 1] ?? "" }] : []));
      expect(requests.map((r) => [r.method, r.path, r.headers])).toEqual([
        ["GET", "/first?q=1", pairs(first.rawHeaders)],
        ["GET", "/second", pairs((served as { rawHeaders: string[] }).rawHeaders)],
      ]);
      expect(requests[0]?.headers).toContainEqual({ name: "x-MiXeD-Case", value: "Value With  Spaces" });
      const curlSaw = curlResponseHeaders(dump);
      expect(responses.map((r) => ({ status: r.status, headers: r.headers }))).toEqual(curlSaw);
      for (const r of records) {
        expect(r.role).toBe("server");
        expect(r.kind === "request" ? r.dst : r.src).toEqual({ ip: ip.a, port });
        expect(r.kind === "request" ? r.src : r.dst).toEqual({ ip: ip.b, port: first.remotePort });
      }
      expect(responses.every((r) => r.latencyMs !== null && r.latencyMs >= 0)).toBe(true);
      // Process identity joins on egress packets only (the server's responses); requests arrive socketless.
      const serverPid = (served as { pid: number }).pid;
      expect(responses.map((r) => [r.pid, r.comm])).toEqual([
        [serverPid, "node"],
        [serverPid, "node"],
      ]);
      // Requests arrive socketless; a flow keeps the process its egress packets named, so the
      // request after the first response is the server's too, the first one is not known.
      expect(requests.map((r) => [r.pid, r.comm])).toEqual([
        [0, ""],
        [serverPid, "node"],
      ]);
      expect(packets.filter((p) => p.direction === "ingress").every((p) => p.tgid === 0 && p.socketCookie === 0n)).toBe(true);

      // The socket source, watching the server's socket, yields the same records.
      const essence = (rs: HttpRecord[]) => rs.map(({ ts: _t, connectionId: _c, latencyMs: _l, pid: _p, comm: _m, ...rest }) => rest);
      const socketRecords = decoder().push(socketChunks.filter((c) => c.local.port === port));
      expect(essence(records)).toEqual(essence(socketRecords));
      const c = source.counters();
      expect(c.seen).toBe(c.filtered + c.matched);
      expect(c.ringbufFull).toBe(0n);
      expect(c.payloadUncopied).toBe(0n);
    } finally {
      socketSource?.close();
      server.stop();
      source.close();
    }
  });
});
