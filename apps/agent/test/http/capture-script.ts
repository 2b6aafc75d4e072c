/**
 * Builds CapturedChunks for tests the way a capture source would: one
 * connection seen from a traced process, with per-direction stream offsets.
 */
import type { CapturedChunk, Direction, Endpoint, Role } from "../../src/capture/chunk.ts";

export const LOCAL: Endpoint = { ip: "10.0.0.1", port: 40_000 };
export const REMOTE: Endpoint = { ip: "10.0.0.2", port: 8080 };
/** 2025-01-01T00:00:00.000Z in ns. */
export const T0 = 1_735_689_600_000_000_000n;
export const MS = 1_000_000n;

export function bytes(text: string): Buffer {
  return Buffer.from(text, "latin1");
}

export interface ChunkOptions {
  tsNs?: bigint;
  /** True byte count when larger than the captured data (uncaptured tail). */
  length?: number;
}

/** A connection seen by a traced client (requests egress) or server (requests ingress). */
export class CaptureScript {
  private readonly offsets: Record<Direction, number> = { ingress: 0, egress: 0 };
  tsNs = T0;

  constructor(
    readonly connId = "conn-1",
    readonly role: Role = "client",
  ) {}

  /** The traced process wrote these bytes. */
  send(data: string | Buffer, options: ChunkOptions = {}): CapturedChunk {
    return this.chunk("egress", data, options);
  }

  /** The traced process read these bytes. */
  receive(data: string | Buffer, options: ChunkOptions = {}): CapturedChunk {
    return this.chunk("ingress", data, options);
  }

  /** `n` bytes pass in `direction` without being captured at all. */
  skip(direction: Direction, n: number): void {
    this.offsets[direction] += n;
  }

  /** Moves to an arbitrary offset (as when attaching mid-stream). */
  seek(direction: Direction, offset: number): void {
    this.offsets[direction] = offset;
  }

  offset(direction: Direction): number {
    return this.offsets[direction];
  }

  chunk(direction: Direction, data: string | Buffer, options: ChunkOptions = {}): CapturedChunk {
    const buf = typeof data === "string" ? bytes(data) : data;
    const length = options.length ?? buf.length;
    const chunk: CapturedChunk = {
      tsNs: options.tsNs ?? this.tsNs,
      pid: 4242,
      tgid: 4200,
      comm: "curl",
      cgroupId: 1n,
      connId: this.connId,
      local: LOCAL,
      remote: REMOTE,
      direction,
      role: this.role,
      streamOffset: this.offsets[direction],
      data: buf,
      length,
    };
    this.offsets[direction] += length;
    return chunk;
  }
}

/** Splits `data` into chunks of one direction at the given cut points. */
export function splitAt(script: CaptureScript, direction: Direction, data: Buffer, cuts: number[]): CapturedChunk[] {
  const points = [...new Set(cuts.filter((c) => c > 0 && c < data.length))].sort((a, b) => a - b);
  const chunks: CapturedChunk[] = [];
  let from = 0;
  for (const point of [...points, data.length]) {
    chunks.push(script.chunk(direction, data.subarray(from, point)));
    from = point;
  }
  return chunks;
}
