/** Messages between the bench and its in-process capture worker. */

export interface WorkerResult {
  type: "result";
  requests: number;
  responses: number;
  recordsDelivered: number;
  ringbufFull: number;
  truncated: number;
  malformed: number;
  /** Includes expected gaps: body bytes sent with sendfile are never copied. */
  gaps: number;
  /** Times the decoder lost its place: the sign of missing header bytes. */
  resyncs: number;
  chunksEmitted: number;
  /** Worker CPU from ready to after stop() (final drain included). */
  cpuSeconds: number;
  cpuSecondsBeforeStop: number;
  /** Sampled record visibility delays, histogram by whole milliseconds (last bucket: >= 10 s); null in the floor modes (no records). */
  visibilityHistogramMs: number[] | null;
  /** process.memoryUsage() just after stop(): where the RSS is (V8 heap vs buffers). */
  memoryAtStop: NodeJS.MemoryUsage;
}

export type WorkerMessage = { type: "ready" } | WorkerResult;
