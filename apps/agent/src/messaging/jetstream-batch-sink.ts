/**
 * The JetStream side of the record publisher: one batch is one message on the
 * agent's records subject, with the batch id as Nats-Msg-Id so the stream drops
 * a retried batch it already stored.
 */
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { SealedBatch } from "./record-batch-builder.ts";
import type { BatchSink } from "./record-publisher.ts";

export interface JetStreamBatchSinkOptions {
  subject: string;
  /** Wait this long for the stream's ack before the batch is retried. Default 5 s. */
  ackTimeoutMs?: number;
  /** Tells whether the connection is up (see NatsLink.connected). Default: not closed. */
  isConnected?: () => boolean;
}

export function createJetStreamBatchSink(nc: NatsConnection, options: JetStreamBatchSinkOptions): BatchSink {
  const js: JetStreamClient = jetstream(nc);
  const timeout = options.ackTimeoutMs ?? 5_000;
  const isConnected = options.isConnected ?? (() => !nc.isClosed());
  return {
    isReady: () => isConnected() && !nc.isClosed() && !nc.isDraining(),
    async publish(batch: SealedBatch): Promise<void> {
      // retries: 0 — the publisher owns retrying, with backoff and in order.
      await js.publish(options.subject, batch.payload, { msgID: batch.batchId, timeout, retries: 0 });
    },
  };
}
