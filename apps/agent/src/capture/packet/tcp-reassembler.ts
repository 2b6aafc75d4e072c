/**
 * Reassembly of one direction of one TCP connection from captured segments
 * into in-order pieces of the byte stream, addressed by stream offset (0 =
 * the first byte after the SYN, or the first segment seen when the SYN was
 * missed).
 *
 * Retransmitted and duplicated bytes are dropped (overlaps trimmed),
 * segments that arrive early are held while they stay within a bounded
 * window, and bytes that never arrive become gaps: the next piece's offset
 * jumps past them, which is how CapturedChunk consumers (the HTTP decoder)
 * learn about loss. A segment may carry fewer captured bytes than its true
 * length (payload prefix capture); the rest is reported as uncopied, never
 * invented.
 */

const SEQ_SPACE = 2 ** 32;
const HALF_SEQ_SPACE = 2 ** 31;

export interface TcpSegment {
  /** Sequence number of the segment (of the SYN itself when syn is set), u32. */
  seq: number;
  syn?: boolean;
  /** True payload length of the segment. */
  length: number;
  /** Captured prefix of the payload (at most `length` bytes). */
  data: Buffer;
}

/** A contiguous piece of the stream: `length` bytes from streamOffset, the first data.length captured. */
export interface StreamPiece {
  streamOffset: number;
  length: number;
  data: Buffer;
}

export interface TcpReassemblerOptions {
  /** How far past the next expected byte a held segment may end; default 1 MiB. */
  windowBytes?: number;
  /** Most segments held out of order at once; default 1024. */
  maxHeldSegments?: number;
}

export interface TcpReassemblerCounters {
  /** Segments whose every byte had already been delivered (retransmits, duplicates). */
  duplicateSegments: number;
  /** Segments delivered after a partial overlap was trimmed. */
  trimmedSegments: number;
  /** Segments that arrived ahead of a hole and were held. */
  heldSegments: number;
  /** Holes skipped (gaps reported) and the bytes they spanned. */
  gaps: number;
  gapBytes: number;
}

export class TcpReassembler {
  private base: number | undefined;
  /** Offset of the next byte to deliver. */
  private next = 0;
  /** Out-of-order segments, sorted by start offset; each owns its bytes (a segment's data may be borrowed). */
  private held: StreamPiece[] = [];
  /** Largest end offset of the held segments (0 when none are held). */
  private heldMaxEnd = 0;
  private readonly windowBytes: number;
  private readonly maxHeld: number;
  readonly stats: TcpReassemblerCounters = {
    duplicateSegments: 0,
    trimmedSegments: 0,
    heldSegments: 0,
    gaps: 0,
    gapBytes: 0,
  };

  constructor(options: TcpReassemblerOptions = {}) {
    this.windowBytes = options.windowBytes ?? 1024 * 1024;
    this.maxHeld = options.maxHeldSegments ?? 1024;
  }

  /** Whether the stream's origin is known (a SYN or a first segment was seen). */
  get started(): boolean {
    return this.base !== undefined;
  }

  /** The initial sequence number the offsets count from (the byte after it is offset 0 when a SYN was seen). */
  get origin(): number | undefined {
    return this.base;
  }

  /** Offset of the next byte not yet delivered. */
  get nextOffset(): number {
    return this.next;
  }

  /** Bytes held out of order (true lengths). */
  get heldBytes(): number {
    return this.held.reduce((n, p) => n + p.length, 0);
  }

  /** Feeds one segment; returns the pieces of the stream it made deliverable, in order. */
  push(seg: TcpSegment): StreamPiece[] {
    const firstByte = seg.syn ? (seg.seq + 1) % SEQ_SPACE : seg.seq;
    if (this.base === undefined) this.base = firstByte;
    if (seg.length <= 0) return [];
    const start = this.offsetOf(firstByte);
    const piece: StreamPiece = { streamOffset: start, length: seg.length, data: seg.data.length > seg.length ? seg.data.subarray(0, seg.length) : seg.data };
    const out: StreamPiece[] = [];
    if (start + piece.length <= this.next) {
      this.stats.duplicateSegments++;
      return out;
    }
    if (start <= this.next) {
      this.deliver(piece, out);
      this.drainHeld(out);
      return out;
    }
    this.hold(piece);
    // Over the window or the segment budget: give up on the first hole.
    while (this.held.length > 0 && (this.held.length > this.maxHeld || this.heldEnd() - this.next > this.windowBytes)) {
      this.skipToHeld(out);
    }
    return out;
  }

  /** Delivers everything held, reporting the holes before it as gaps (end of connection, idle). */
  flush(): StreamPiece[] {
    const out: StreamPiece[] = [];
    while (this.held.length > 0) this.skipToHeld(out);
    return out;
  }

  /** Stream offset of a sequence number, unwrapped to the value nearest the delivery point. */
  private offsetOf(seq: number): number {
    const rel = (seq - (this.base ?? 0) + SEQ_SPACE) % SEQ_SPACE;
    let d = rel - (this.next % SEQ_SPACE);
    if (d >= HALF_SEQ_SPACE) d -= SEQ_SPACE;
    else if (d < -HALF_SEQ_SPACE) d += SEQ_SPACE;
    return this.next + d;
  }

  private heldEnd(): number {
    return this.heldMaxEnd;
  }

  private hold(piece: StreamPiece): void {
    let i = this.held.length;
    while (i > 0 && this.held[i - 1]!.streamOffset > piece.streamOffset) i--;
    const same = this.held[i - 1];
    if (same && same.streamOffset === piece.streamOffset && same.length >= piece.length) {
      // An exact duplicate of a held segment: keep the copy with more captured bytes.
      if (piece.length === same.length && piece.data.length > same.data.length) same.data = Buffer.from(piece.data);
      this.stats.duplicateSegments++;
      return;
    }
    // Held past this call: copy, as the caller's buffer may be reused by the next drain.
    this.held.splice(i, 0, { streamOffset: piece.streamOffset, length: piece.length, data: Buffer.from(piece.data) });
    this.heldMaxEnd = Math.max(this.heldMaxEnd, piece.streamOffset + piece.length);
    this.stats.heldSegments++;
  }

  /** Appends the part of piece at or after next (piece must start at or before next). */
  private deliver(piece: StreamPiece, out: StreamPiece[]): void {
    const end = piece.streamOffset + piece.length;
    if (end <= this.next) {
      this.stats.duplicateSegments++;
      return;
    }
    const skip = this.next - piece.streamOffset;
    if (skip > 0) this.stats.trimmedSegments++;
    out.push({
      streamOffset: this.next,
      length: end - this.next,
      data: skip > 0 ? piece.data.subarray(Math.min(skip, piece.data.length)) : piece.data,
    });
    this.next = end;
  }

  private drainHeld(out: StreamPiece[]): void {
    while (this.held.length > 0 && this.held[0]!.streamOffset <= this.next) {
      this.deliver(this.held.shift()!, out);
    }
    if (this.held.length === 0) this.heldMaxEnd = 0;
  }

  /** Declares the hole before the first held segment lost and delivers from there. */
  private skipToHeld(out: StreamPiece[]): void {
    const first = this.held[0];
    if (!first) return;
    if (first.streamOffset > this.next) {
      this.stats.gaps++;
      this.stats.gapBytes += first.streamOffset - this.next;
      this.next = first.streamOffset;
    }
    this.drainHeld(out);
  }
}
