/**
 * Child process for the in-process (library) capture mode: what an agent
 * embedding HttpCapture does, with records consumed by a counter. Bundled
 * by hdrcap-session.ts so its RSS and CPU are those of a real agent, not of
 * tsx. Talks to the bench over the fork IPC channel.
 *
 * argv: <port> [socket|packet|floor-attached|floor-drain|floor-packet-attached]. Messages out: ready, result.
 * Messages in: stop.
 *
 * The floor modes measure what parts of a capture cost on their own:
 * floor-attached loads and attaches the socket source's programs with a process filter that only
 * this worker passes (so every syscall of nginx and wrk runs them and leaves at the
 * first check); floor-drain captures as the agent does and drains and decodes the ring's
 * chunk events, but parses no HTTP (it counts chunks that start a message);
 * floor-packet-attached attaches the packet source's TC program to lo with a port filter no
 * packet matches (every packet runs it and leaves at the port check).
 */
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { HttpCapture, type HttpCaptureCounters } from "../../apps/agent/src/capture/http-capture.ts";
import { createHttpDecoderCounters } from "../../apps/agent/src/capture/http/counters.ts";
import { SocketCaptureSource } from "../../apps/agent/src/capture/socket/socket-capture-source.ts";
import type { WorkerMessage, WorkerResult } from "./hdrcap-protocol.ts";

const port = Number(process.argv[2]);
const variant = process.argv[3] ?? "socket";
const packetFloor = variant === "floor-packet-attached";
// packet: TC on loopback, ingress only (on lo every packet passes egress and ingress).
const source = variant === "packet" || packetFloor ? ({ kind: "packet", ifname: "lo", direction: "ingress" } as const) : ({ kind: "socket" } as const);
const VISIBILITY_SAMPLE_EVERY = 8;
const visibilityHistogramMs = new Uint32Array(10_001);
let requests = 0;
let responses = 0;
let seen = 0;

// Diagnostics: HDRCAP_BENCH_RING_MIB=N sizes the ring buffer (default: the agent's).
const ringMib = Number(process.env.HDRCAP_BENCH_RING_MIB ?? 0);

/** What the bench reads from the capture: HttpCapture, or a floor mode's bare socket source. */
interface BenchCapture {
  stop(): void;
  counters(): HttpCaptureCounters;
}

function startFloor(): BenchCapture {
  const filter = variant === "floor-attached" ? { tgids: [process.pid], ports: [port], role: "server" as const } : { ports: [port], role: "server" as const };
  const src = SocketCaptureSource.open({
    ...filter,
    ringBufferBytes: ringMib > 0 ? ringMib * 1024 * 1024 : undefined,
    borrowChunkData: true,
    onChunks: (chunks) => {
      for (const c of chunks) {
        if (!c.startsMessage) continue;
        if (c.direction === "ingress") requests++;
        else responses++;
      }
    },
  });
  let final: ReturnType<SocketCaptureSource["counters"]> | undefined;
  const decoder = createHttpDecoderCounters(); // no HTTP decoding here: all zero
  return {
    stop() {
      final = src.counters();
      src.close();
    },
    counters: () => ({ kernel: final ?? src.counters(), decoder, recordsDelivered: requests + responses, recordsOverBudget: 0 }),
  };
}

const capture: BenchCapture = variant.startsWith("floor-") && !packetFloor ? startFloor() : HttpCapture.start({
  source,
  // Port 1 (tcpmux): nothing on this host talks to it. The packet source sees lo's packets once, on ingress:
  // requests on nginx's end of a connection, responses on wrk's, so it takes either role (each message once).
  filter: { ports: [packetFloor ? 1 : port], role: variant === "socket" ? "server" : "any" },
  ringBufferBytes: ringMib > 0 ? ringMib * 1024 * 1024 : undefined,
  onRecords: (records) => {
    const now = Date.now();
    for (const r of records) {
      if (r.kind === "request") requests++;
      else responses++;
      // Sampled: Date.parse per record would be a visible part of the cost being measured.
      if (++seen % VISIBILITY_SAMPLE_EVERY === 0) {
        const ms = Math.max(0, Math.min(10_000, now - Date.parse(r.ts)));
        visibilityHistogramMs[ms]!++;
      }
    }
  },
});

// Diagnostics: a CPU profile of the capture only. Started after the programs are
// loaded: the profiler's signals interrupt the verifier (the load fails with EAGAIN).
const profilePath = process.env.HDRCAP_BENCH_CPU_PROFILE;
const profiler = profilePath ? new Session() : null;
if (profiler) {
  profiler.connect();
  profiler.post("Profiler.enable");
  profiler.post("Profiler.start");
}

const cpuAtReady = process.cpuUsage();
const send = (m: WorkerMessage) => process.send!(m);
send({ type: "ready" });

process.on("message", (m: { type: string }) => {
  if (m.type !== "stop") return;
  const cpuBeforeStop = process.cpuUsage(cpuAtReady);
  capture.stop();
  const cpu = process.cpuUsage(cpuAtReady);
  const c = capture.counters();
  const result: WorkerResult = {
    type: "result",
    requests,
    responses,
    recordsDelivered: c.recordsDelivered,
    ringbufFull: Number(c.kernel.ringbufFull),
    truncated: Number(c.kernel.truncated),
    malformed: c.decoder.malformed + Number(c.kernel.recordsMalformed),
    gaps: c.decoder.gaps,
    resyncs: c.decoder.resyncs,
    chunksEmitted: Number(c.kernel.chunksEmitted),
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    cpuSecondsBeforeStop: (cpuBeforeStop.user + cpuBeforeStop.system) / 1e6,
    visibilityHistogramMs: variant.startsWith("floor-") ? null : Array.from(visibilityHistogramMs),
    memoryAtStop: memoryAfterGc(),
  };
  if (profiler && profilePath) {
    profiler.post("Profiler.stop", (err, res) => {
      if (!err) writeFileSync(profilePath, JSON.stringify(res.profile));
      send(result);
      process.disconnect();
    });
    return;
  }
  send(result);
  process.disconnect();

});

/** With --expose-gc (diagnostics only), collect first so heapUsed is what is retained. */
function memoryAfterGc(): NodeJS.MemoryUsage {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage();
}
