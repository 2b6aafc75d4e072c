/**
 * `hdrcap agents upgrade`: starts an upgrade rollout of the selected agents to the control
 * plane's current bundle and follows it, printing each batch and each agent's state change
 * as it happens; exits 1 when the rollout fails (naming the agent and the reason).
 * `hdrcap agents upgrade cancel <id>` cancels a running one.
 */
import type { AgentUpgradeView } from "@hdrcap/api";
import type { Command } from "commander";
import { createApiClient } from "./api-client.ts";
import { resolveLogin } from "./config.ts";
import { parseLabels } from "./install-command.ts";

interface UpgradeFlags {
  url?: string;
  apiKey?: string;
  json?: boolean;
  labels?: Record<string, string>;
  ids?: string[];
  batchSize?: number;
  timeout?: number;
  pollInterval: number;
}

const idList = (v: string, prev: string[] = []) => [...prev, ...v.split(",").map((s) => s.trim()).filter(Boolean)];
const positiveInt = (flag: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: "${v}" is not a positive integer`);
  return n;
};

const who = (a: AgentUpgradeView["agentStates"][number]) => `${a.agentId} (${a.hostname})`;

/** The plan, as printed once the rollout is created. */
export function describePlan(u: AgentUpgradeView): string[] {
  const upgrading = u.agentStates.filter((a) => a.batch !== null);
  const lines = [
    upgrading.length === 0
      ? `nothing to upgrade to ${u.targetVersion}`
      : `rollout ${u.id}: upgrading ${upgrading.length} agent${upgrading.length === 1 ? "" : "s"} to ${u.targetVersion} in ${u.batchCount} batch${u.batchCount === 1 ? "" : "es"} of up to ${u.batchSize} (timeout ${u.timeoutSeconds} s per batch)`,
  ];
  for (const a of u.agentStates.filter((x) => x.batch === null && x.status === "skipped")) lines.push(`  skipped ${who(a)}: ${a.message ?? ""}`);
  return lines;
}

/** What changed between two snapshots of a rollout, as lines to print (live progress). */
export function progressLines(prev: AgentUpgradeView | null, next: AgentUpgradeView): string[] {
  const lines: string[] = [];
  if (next.currentBatch !== null && next.currentBatch !== prev?.currentBatch) {
    const members = next.agentStates.filter((a) => a.batch === next.currentBatch);
    lines.push(`batch ${next.currentBatch + 1}/${next.batchCount}: ${members.map(who).join(", ")}`);
  }
  const before = new Map(prev?.agentStates.map((a) => [a.agentId, a]) ?? []);
  for (const a of next.agentStates) {
    const p = before.get(a.agentId);
    if (p && p.status === a.status && p.message === a.message) continue;
    if (!p && a.status === "skipped" && a.batch === null) continue; // part of the plan, printed with it
    if (a.status === "pending") continue;
    lines.push(`  ${who(a)}: ${a.status}${a.message ? ` (${a.message})` : ""}`);
  }
  if (next.status !== "running" && prev?.status === "running") {
    lines.push(
      next.status === "completed"
        ? `upgraded ${next.counts.upgraded} agent${next.counts.upgraded === 1 ? "" : "s"} to ${next.targetVersion}`
        : `rollout ${next.status}: ${next.statusReason ?? "no reason given"}`,
    );
  }
  return lines;
}

/** What `hdrcap agents upgrade cancel` prints: the outcome, and the agents the cancel could not stop. */
export function describeCancel(u: AgentUpgradeView): string[] {
  const lines = [`rollout ${u.id} ${u.status}: ${u.statusReason ?? ""}`.trimEnd()];
  for (const a of u.agentStates.filter((x) => x.status === "upgrading")) lines.push(`  still upgrading ${who(a)}: ${a.message ?? ""}`.trimEnd());
  const skipped = u.agentStates.filter((x) => x.status === "skipped" && x.message === "cancelled").length;
  if (skipped > 0) lines.push(`  skipped ${skipped} agent${skipped === 1 ? "" : "s"} not yet commanded`);
  return lines;
}

export function registerAgentCommands(program: Command, loginOptions: (cmd: Command) => Command): void {
  const agents = program.commands.find((c) => c.name() === "agents") ?? program.command("agents").description("agents of the tenant");
  const upgrade = loginOptions(agents.command("upgrade"))
    .description("upgrade running agents to the control plane's current bundle, one batch at a time, stopping at the first failure")
    .option("--labels <k=v,...>", "agents with all these labels", parseLabels)
    .option("--ids <ids>", "these agents (repeatable, comma-separated)", idList)
    .option("--batch-size <n>", "agents upgraded at the same time (default 1)", positiveInt("--batch-size"))
    .option("--timeout <seconds>", "how long each batch has to come back on the new version (default 180)", positiveInt("--timeout"))
    .option("--poll-interval <ms>", "how often to check progress", positiveInt("--poll-interval"), 1000)
    .action(async (o: UpgradeFlags) => {
      const api = createApiClient(resolveLogin(o));
      const print = (lines: string[]) => {
        if (!o.json) for (const l of lines) console.log(l);
      };
      let rollout = await api.post<AgentUpgradeView>("/v1/agent-upgrades", {
        agents: { ...(o.ids ? { ids: o.ids } : {}), ...(o.labels ? { labels: o.labels } : {}) },
        ...(o.batchSize ? { batchSize: o.batchSize } : {}),
        ...(o.timeout ? { timeoutSeconds: o.timeout } : {}),
      });
      print(describePlan(rollout));
      const interrupted = () => {
        console.error(`\nstopped following; rollout ${rollout.id} goes on on the control plane (GET /v1/agent-upgrades/${rollout.id})`);
        process.exit(130);
      };
      process.once("SIGINT", interrupted);
      let prev: AgentUpgradeView | null = null;
      // The first snapshot counts as "running" so the final line is printed even for an instant result.
      print(progressLines(null, rollout));
      prev = rollout;
      while (rollout.status === "running") {
        await new Promise((r) => setTimeout(r, o.pollInterval));
        rollout = await api.get<AgentUpgradeView>(`/v1/agent-upgrades/${encodeURIComponent(rollout.id)}`);
        print(progressLines(prev, rollout));
        prev = rollout;
      }
      process.off("SIGINT", interrupted);
      if (o.json) console.log(JSON.stringify(rollout, null, 2));
      if (rollout.status === "failed") {
        if (o.json) console.error(`hdrcap: rollout ${rollout.id} failed: ${rollout.statusReason}`);
        process.exitCode = 1;
      }
    });

  upgrade
    .command("cancel")
    .argument("<id>")
    .description("cancel a running rollout: no further batch starts; agents already sent the upgrade command finish (it cannot be recalled). Takes --json, --url and --api-key")
    .action(async (id: string, _o: unknown, cmd: Command) => {
      // --url/--api-key/--json are `upgrade`'s options, which commander takes wherever they appear (`cancel upg_… --json`).
      const o = cmd.optsWithGlobals<{ url?: string; apiKey?: string; json?: boolean }>();
      const u = await createApiClient(resolveLogin(o)).post<AgentUpgradeView>(`/v1/agent-upgrades/${encodeURIComponent(id)}/cancel`, {});
      console.log(o.json ? JSON.stringify(u, null, 2) : describeCancel(u).join("\n"));
    });
}
