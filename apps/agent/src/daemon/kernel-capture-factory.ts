/**
 * The CaptureFactory backed by the kernel: a CaptureSpec from the desired state
 * becomes an HttpCapture (eBPF socket or packet source + HTTP decoder + header policy).
 */
import type { CaptureSpec } from "@hdrcap/api/captures";
import { HttpCapture, type HttpCaptureCounters, type HttpCaptureOptions } from "../capture/http-capture.ts";
import type { CaptureEngineCounters, CaptureFactory } from "./capture-factory.ts";

export function httpCaptureOptionsFromSpec(spec: CaptureSpec): Pick<HttpCaptureOptions, "filter" | "policy" | "source"> {
  return {
    source: spec.source.kind === "packet" && spec.source.interface ? { kind: "packet", ifname: spec.source.interface } : { kind: "socket" },
    filter: {
      ports: spec.filter.ports,
      tgids: spec.filter.pids,
      comm: spec.filter.comm,
      role: spec.filter.role,
      captureBytes: spec.limits.captureBytes,
    },
    policy: {
      include: spec.headers.include,
      redact: spec.headers.redact,
      redactMode: spec.headers.redactMode,
      allowSensitive: spec.headers.allowSensitive,
      hashKey: Buffer.from(spec.hashKey, "base64"),
    },
  };
}

export function engineCountersFromHttpCapture(c: HttpCaptureCounters): CaptureEngineCounters {
  return {
    seen: Number(c.kernel.syscallsSeen),
    emitted: Number(c.kernel.chunksEmitted),
    lostInKernel: Number(c.kernel.ringbufFull),
    truncated: Number(c.kernel.truncated),
    malformed: c.decoder.malformed + c.decoder.oversize,
    records: c.recordsDelivered,
  };
}

export const kernelCaptureFactory: CaptureFactory = (options) => {
  const capture = HttpCapture.start({
    ...httpCaptureOptionsFromSpec(options.spec),
    maxRecords: options.maxRecords,
    durationSeconds: options.durationSeconds,
    onRecords: (records) => options.onRecords(records),
    onStop: (reason) => options.onEnd(reason === "requested" ? "error" : reason),
  });
  return {
    counters: () => engineCountersFromHttpCapture(capture.counters()),
    stop: () => capture.stop("requested"),
  };
};
