/** The pure decisions of an upgrade rollout: batches, per-agent verdicts, the next step. */
import { describe, expect, it } from "vitest";
import { cancelReason, judgeUpgradingAgent, nextRolloutStep, planUpgrade, type UpgradeCandidate } from "../../src/services/agent-upgrades-plan.ts";

const agent = (id: string, status: "online" | "offline", version: string | null): UpgradeCandidate => ({ id, hostname: `host-${id}`, status, version });

describe("planUpgrade", () => {
  it("puts online agents on another version into batches of batchSize, in agent-id order", () => {
    const plan = planUpgrade([agent("agt_c", "online", "1"), agent("agt_a", "online", "1"), agent("agt_b", "online", null), agent("agt_d", "online", "1"), agent("agt_e", "online", "1")], "2", 2);
    expect(plan.batchCount).toBe(3);
    expect(plan.agents.map((a) => [a.agentId, a.batch, a.status])).toEqual([
      ["agt_a", 0, "pending"],
      ["agt_b", 0, "pending"],
      ["agt_c", 1, "pending"],
      ["agt_d", 1, "pending"],
      ["agt_e", 2, "pending"],
    ]);
    expect(plan.agents[1]!.fromVersion).toBeNull();
  });

  it("skips agents already on the target and offline agents, saying why, without leaving gaps in the batches", () => {
    const plan = planUpgrade([agent("agt_a", "online", "2"), agent("agt_b", "offline", "1"), agent("agt_c", "online", "1"), agent("agt_d", "online", "1")], "2", 1);
    expect(plan.batchCount).toBe(2);
    expect(plan.agents.map((a) => [a.agentId, a.batch, a.status])).toEqual([
      ["agt_a", null, "skipped"],
      ["agt_b", null, "skipped"],
      ["agt_c", 0, "pending"],
      ["agt_d", 1, "pending"],
    ]);
    expect(plan.agents[0]!.message).toBe("already runs 2");
    expect(plan.agents[1]!.message).toMatch(/^offline/);
  });

  it("skips an agent another rollout is still upgrading, naming that rollout", () => {
    const plan = planUpgrade([{ ...agent("agt_a", "online", "1"), upgradingIn: "upg_old" }, agent("agt_b", "online", "1")], "2", 1);
    expect(plan.batchCount).toBe(1);
    expect(plan.agents.map((a) => [a.agentId, a.batch, a.status, a.message])).toEqual([
      ["agt_a", null, "skipped", "still being upgraded by upg_old (cancelled, finishing): not commanded twice"],
      ["agt_b", 0, "pending", null],
    ]);
  });

  it("plans nothing when every agent is up to date (and refuses a batch size below 1)", () => {
    expect(planUpgrade([agent("agt_a", "online", "2")], "2", 5).batchCount).toBe(0);
    expect(planUpgrade([], "2", 5)).toEqual({ agents: [], batchCount: 0 });
    expect(() => planUpgrade([], "2", 0)).toThrow(RangeError);
  });
});

describe("judgeUpgradingAgent", () => {
  const start = new Date("2026-11-25T12:00:00Z");
  const at = (s: number) => new Date(start.getTime() + s * 1000);

  it("counts an agent as upgraded once it is online, on the target, and seen after the command", () => {
    const verdict = judgeUpgradingAgent({ agentId: "agt_a", commandedAt: at(1), online: true, lastSeenAt: at(5), version: "2" }, "2", start, 60, at(6));
    expect(verdict.outcome).toBe("upgraded");
  });

  it("does not count presence from before the command, nor the old version, nor an offline agent", () => {
    expect(judgeUpgradingAgent({ agentId: "a", commandedAt: at(10), online: true, lastSeenAt: at(9), version: "2" }, "2", start, 60, at(11)).outcome).toBe("waiting");
    expect(judgeUpgradingAgent({ agentId: "a", commandedAt: at(1), online: true, lastSeenAt: at(5), version: "1" }, "2", start, 60, at(6)).outcome).toBe("waiting");
    expect(judgeUpgradingAgent({ agentId: "a", commandedAt: at(1), online: false, lastSeenAt: at(5), version: "2" }, "2", start, 60, at(6)).outcome).toBe("waiting");
  });

  it("fails an agent that is not back on the target when the batch times out, saying what it reports", () => {
    const verdict = judgeUpgradingAgent({ agentId: "agt_a", commandedAt: at(0), online: true, lastSeenAt: at(50), version: "1" }, "2", start, 60, at(60));
    expect(verdict).toEqual({ agentId: "agt_a", outcome: "failed", message: "did not come back online reporting 2 within 60 s (it is online, reporting 1)" });
    const offline = judgeUpgradingAgent({ agentId: "agt_a", commandedAt: null, online: false, lastSeenAt: null, version: null }, "2", start, 60, at(61));
    expect(offline.outcome === "failed" && offline.message).toMatch(/it is offline/);
  });
});

describe("nextRolloutStep", () => {
  it("starts the lowest pending batch when nothing is upgrading", () => {
    expect(
      nextRolloutStep([
        { agentId: "a", batch: 0, status: "upgraded" },
        { agentId: "b", batch: 1, status: "pending" },
        { agentId: "c", batch: 1, status: "pending" },
        { agentId: "d", batch: 2, status: "pending" },
        { agentId: "e", batch: null, status: "skipped" },
      ]),
    ).toEqual({ kind: "start-batch", batch: 1, agentIds: ["b", "c"] });
  });

  it("waits while any agent of the batch is upgrading", () => {
    expect(nextRolloutStep([{ agentId: "a", batch: 0, status: "upgraded" }, { agentId: "b", batch: 0, status: "upgrading" }, { agentId: "c", batch: 1, status: "pending" }])).toEqual({ kind: "wait" });
  });

  it("stops on the first failure, even while others of the batch are still upgrading", () => {
    expect(nextRolloutStep([{ agentId: "a", batch: 0, status: "failed" }, { agentId: "b", batch: 0, status: "upgrading" }, { agentId: "c", batch: 1, status: "pending" }])).toEqual({ kind: "fail", agentId: "a" });
  });

  it("completes when no agent is pending or upgrading", () => {
    expect(nextRolloutStep([{ agentId: "a", batch: 0, status: "upgraded" }, { agentId: "e", batch: null, status: "skipped" }])).toEqual({ kind: "complete" });
    expect(nextRolloutStep([])).toEqual({ kind: "complete" });
  });
});

describe("cancelReason", () => {
  it("names the agents a cancel leaves to finish, and says why it cannot stop them", () => {
    expect(cancelReason([], null, 3)).toBe("cancelled; no agent was being upgraded");
    expect(cancelReason(["agt_a"], 0, 3)).toBe("cancelled; 1 agent already sent the upgrade command in batch 1 of 3 (agt_a) is left to finish: an upgrade command already sent cannot be recalled");
    expect(cancelReason(["agt_a", "agt_b"], 1, 3)).toBe(
      "cancelled; 2 agents already sent the upgrade command in batch 2 of 3 (agt_a, agt_b) are left to finish: an upgrade command already sent cannot be recalled",
    );
  });
});
