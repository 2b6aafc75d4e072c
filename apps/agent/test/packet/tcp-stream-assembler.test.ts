import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { HttpRecord } from "@hdrcap/api/records";
import type { CapturedChunk, Direction } from "../../src/capture/chunk.ts";
import { createHeaderPolicy } from "../../src/capture/http/header-policy.ts";
import { HttpDecoder } from "../../src/capture/http/http-decoder.ts";
import { IPPROTO_TCP, IPPROTO_UDP, type PacketRecord, TCP_FLAGS, tcpFlagNames } from "../../src/capture/packet/packet-record.ts";
import { TcpStreamAssembler } from "../../src/capture/packet/tcp-stream-assembler.ts";

const SERVER = { ip: "192.0.2.1", port: 8080 };
const CLIENT = { ip: "192.0.2.2", port: 40_123 };
const T0 = 1_735_689_600_000_000_000n;

/** A TCP packet as the capture source decodes it, on the server's interface. */
function tcpPacket(
  direction: Direction,
  seq: number,
  flags: number,
  payload: Buffer = Buffer.alloc(0),
  tsNs: bigint = T0,
  capturedBytes = payload.length,
): PacketRecord {
  const [src, dst] = direction === "ingress" ? [CLIENT, SERVER] : [SERVER, CLIENT];
  return {
    tsNs,
    ifindex: 2,
    direction,
    family: 4,
    src: src.ip,
    dst: dst.ip,
    srcPort: src.port,
    dstPort: dst.port,
    protocol: IPPROTO_TCP,
    ttl: 64,
    dscp: 0,
    ecn: 0,
    ipTotalLength: 52 + payload.length,
    ipId: 0,
    ipFragOff: 0x4000,
    flowLabel: 0,
    skbLength: 66 + payload.length,
    tcp: { seq, ack: 0, flags, flagNames: tcpFlagNames(flags), window: 500, headerLength: 32, options: { sackPermitted: false } },
    payloadLength: payload.length,
    payload: payload.subarray(0, capturedBytes),
    payloadTruncated: capturedBytes < payload.length,
    fragment: false,
    l4Truncated: false,
    gso: false,
    socketCookie: 0n,
    tgid: 0,
    comm: "",
  };
}

const REQUESTS = Buffer.from(
  "GET /a?x=1 HTTP/1.1\r\nHost: example.test\r\nUser-Agent: t/1\r\nX-Dup: 1\r\nX-Dup: 2\r\n\r\n" +
    "POST /b HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\n\r\nhello",
  "latin1",
);
const RESPONSES = Buffer.from(
  "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nServer: s\r\n\r\nabc" +
    "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nxyz\r\n0\r\n\r\n",
  "latin1",
);
const ISN = { ingress: 4_294_967_000, egress: 77 };

function cut(stream: Buffer, cuts: number[]): { from: number; data: Buffer }[] {
  const points = [...new Set([0, ...cuts.filter((c) => c > 0 && c < stream.length), stream.length])].sort((a, b) => a - b);
  return points.slice(0, -1).map((from, i) => ({ from, data: stream.subarray(from, points[i + 1]) }));
}

/** What HttpDecoder makes of it, minus the fields that legitimately differ between sources. */
function essence(records: HttpRecord[]) {
  return records.map(({ ts: _ts, connectionId: _c, latencyMs: _l, ...rest }) => rest);
}

const keepAll = () => new HttpDecoder({ policy: createHeaderPolicy({ redactMode: "mask", allowSensitive: true }) });

/** The same exchange as the socket source would deliver it to the server's socket. */
function socketChunks(): CapturedChunk[] {
  const base = { pid: 0, tgid: 0, comm: "", cgroupId: 0n, connId: "s", local: SERVER, remote: CLIENT, role: "server" as const };
  return [
    { ...base, tsNs: T0, direction: "ingress", streamOffset: 0, data: REQUESTS, length: REQUESTS.length },
    { ...base, tsNs: T0 + 1n, direction: "egress", streamOffset: 0, data: RESPONSES, length: RESPONSES.length },
  ];
}

