import { describe, expect, it } from "vitest";
import { planReconcile, secondsUntil } from "../../src/daemon/reconcile-plan.ts";
import { captureSpec } from "./fakes.ts";

const NOW = Date.parse("2030-01-01T00:00:00Z");

describe("planReconcile", () => {
  it("starts desired captures that are not running and stops running ones no longer desired", () => {
    const plan = planReconcile([captureSpec("a"), captureSpec("b")], ["b", "c"], new Set(), NOW);
    expect(plan.start.map((s) => s.captureId)).toEqual(["a"]);
    expect(plan.stop).toEqual(["c"]);
    expect(plan.expired).toEqual([]);
  });

  it("does nothing when running matches desired", () => {
    expect(planReconcile([captureSpec("a")], ["a"], new Set(), NOW)).toEqual({ start: [], stop: [], expired: [] });
  });

  it("never restarts a capture that already finished here, even if still desired", () => {
    const plan = planReconcile([captureSpec("a"), captureSpec("b")], [], new Set(["a"]), NOW);
    expect(plan.start.map((s) => s.captureId)).toEqual(["b"]);
  });

  it("does not start a capture whose end time has passed, and lists it as expired", () => {
    const past = captureSpec("old", { expiresAt: new Date(NOW - 1000).toISOString() });
    const future = captureSpec("new", { expiresAt: new Date(NOW + 60_000).toISOString() });
    const plan = planReconcile([past, future], [], new Set(), NOW);
    expect(plan.start.map((s) => s.captureId)).toEqual(["new"]);
    expect(plan.expired.map((s) => s.captureId)).toEqual(["old"]);
  });

  it("stops everything when the desired state is empty", () => {
    expect(planReconcile([], ["a", "b"], new Set(), NOW).stop).toEqual(["a", "b"]);
  });

  it("starts a capture listed twice only once", () => {
    expect(planReconcile([captureSpec("a"), captureSpec("a")], [], new Set(), NOW).start).toHaveLength(1);
  });
});

describe("secondsUntil", () => {
  it("is undefined without an end time and positive with one", () => {
    expect(secondsUntil(null, NOW)).toBeUndefined();
    expect(secondsUntil(new Date(NOW + 2500).toISOString(), NOW)).toBe(2.5);
    expect(secondsUntil(new Date(NOW - 2500).toISOString(), NOW)).toBe(0.001);
  });
});
