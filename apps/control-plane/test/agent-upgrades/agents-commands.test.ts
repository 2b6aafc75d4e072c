/** `hdrcap agents upgrade`'s live progress: the lines printed between two snapshots of a rollout. */
import type { AgentUpgradeView } from "@hdrcap/api";
import { describe, expect, it } from "vitest";
import { describeCancel, describePlan, progressLines } from "../../src/cli/agents-commands.ts";

type State = AgentUpgradeView["agentStates"][number];
const st = (agentId: string, batch: number | null, status: State["status"], message: string | null = null): State => ({
  agentId,
  hostname: `h-${agentId}`,
  batch,
  status,
  fromVersion: "1",
  message,
  updatedAt: "2026-11-25T12:00:00.000Z",
});
const rollout = (over: Partial<AgentUpgradeView>, agentStates: State[]): AgentUpgradeView => {
  const counts = { pending: 0, upgrading: 0, upgraded: 0, failed: 0, skipped: 0 };
  for (const a of agentStates) counts[a.status]++;
  return {
    id: "upg_test0000001",
    status: "running",
    statusReason: null,
    targetVersion: "2",
    bundleSha256: "a".repeat(64),
    agents: {},
    batchSize: 2,
    timeoutSeconds: 60,
    batchCount: 2,
    currentBatch: null,
    createdAt: "2026-11-25T12:00:00.000Z",
    finishedAt: null,
    counts,
    agentStates,
    ...over,
  };
};

describe("agents upgrade output", () => {
  it("describes the plan with the skipped agents and why", () => {
    const r = rollout({}, [st("agt_a", 0, "pending"), st("agt_b", 0, "pending"), st("agt_c", 1, "pending"), st("agt_d", null, "skipped", "already runs 2")]);
    expect(describePlan(r)).toEqual([
      "rollout upg_test0000001: upgrading 3 agents to 2 in 2 batches of up to 2 (timeout 60 s per batch)",
      "  skipped agt_d (h-agt_d): already runs 2",
    ]);
    expect(describePlan(rollout({ status: "completed", batchCount: 0 }, [st("agt_d", null, "skipped", "already runs 2")]))[0]).toBe("nothing to upgrade to 2");
  });

  it("prints a batch when it starts and each agent's change once", () => {
    const planned = rollout({}, [st("agt_a", 0, "pending"), st("agt_b", 1, "pending")]);
    const started = rollout({ currentBatch: 0 }, [st("agt_a", 0, "upgrading", "upgrade to 2 requested"), st("agt_b", 1, "pending")]);
    expect(progressLines(planned, started)).toEqual(["batch 1/2: agt_a (h-agt_a)", "  agt_a (h-agt_a): upgrading (upgrade to 2 requested)"]);
    expect(progressLines(started, started)).toEqual([]);
    const back = rollout({ currentBatch: 0 }, [st("agt_a", 0, "upgraded", "runs 2"), st("agt_b", 1, "pending")]);
    expect(progressLines(started, back)).toEqual(["  agt_a (h-agt_a): upgraded (runs 2)"]);
  });

  it("ends with the outcome: the count, or the failure's reason", () => {
    const running = rollout({ currentBatch: 1 }, [st("agt_a", 0, "upgraded"), st("agt_b", 1, "upgrading")]);
    const failed = rollout({ status: "failed", statusReason: "agent agt_b (h-agt_b) failed in batch 2 of 2: checksum mismatch" }, [st("agt_a", 0, "upgraded"), st("agt_b", 1, "failed", "checksum mismatch")]);
    expect(progressLines(running, failed)).toEqual(["  agt_b (h-agt_b): failed (checksum mismatch)", "rollout failed: agent agt_b (h-agt_b) failed in batch 2 of 2: checksum mismatch"]);
    const completed = rollout({ status: "completed" }, [st("agt_a", 0, "upgraded"), st("agt_b", 1, "upgraded")]);
    expect(progressLines(running, completed).at(-1)).toBe("upgraded 2 agents to 2");
    const cancelled = rollout({ status: "cancelled", statusReason: "cancelled; no agent was being upgraded" }, [st("agt_a", 0, "upgraded"), st("agt_b", 1, "skipped", "cancelled")]);
    expect(progressLines(running, cancelled).at(-1)).toBe("rollout cancelled: cancelled; no agent was being upgraded");
  });

  it("prints what a cancel left running and how many agents it skipped", () => {
    const reason = "cancelled; 1 agent already sent the upgrade command in batch 1 of 2 (agt_a) is left to finish: an upgrade command already sent cannot be recalled";
    const cancelled = rollout({ status: "cancelled", statusReason: reason, currentBatch: 0 }, [
      st("agt_a", 0, "upgrading", "installed 2; restarting"),
      st("agt_b", 1, "skipped", "cancelled"),
      st("agt_c", 1, "skipped", "cancelled"),
      st("agt_d", null, "skipped", "offline"),
    ]);
    expect(describeCancel(cancelled)).toEqual([`rollout upg_test0000001 cancelled: ${reason}`, "  still upgrading agt_a (h-agt_a): installed 2; restarting", "  skipped 2 agents not yet commanded"]);
  });
});