describe("TcpStreamAssembler", () => {
  it("gives HttpDecoder the same records as the socket source for any segmentation, reordering and retransmission", () => {
    const expected = essence(keepAll().push(socketChunks()));
    expect(expected).toHaveLength(4);
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: REQUESTS.length - 1 }), { maxLength: 12 }),
        fc.uniqueArray(fc.integer({ min: 1, max: RESPONSES.length - 1 }), { maxLength: 12 }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 40, maxLength: 40 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (reqCuts, respCuts, keys, dupes) => {
          const data: PacketRecord[] = [];
          for (const [dir, stream, cuts] of [
            ["ingress", REQUESTS, reqCuts],
            ["egress", RESPONSES, respCuts],
          ] as const) {
            for (const s of cut(stream, cuts))
              data.push(tcpPacket(dir, (ISN[dir] + 1 + s.from) % 2 ** 32, TCP_FLAGS.ACK | TCP_FLAGS.PSH, s.data));
          }
          for (const d of dupes) data.push(data[d % data.length]!);
          // Reorder within a direction too; timestamps keep responses after requests.
          const shuffled = data
            .map((p, i) => ({ p, k: (p.direction === "ingress" ? 0 : 1) + keys[i % keys.length]! / 2 }))
            .sort((a, b) => a.k - b.k)
            .map((x, i) => ({ ...x.p, tsNs: T0 + BigInt(i) }));
          const packets = [
            tcpPacket("ingress", ISN.ingress, TCP_FLAGS.SYN),
            tcpPacket("egress", ISN.egress, TCP_FLAGS.SYN | TCP_FLAGS.ACK),
            ...shuffled,
          ];
          const asm = new TcpStreamAssembler();
          const chunks = [...asm.push(packets), ...asm.flushAll()];
          expect(new Set(chunks.map((c) => c.role))).toEqual(new Set(["server"]));
          expect(essence(keepAll().push(chunks))).toEqual(expected);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("keeps both directions of a connection under one connection id, local side from the packet direction", () => {
    const asm = new TcpStreamAssembler({ connIdPrefix: "p" });
    const chunks = asm.push([
      tcpPacket("ingress", 10, TCP_FLAGS.SYN),
      tcpPacket("egress", 500, TCP_FLAGS.SYN | TCP_FLAGS.ACK),
      tcpPacket("ingress", 11, TCP_FLAGS.ACK, Buffer.from("GET / HTTP/1.1\r\n\r\n")),
      tcpPacket("egress", 501, TCP_FLAGS.ACK, Buffer.from("HTTP/1.1 204 No Content\r\n\r\n")),
    ]);
    expect(chunks.map((c) => [c.connId, c.direction, c.local.port, c.remote.port, c.streamOffset, c.role])).toEqual([
      ["p1", "ingress", SERVER.port, CLIENT.port, 0, "server"],
      ["p1", "egress", SERVER.port, CLIENT.port, 0, "server"],
    ]);
  });

  it("marks the local side as client when it sent the SYN, and unknown without a handshake", () => {
    const client = new TcpStreamAssembler();
    const c = client.push([
      tcpPacket("egress", 1, TCP_FLAGS.SYN),
      tcpPacket("egress", 2, TCP_FLAGS.ACK, Buffer.from("x")),
    ]);
    expect(c[0]?.role).toBe("client");
    const midstream = new TcpStreamAssembler();
    expect(midstream.push([tcpPacket("ingress", 9, TCP_FLAGS.ACK, Buffer.from("x"))])[0]?.role).toBe("unknown");
  });

  it("reports a lost segment to the decoder as a jump in the stream offset", () => {
    const asm = new TcpStreamAssembler();
    const chunks = [
      ...asm.push([
        tcpPacket("ingress", 0, TCP_FLAGS.SYN),
        tcpPacket("ingress", 1, TCP_FLAGS.ACK, Buffer.from("aaaa")),
        tcpPacket("ingress", 9, TCP_FLAGS.ACK, Buffer.from("cccc")),
      ]),
      ...asm.flushAll(),
    ];
    expect(chunks.map((c) => [c.streamOffset, c.length])).toEqual([
      [0, 4],
      [8, 4],
    ]);
    expect(asm.counters()).toMatchObject({ gaps: 1, gapBytes: 4 });
  });

  it("starts a new connection id when a new handshake reuses the 4-tuple", () => {
    const asm = new TcpStreamAssembler({ connIdPrefix: "p" });
    const a = asm.push([tcpPacket("ingress", 100, TCP_FLAGS.SYN), tcpPacket("ingress", 101, TCP_FLAGS.ACK, Buffer.from("a"))]);
    const b = asm.push([tcpPacket("ingress", 9000, TCP_FLAGS.SYN), tcpPacket("ingress", 9001, TCP_FLAGS.ACK, Buffer.from("b"))]);
    expect([a[0]?.connId, b[0]?.connId]).toEqual(["p1", "p2"]);
    expect(b[0]?.streamOffset).toBe(0);
  });

  it("ignores packets that are not TCP", () => {
    const asm = new TcpStreamAssembler();
    const udp = { ...tcpPacket("ingress", 0, 0, Buffer.from("x")), protocol: IPPROTO_UDP, tcp: undefined, udp: { length: 9 } };
    expect(asm.push([udp])).toEqual([]);
    expect(asm.counters().packetsIgnored).toBe(1);
  });

  it("ends a flow at FIN from both sides (or from the only side this hook sees), after its last chunks", () => {
    const closed: string[] = [];
    const asm = new TcpStreamAssembler({ connIdPrefix: "p", onFlowClosed: (id) => closed.push(id) });
    const chunks = asm.push([
      tcpPacket("ingress", 10, TCP_FLAGS.SYN),
      tcpPacket("egress", 500, TCP_FLAGS.SYN | TCP_FLAGS.ACK),
      tcpPacket("ingress", 11, TCP_FLAGS.ACK | TCP_FLAGS.FIN, Buffer.from("GET / HTTP/1.0\r\n\r\n")),
    ]);
    expect(chunks.map((c) => c.connId)).toEqual(["p1"]);
    expect(closed).toEqual([]); // the server may still answer after the client's FIN
    asm.push([tcpPacket("egress", 501, TCP_FLAGS.ACK | TCP_FLAGS.FIN, Buffer.from("HTTP/1.0 204 No Content\r\n\r\n"))]);
    expect(closed).toEqual(["p1"]);
    expect(asm.flowCount).toBe(0);
    // The last ACK of the closed connection starts nothing.
    expect(asm.push([tcpPacket("ingress", 31, TCP_FLAGS.ACK)])).toEqual([]);
    expect(asm.flowCount).toBe(0);

    const oneWay = new TcpStreamAssembler({ connIdPrefix: "q", onFlowClosed: (id) => closed.push(id) });
    oneWay.push([tcpPacket("ingress", 7, TCP_FLAGS.ACK, Buffer.from("x")), tcpPacket("ingress", 8, TCP_FLAGS.ACK | TCP_FLAGS.FIN)]);
    expect(closed).toEqual(["p1", "q1"]);
  });

  it("keeps the bytes of a segment held out of order when the caller reuses its buffer", () => {
    const asm = new TcpStreamAssembler();
    const scratch = Buffer.from("bbbb");
    const out: CapturedChunk[] = [];
    const seg = (seq: number, payload: Buffer) => ({
      tsNs: T0,
      direction: "ingress" as const,
      src: CLIENT.ip,
      dst: SERVER.ip,
      srcPort: CLIENT.port,
      dstPort: SERVER.port,
      seq,
      flags: TCP_FLAGS.ACK,
      payloadLength: payload.length,
      payload,
      tgid: 0,
      comm: "",
    });
    asm.pushSegment({ ...seg(0, Buffer.alloc(0)), flags: TCP_FLAGS.SYN }, out);
    asm.pushSegment(seg(5, scratch), out); // early: held
    scratch.fill(0x7a); // the next drain overwrites the buffer
    asm.pushSegment(seg(1, Buffer.from("aaaa")), out);
    expect(Buffer.concat(out.map((c) => c.data)).toString()).toBe("aaaabbbb");
  });

  it("shares a flow's endpoints and joins the process its egress packets named", () => {
    const asm = new TcpStreamAssembler();
    const chunks = asm.push([
      tcpPacket("ingress", 10, TCP_FLAGS.ACK, Buffer.from("a")),
      { ...tcpPacket("egress", 90, TCP_FLAGS.ACK, Buffer.from("b")), tgid: 42, comm: "srv" },
      tcpPacket("ingress", 11, TCP_FLAGS.ACK, Buffer.from("c")),
    ]);
    expect(chunks.map((c) => [c.tgid, c.comm])).toEqual([
      [0, ""],
      [42, "srv"],
      [42, "srv"],
    ]);
    expect(chunks[0]!.local).toBe(chunks[2]!.local);
  });
});
