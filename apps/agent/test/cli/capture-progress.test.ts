import { describe, expect, it } from "vitest";
import type { HttpCaptureCounters } from "../../src/capture/http-capture.ts";
import { createHttpDecoderCounters } from "../../src/capture/http/counters.ts";
import { formatProgress, type ProgressSample } from "../../src/cli/capture-progress.ts";

function sample(elapsedMs: number, records: number, lost = 0n, dropped = 0): ProgressSample {
  const kernel = { ringbufFull: lost, truncated: 2n } as HttpCaptureCounters["kernel"];
  const decoder = { ...createHttpDecoderCounters(), malformed: 1 };
  return {
    elapsedMs,
    capture: { kernel, decoder, recordsDelivered: records, recordsOverBudget: 0 },
    output: { accepted: records, written: records - dropped, dropped, bytesWritten: 0 },
  };
}

describe("formatProgress", () => {
  it("shows totals, the rate since the previous line, and every loss counter", () => {
    expect(formatProgress(sample(3000, 12_500, 7n, 4), sample(2000, 10_000))).toBe(
      "3 s · 12,500 records (2,500/s) · 7 lost in kernel · 2 truncated · 1 malformed · 4 dropped at stdout",
    );
  });

  it("rates the first line over the whole run", () => {
    expect(formatProgress(sample(2000, 1000), null)).toMatch(/^2 s · 1,000 records \(500\/s\)/);
    expect(formatProgress(sample(0, 0), null)).toMatch(/^0 s · 0 records \(0\/s\)/);
  });
});
