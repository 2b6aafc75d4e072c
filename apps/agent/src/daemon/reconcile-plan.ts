/**
 * Reconcile planning, pure: given the desired captures, the ones running and the
 * ones that already finished here, decide what to start and what to stop. A
 * finished capture is never started again (its budget is spent), and a capture
 * whose end time has passed is not started at all.
 */
import type { CaptureSpec } from "@hdrcap/api/captures";

export interface ReconcilePlan {
  /** Desired, not running, not finished, not expired: start these (in desired order). */
  start: CaptureSpec[];
  /** Running but no longer desired: stop these. */
  stop: string[];
  /** Desired and never started here, but already past expiresAt: record as finished. */
  expired: CaptureSpec[];
}

export function planReconcile(
  desired: readonly CaptureSpec[],
  running: Iterable<string>,
  finished: ReadonlySet<string>,
  now: number = Date.now(),
): ReconcilePlan {
  const runningIds = new Set(running);
  const desiredIds = new Set<string>();
  const start: CaptureSpec[] = [];
  const expired: CaptureSpec[] = [];
  for (const spec of desired) {
    if (desiredIds.has(spec.captureId)) continue; // first occurrence wins
    desiredIds.add(spec.captureId);
    if (runningIds.has(spec.captureId) || finished.has(spec.captureId)) continue;
    if (spec.expiresAt !== null && Date.parse(spec.expiresAt) <= now) expired.push(spec);
    else start.push(spec);
  }
  const stop = [...runningIds].filter((id) => !desiredIds.has(id));
  return { start, stop, expired };
}

/** Seconds left until `expiresAt` (at least a millisecond), or undefined without an end. */
export function secondsUntil(expiresAt: string | null, now: number = Date.now()): number | undefined {
  if (expiresAt === null) return undefined;
  const ms = Date.parse(expiresAt) - now;
  return Number.isFinite(ms) ? Math.max(1, ms) / 1000 : undefined;
}
