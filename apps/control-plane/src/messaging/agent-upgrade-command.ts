/**
 * The `upgrade` command to one agent: request/reply on its command subject. The agent
 * replies once the new bundle is verified and switched to (then restarts), or with the
 * reason it refused; no responder and a timeout are told apart from a refusal.
 */
import { agentCommandReplySchema, NATS_SUBJECTS, type AgentUpgradeCommand } from "@hdrcap/api";
import { NoRespondersError, RequestError, TimeoutError, type NatsConnection } from "@nats-io/transport-node";

export type UpgradeCommandOutcome =
  | { kind: "accepted"; version: string }
  | { kind: "refused"; message: string }
  | { kind: "no-responders" }
  | { kind: "timeout" };

export type SendUpgradeCommand = (tenantId: string, agentId: string, command: AgentUpgradeCommand, timeoutMs: number) => Promise<UpgradeCommandOutcome>;

export function createUpgradeCommander(nc: NatsConnection): SendUpgradeCommand {
  return async (tenantId, agentId, command, timeoutMs) => {
    let data: unknown;
    try {
      const reply = await nc.request(NATS_SUBJECTS.agentCommand(tenantId, agentId), JSON.stringify(command), { timeout: timeoutMs });
      data = reply.json();
    } catch (err) {
      if (err instanceof NoRespondersError || (err instanceof RequestError && err.isNoResponders())) return { kind: "no-responders" };
      if (err instanceof TimeoutError || (err instanceof Error && err.name === "TimeoutError")) return { kind: "timeout" };
      return { kind: "refused", message: `command failed: ${(err as Error).message}` };
    }
    const parsed = agentCommandReplySchema.safeParse(data);
    if (!parsed.success) return { kind: "refused", message: "the agent's reply is not a command reply" };
    const reply = parsed.data;
    if (reply.ok) return { kind: "accepted", version: reply.upgradedTo ?? command.version };
    // An agent older than self-update does not know the command and answers ok: false without a reason.
    return { kind: "refused", message: reply.error ?? "the agent does not support self-update (too old): re-run the install line on that host" };
  };
}
