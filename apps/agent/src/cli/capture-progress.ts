/**
 * The capture CLI's live status line on stderr: how long it has run, records delivered and
 * their rate over the last interval, and every loss counter, rewritten in place once a second
 * (a terminal) so a long capture shows at once when it starts losing anything. Cleared before
 * the exit summary. Pure formatting is separate from the timer so it can be tested.
 */
import type { HttpCaptureCounters } from "../capture/http-capture.ts";
import type { RecordOutputCounters } from "./record-output.ts";

export interface ProgressSample {
  elapsedMs: number;
  capture: HttpCaptureCounters;
  output: RecordOutputCounters;
}

const int = (n: number | bigint) => Number(n).toLocaleString("en-US");

/** One status line; the rate is over the interval since `previous` (the whole run without one). */
export function formatProgress(now: ProgressSample, previous: ProgressSample | null): string {
  const records = now.capture.recordsDelivered;
  const since = previous ?? { elapsedMs: 0, capture: { ...now.capture, recordsDelivered: 0 } };
  const seconds = (now.elapsedMs - since.elapsedMs) / 1000;
  const rate = seconds > 0 ? Math.round((records - since.capture.recordsDelivered) / seconds) : 0;
  const k = now.capture.kernel;
  return [
    `${(now.elapsedMs / 1000).toFixed(0)} s`,
    `${int(records)} records (${int(rate)}/s)`,
    `${int(k.ringbufFull)} lost in kernel`,
    `${int(k.truncated)} truncated`,
    `${int(now.capture.decoder.malformed)} malformed`,
    `${int(now.output.dropped)} dropped at stdout`,
  ].join(" · ");
}

export class CaptureProgress {
  private timer: NodeJS.Timeout | null = null;
  private previous: ProgressSample | null = null;
  private readonly startedAt = Date.now();

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly sample: () => Omit<ProgressSample, "elapsedMs">,
    private readonly intervalMs = 1000,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.render(), this.intervalMs);
    this.timer.unref();
  }

  /** Stops and erases the line (the summary follows). */
  stop(): void {
    if (this.timer === null) return;
    clearInterval(this.timer);
    this.timer = null;
    this.stream.write("\r\x1b[2K");
  }

  private render(): void {
    const now = { elapsedMs: Date.now() - this.startedAt, ...this.sample() };
    this.stream.write(`\r\x1b[2K${formatProgress(now, this.previous)}`);
    this.previous = now;
  }
}
