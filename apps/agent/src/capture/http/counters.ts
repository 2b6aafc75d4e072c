/**
 * Counters of the HTTP decoder. Everything the decoder drops, skips or cannot
 * explain is counted here instead of being thrown, so operators can tell a
 * quiet service from a decoder that lost its place.
 */
export interface HttpDecoderCounters {
  /** Chunks handed to the decoder. */
  chunks: number;
  /** Captured bytes handed to the decoder (data.length, not length). */
  capturedBytes: number;
  /** Header blocks parsed and emitted as records (requests + responses). */
  messages: number;
  requests: number;
  responses: number;
  /** 1xx responses other than 101 (already included in `responses`). */
  interimResponses: number;
  /** Responses matched with a request of the same connection. */
  paired: number;
  /** Responses for which no earlier request was pending. */
  unpairedResponses: number;
  /** Requests given up on without a response (queue overflow, resync, close). */
  unansweredRequests: number;
  /** Header blocks rejected because their syntax is invalid. */
  malformed: number;
  /** Header blocks (or trailer sections) longer than the configured limit. */
  oversize: number;
  /** Times a direction lost its place and started searching for a start line. */
  resyncs: number;
  /** Directions first seen at a non-zero offset (attached mid-stream). */
  midStreamStarts: number;
  /** Missing byte ranges: offset jumps and uncaptured chunk tails. */
  gaps: number;
  gapBytes: number;
  /** Gaps that fell inside a body of known length, so no resync was needed. */
  gapsBridged: number;
  /** Chunks (or chunk prefixes) that repeated offsets already seen; ignored. */
  overlaps: number;
  /** Captured body bytes stepped over by message framing. */
  bodyBytes: number;
  /** Captured bytes discarded: out of sync, read-until-close bodies, upgraded streams. */
  bytesSkipped: number;
  /** 101 Switching Protocols and successful CONNECT: rest of the connection ignored. */
  upgrades: number;
  connectionsOpened: number;
  connectionsClosed: number;
  connectionsExpired: number;
  /** Connections dropped because the tracker reached its connection limit. */
  connectionsEvicted: number;
  /** Header blocks still incomplete when their connection was closed or expired. */
  incompleteAtClose: number;
  /** Chunks with an impossible offset or length; dropped. */
  invalidChunks: number;
  /** Unexpected exceptions caught at the façade (a bug); the connection is reset. */
  internalErrors: number;
}

export function createHttpDecoderCounters(): HttpDecoderCounters {
  return {
    chunks: 0,
    capturedBytes: 0,
    messages: 0,
    requests: 0,
    responses: 0,
    interimResponses: 0,
    paired: 0,
    unpairedResponses: 0,
    unansweredRequests: 0,
    malformed: 0,
    oversize: 0,
    resyncs: 0,
    midStreamStarts: 0,
    gaps: 0,
    gapBytes: 0,
    gapsBridged: 0,
    overlaps: 0,
    bodyBytes: 0,
    bytesSkipped: 0,
    upgrades: 0,
    connectionsOpened: 0,
    connectionsClosed: 0,
    connectionsExpired: 0,
    connectionsEvicted: 0,
    incompleteAtClose: 0,
    invalidChunks: 0,
    internalErrors: 0,
  };
}
