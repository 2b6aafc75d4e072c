/**
 * The agent's side of the control conversation with the control plane, on the
 * agent's own subjects: hello and desired-state requests (with timeouts, replies
 * validated), heartbeats, and the command subject (sync) it answers.
 */
import {
  NATS_SUBJECTS,
  agentCommandSchema,
  desiredStateSchema,
  type AgentCaptureReport,
  type AgentCommand,
  type AgentCommandReply,
  type AgentHeartbeat,
  type AgentHello,
  type DesiredState,
} from "@hdrcap/api/nats";
import type { HostFacts } from "@hdrcap/api/agents";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";

export interface ControlChannelOptions {
  tenantId: string;
  agentId: string;
  /** Timeout of hello/desired requests. Default 5 s. */
  requestTimeoutMs?: number;
}

/** A request the control plane did not answer usefully (timeout, no responders, bad reply). */
export class ControlRequestError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ControlRequestError";
  }
}

export class ControlChannel {
  private readonly timeout: number;
  private commandSub: Subscription | null = null;

  constructor(
    private readonly nc: NatsConnection,
    private readonly options: ControlChannelOptions,
  ) {
    this.timeout = options.requestTimeoutMs ?? 5_000;
  }

  hello(facts: HostFacts): Promise<DesiredState> {
    const body: AgentHello = { v: 1, facts };
    return this.requestDesired(NATS_SUBJECTS.agentHello(this.options.tenantId, this.options.agentId), body);
  }

  desired(): Promise<DesiredState> {
    return this.requestDesired(NATS_SUBJECTS.agentDesired(this.options.tenantId, this.options.agentId), { v: 1 });
  }

  heartbeat(captures: AgentCaptureReport[]): void {
    const body: AgentHeartbeat = { v: 1, captures: captures.slice(0, 1000) };
    this.nc.publish(NATS_SUBJECTS.agentHeartbeat(this.options.tenantId, this.options.agentId), JSON.stringify(body));
  }

  /** Answers commands on the agent's command subject; invalid commands get `ok: false`. */
  onCommand(handler: (command: AgentCommand) => Promise<AgentCommandReply>, onError: (err: unknown) => void): void {
    this.commandSub = this.nc.subscribe(NATS_SUBJECTS.agentCommand(this.options.tenantId, this.options.agentId), {
      callback: (err, msg) => {
        if (err) return onError(err);
        let command: AgentCommand;
        try {
          command = agentCommandSchema.parse(msg.json());
        } catch (parseErr) {
          onError(parseErr);
          if (msg.reply) msg.respond(JSON.stringify({ v: 1, ok: false, captures: [] } satisfies AgentCommandReply));
          return;
        }
        handler(command).then(
          (reply) => msg.reply && msg.respond(JSON.stringify(reply)),
          (handlerErr: unknown) => {
            onError(handlerErr);
            if (msg.reply) msg.respond(JSON.stringify({ v: 1, ok: false, captures: [] } satisfies AgentCommandReply));
          },
        );
      },
    });
  }

  close(): void {
    this.commandSub?.unsubscribe();
    this.commandSub = null;
  }

  private async requestDesired(subject: string, body: unknown): Promise<DesiredState> {
    let reply;
    try {
      reply = await this.nc.request(subject, JSON.stringify(body), { timeout: this.timeout });
    } catch (err) {
      const noResponders = (err as { isNoResponders?: () => boolean }).isNoResponders?.() === true;
      throw new ControlRequestError(
        noResponders ? `no control plane is answering ${subject}` : `request ${subject} failed: ${(err as Error).message}`,
        { cause: err },
      );
    }
    let data: unknown;
    try {
      data = reply.json();
    } catch (err) {
      throw new ControlRequestError(`reply to ${subject} is not JSON`, { cause: err });
    }
    const parsed = desiredStateSchema.safeParse(data);
    if (!parsed.success) {
      // The control plane answers errors as { error: { code, message } } on the same subject.
      const msg = (data as { error?: { message?: string } } | null)?.error?.message;
      throw new ControlRequestError(msg ? `control plane: ${msg}` : `reply to ${subject} is not a desired state: ${parsed.error.message}`);
    }
    return parsed.data;
  }
}
