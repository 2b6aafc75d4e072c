/**
 * What the daemon needs from a capture engine, so reconcile and publishing run
 * the same against the kernel (kernel-capture-factory.ts) and a fake source in
 * tests. A handle reports the capture's own completeness counters; the daemon
 * adds what the publisher knows (droppedInAgent, published).
 */
import type { CaptureSpec, Completeness } from "@hdrcap/api/captures";
import type { HttpRecord } from "@hdrcap/api/records";

/** Why a capture stopped by itself. */
export type CaptureEndReason = "max-records" | "duration" | "error";

/** Counters a capture engine knows about itself. */
export type CaptureEngineCounters = Pick<Completeness, "seen" | "emitted" | "lostInKernel" | "truncated" | "malformed" | "records">;

export interface CaptureHandle {
  counters(): CaptureEngineCounters;
  /** Delivers what is buffered (through onRecords), then releases the engine. Idempotent. */
  stop(): void;
}

export interface CaptureStartOptions {
  spec: CaptureSpec;
  /** Seconds until the capture's end (expiresAt), when it has one. */
  durationSeconds?: number;
  maxRecords?: number;
  onRecords(records: HttpRecord[]): void;
  /** The capture ended by itself; it is already stopped. */
  onEnd(reason: CaptureEndReason, message?: string): void;
}

/** Starts a capture; throws when it cannot (missing privileges, no BTF, bad filter). */
export type CaptureFactory = (options: CaptureStartOptions) => CaptureHandle;
