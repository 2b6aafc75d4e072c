/**
 * The pure decisions of an agent upgrade rollout, kept free of I/O so they are tested on
 * their own: which agents go in which batch (and which are skipped), when an agent of the
 * running batch counts as upgraded or failed, what the rollout does next, and what a cancel
 * says it left running.
 */
import type { UpgradeAgentStatus } from "@hdrcap/api";

export interface UpgradeCandidate {
  id: string;
  hostname: string;
  status: "online" | "offline";
  /** The bundle version the agent last reported (host facts), null when unknown. */
  version: string | null;
  /** Another rollout (a cancelled one finishing) that sent this agent an upgrade command it is still carrying out. */
  upgradingIn?: string;
}

export interface PlannedAgent {
  agentId: string;
  hostname: string;
  batch: number | null;
  status: Extract<UpgradeAgentStatus, "pending" | "skipped">;
  fromVersion: string | null;
  message: string | null;
}

/**
 * Online agents on another version are upgraded, `batchSize` at a time, in agent-id order
 * (stable, so a re-run plans the same batches). Offline agents, agents already on the
 * target and agents still carrying out another rollout's command are skipped, with the reason.
 */
export function planUpgrade(candidates: UpgradeCandidate[], targetVersion: string, batchSize: number): { agents: PlannedAgent[]; batchCount: number } {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be a positive integer, not ${batchSize}`);
  const sorted = [...candidates].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  let index = 0;
  const agents = sorted.map((a): PlannedAgent => {
    const base = { agentId: a.id, hostname: a.hostname, fromVersion: a.version };
    if (a.version === targetVersion) return { ...base, batch: null, status: "skipped", message: `already runs ${targetVersion}` };
    if (a.upgradingIn) return { ...base, batch: null, status: "skipped", message: `still being upgraded by ${a.upgradingIn} (cancelled, finishing): not commanded twice` };
    if (a.status !== "online") return { ...base, batch: null, status: "skipped", message: "offline: not upgraded (it can re-run the install line, or be upgraded once online)" };
    return { ...base, batch: Math.floor(index++ / batchSize), status: "pending", message: null };
  });
  return { agents, batchCount: Math.ceil(index / batchSize) };
}

export interface UpgradingAgent {
  agentId: string;
  /** When the upgrade command was sent (the batch start when not recorded). */
  commandedAt: Date | null;
  online: boolean;
  lastSeenAt: Date | null;
  version: string | null;
}

export type AgentVerdict = { agentId: string; outcome: "upgraded" } | { agentId: string; outcome: "failed"; message: string } | { agentId: string; outcome: "waiting" };

/**
 * An agent of the running batch is upgraded once it is online, reports the target version,
 * and was seen after the command (its hello after the restart carries the new facts). It
 * fails when the batch's timeout passes first.
 */
export function judgeUpgradingAgent(a: UpgradingAgent, targetVersion: string, batchStartedAt: Date, timeoutSeconds: number, now: Date): AgentVerdict {
  const since = a.commandedAt ?? batchStartedAt;
  if (a.online && a.version === targetVersion && a.lastSeenAt !== null && a.lastSeenAt.getTime() >= since.getTime()) return { agentId: a.agentId, outcome: "upgraded" };
  if (now.getTime() - batchStartedAt.getTime() >= timeoutSeconds * 1000) {
    const state = a.online ? `online, reporting ${a.version ?? "no version"}` : "offline";
    return { agentId: a.agentId, outcome: "failed", message: `did not come back online reporting ${targetVersion} within ${timeoutSeconds} s (it is ${state})` };
  }
  return { agentId: a.agentId, outcome: "waiting" };
}

export type RolloutStep =
  | { kind: "fail"; agentId: string }
  | { kind: "wait" }
  | { kind: "start-batch"; batch: number; agentIds: string[] }
  | { kind: "complete" };

/** What a running rollout does next, from the states of its agents: stop on the first failure, one batch at a time. */
export function nextRolloutStep(agents: { agentId: string; batch: number | null; status: UpgradeAgentStatus }[]): RolloutStep {
  const failed = agents.find((a) => a.status === "failed");
  if (failed) return { kind: "fail", agentId: failed.agentId };
  if (agents.some((a) => a.status === "upgrading")) return { kind: "wait" };
  const pending = agents.filter((a) => a.status === "pending" && a.batch !== null);
  if (pending.length === 0) return { kind: "complete" };
  const batch = Math.min(...pending.map((a) => a.batch!));
  return { kind: "start-batch", batch, agentIds: pending.filter((a) => a.batch === batch).map((a) => a.agentId) };
}

/** The status reason of a cancelled rollout: what it leaves running, and why it cannot stop it. */
export function cancelReason(upgradingAgentIds: string[], currentBatch: number | null, batchCount: number): string {
  if (upgradingAgentIds.length === 0) return "cancelled; no agent was being upgraded";
  const n = upgradingAgentIds.length;
  const batch = currentBatch === null ? "" : ` in batch ${currentBatch + 1} of ${batchCount}`;
  return (
    `cancelled; ${n} agent${n === 1 ? "" : "s"} already sent the upgrade command${batch} (${upgradingAgentIds.join(", ")}) ` +
    `${n === 1 ? "is" : "are"} left to finish: an upgrade command already sent cannot be recalled`
  );
}
