/**
 * One direction of one connection: reassembles HTTP/1.x header blocks from
 * captured chunks, steps over bodies without buffering them (Content-Length,
 * chunked with trailers, read-until-close), bridges capture gaps that fall
 * inside bodies and resynchronises on the next plausible start line when it
 * loses its place. Memory is bounded by the header block limit.
 */
import type { CapturedChunk, Direction } from "../chunk.ts";
import type { HttpDecoderCounters } from "./counters.ts";
import {
  classifyStartLine,
  findHeaderBlockEnd,
  parseHeaderBlock,
  type ParsedHead,
} from "./header-block.ts";

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HT = 0x09;
const SEMICOLON = 0x3b;

/** Chunk-size lines longer than this (extensions included) are treated as garbage. */
const MAX_CHUNK_SIZE_LINE = 4096;
/** Hex digits accepted in a chunk size: 13 keeps the value a safe integer. */
const MAX_CHUNK_SIZE_DIGITS = 13;
/** Reassembly buffers up to this size are kept for the next block; larger ones are released. */
const RETAINED_BUFFER_BYTES = 4096;

const HEX = new Int8Array(256).fill(-1);
for (let i = 0; i < 16; i++) {
  HEX["0123456789abcdef".charCodeAt(i)] = i;
  HEX["0123456789ABCDEF".charCodeAt(i)] = i;
}

type Mode =
  | "head" // between messages or inside a header block
  | "body" // Content-Length body: `remaining` bytes left
  | "chunk-size" // reading a chunk-size line
  | "chunk-data" // inside chunk data: `remaining` bytes left
  | "chunk-data-end" // the CRLF after chunk data
  | "trailers" // trailer section after the last chunk
  | "until-close" // body delimited by close, or upgraded protocol
  | "resync"; // lost: searching for a plausible start line

/** Receives every parsed header block of a direction. */
export interface HeadSink {
  /**
   * Called once per parsed block with the chunk that carried its first byte.
   * For a response, returns the method of the request it answers (null if
   * unknown), which decides whether the response has a body.
   */
  onHead(decoder: HttpStreamDecoder, head: ParsedHead, first: CapturedChunk): string | null;
  /** Called whenever the decoder loses its place in the stream. */
  onDesync(decoder: HttpStreamDecoder): void;
}

export interface StreamDecoderLimits {
  maxHeaderBytes: number;
}

export class HttpStreamDecoder {
  private mode: Mode = "head";
  /** Stream offset expected next; -1 until the first chunk. */
  private nextOffset = -1;

  // Header block reassembly (only used when a block spans chunks).
  private acc: Buffer | null = null;
  private accLen = 0;
  private headFirst: CapturedChunk | null = null;
  /** The block was found by resynchronisation: a bad start line is not "malformed". */
  private tentative = false;
  private startLineChecked = false;

  /** Bytes left in a Content-Length body or in the current chunk's data. */
  private remaining = 0;

  // Chunk-size line and chunk-data-end state.
  private sizeValue = 0;
  private sizeDigits = 0;
  private sizeLineBytes = 0;
  private sizeInExtension = false;
  private sizeAfterDigits = false;
  private crSeen = false;

  // Trailer section state.
  private trailerBytes = 0;
  private lineLen = 0;
  private lineStartsWithCr = false;

  /** In resync mode: the next byte starts a line (stream start or after a gap / LF). */
  private atLineStart = true;

  constructor(
    readonly direction: Direction,
    private readonly sink: HeadSink,
    private readonly counters: HttpDecoderCounters,
    private readonly limits: StreamDecoderLimits,
  ) {}

  /** Bytes held for reassembly (the only per-direction memory that grows). */
  retainedBytes(): number {
    return this.acc === null ? 0 : this.acc.length;
  }

  /** True when a header block has started but is not complete. */
  hasPartialHead(): boolean {
    return this.mode === "head" && this.accLen > 0;
  }

  /** Everything after this point is not HTTP (upgrade, tunnel): ignore it. */
  enterPassthrough(): void {
    this.dropPartialHead();
    this.mode = "until-close";
  }

  push(chunk: CapturedChunk): void {
    const data = chunk.data;
    const total = Math.max(chunk.length, data.length);
    const start = chunk.streamOffset;
    const end = start + total;
    const expected = this.nextOffset;
    this.counters.chunks++;
    this.counters.capturedBytes += data.length;

    if (total === 0) return;
    if (expected >= 0 && end <= expected) {
      this.counters.overlaps++;
      return;
    }
    if (expected < 0) {
      if (start > 0) {
        this.counters.midStreamStarts++;
        this.loseSync(true);
      }
    } else if (start > expected) {
      this.skipGap(start - expected);
    } else if (start < expected) {
      this.counters.overlaps++;
    }
    this.nextOffset = end;

    const from = expected > start ? expected - start : 0;
    // Lost, but this write begins with a start-line token: look there, not only after the next LF.
    if (this.mode === "resync" && from === 0 && chunk.startsMessage === true) this.atLineStart = true;
    if (from < data.length) this.consume(data, from, chunk);
    const capturedEnd = Math.max(from, data.length);
    if (total > capturedEnd) this.skipGap(total - capturedEnd);
  }

  private consume(data: Buffer, start: number, chunk: CapturedChunk): void {
    const end = data.length;
    let pos = start;
    while (pos < end) {
      switch (this.mode) {
        case "head":
          pos = this.consumeHead(data, pos, end, chunk);
          break;
        case "body": {
          const n = Math.min(this.remaining, end - pos);
          pos += n;
          this.remaining -= n;
          this.counters.bodyBytes += n;
          if (this.remaining === 0) this.messageDone();
          break;
        }
        case "chunk-data": {
          const n = Math.min(this.remaining, end - pos);
          pos += n;
          this.remaining -= n;
          this.counters.bodyBytes += n;
          if (this.remaining === 0) this.beginChunkDataEnd();
          break;
        }
        case "chunk-size":
          pos = this.consumeChunkSize(data, pos, end);
          break;
        case "chunk-data-end":
          pos = this.consumeChunkDataEnd(data, pos);
          break;
        case "trailers":
          pos = this.consumeTrailers(data, pos, end);
          break;
        case "until-close":
          this.counters.bytesSkipped += end - pos;
          pos = end;
          break;
        case "resync":
          pos = this.consumeResync(data, pos, end);
          break;
      }
    }
  }

  /** `n` bytes at the current position were not captured. */
  private skipGap(n: number): void {
    this.counters.gaps++;
    this.counters.gapBytes += n;
    switch (this.mode) {
      case "body":
        if (n <= this.remaining) {
          this.remaining -= n;
          this.counters.gapsBridged++;
          if (this.remaining === 0) this.messageDone();
          return;
        }
        break;
      case "chunk-data":
        if (n <= this.remaining) {
          this.remaining -= n;
          this.counters.gapsBridged++;
          if (this.remaining === 0) this.beginChunkDataEnd();
          return;
        }
        break;
      case "until-close":
        this.counters.gapsBridged++;
        return;
      case "resync":
        // Capture sources cut at write boundaries, so bytes after a gap often start a message.
        this.atLineStart = true;
        return;
      default:
        break;
    }
    this.loseSync(true);
  }

  private consumeHead(data: Buffer, start: number, end: number, chunk: CapturedChunk): number {
    const max = this.limits.maxHeaderBytes;
    let pos = start;
    if (this.accLen === 0) {
      // Empty lines between messages are tolerated (RFC 9112 §2.2).
      while (pos < end && (data[pos] === CR || data[pos] === LF)) pos++;
      if (pos === end) return end;
      this.headFirst = chunk;
      const blockEnd = findHeaderBlockEnd(data, pos, end);
      if (blockEnd >= 0) {
        if (blockEnd - pos > max) return this.rejectOversize(blockEnd);
        if (this.completeHead(data, pos, blockEnd)) return blockEnd;
        this.counters.bytesSkipped++;
        return this.rejectStartLine(pos + 1);
      }
      if (!this.checkStartLine(data, pos, end)) {
        this.counters.bytesSkipped++;
        return this.rejectStartLine(pos + 1);
      }
      if (end - pos > max) return this.rejectOversize(end);
      this.append(data, pos, end);
      return end;
    }

    // The block started in an earlier chunk and is being reassembled in `acc`.
    const oldLen = this.accLen;
    const blockEnd = this.findBlockEndAcross(data, pos, end);
    const until = blockEnd >= 0 ? blockEnd : end;
    if (oldLen + (until - pos) > max) return this.rejectOversize(until);
    this.append(data, pos, until);
    const acc = this.acc!;
    const ok =
      blockEnd >= 0
        ? this.completeHead(acc, 0, this.accLen)
        : this.startLineChecked || this.checkStartLine(acc, 0, this.accLen);
    if (!ok) {
      // The partial line continues into this chunk: look for the next line from here.
      this.accLen = oldLen;
      return this.rejectStartLine(pos);
    }
    if (blockEnd >= 0) this.releaseLargeBuffer();
    return until;
  }

  /** End of a block whose first part is in `acc`, possibly with the terminator split. */
  private findBlockEndAcross(data: Buffer, pos: number, end: number): number {
    const acc = this.acc!;
    const n = this.accLen;
    const last = acc[n - 1];
    const first = data[pos];
    if (last === LF) {
      if (first === LF) return pos + 1;
      if (first === CR && pos + 1 < end && data[pos + 1] === LF) return pos + 2;
    } else if (last === CR && n >= 2 && acc[n - 2] === LF && first === LF) {
      return pos + 1;
    }
    return findHeaderBlockEnd(data, pos, end);
  }

  /** False when the bytes cannot begin a start line; remembers a definite yes. */
  private checkStartLine(buf: Buffer, start: number, end: number): boolean {
    const verdict = classifyStartLine(buf, start, end);
    if (verdict === "yes") this.startLineChecked = true;
    return verdict !== "no";
  }

  private append(data: Buffer, start: number, end: number): void {
    const n = end - start;
    const needed = this.accLen + n;
    let acc = this.acc;
    if (acc === null || acc.length < needed) {
      const grown = Buffer.allocUnsafe(
        Math.min(this.limits.maxHeaderBytes, Math.max(needed, acc === null ? 1024 : acc.length * 2)),
      );
      if (acc !== null && this.accLen > 0) acc.copy(grown, 0, 0, this.accLen);
      acc = grown;
      this.acc = acc;
    }
    data.copy(acc, this.accLen, start, end);
    this.accLen = needed;
  }

  /**
   * Parses and emits a complete block. Returns false, changing nothing, when
   * its start line is invalid so the caller can decide where to look next.
   */
  private completeHead(buf: Buffer, start: number, end: number): boolean {
    const head = parseHeaderBlock(buf, start, end);
    if (head === "bad-start-line") return false;
    const first = this.headFirst!;
    this.resetHead();
    if (head === "bad-header") {
      this.counters.malformed++;
      this.counters.bytesSkipped += end - start;
      this.loseSync(true);
      return true;
    }
    this.counters.messages++;
    if (head.kind === "request") this.counters.requests++;
    else this.counters.responses++;
    const requestMethod = this.sink.onHead(this, head, first);
    if (this.mode === "head") this.beginBody(head, requestMethod);
    return true;
  }

  private beginBody(head: ParsedHead, requestMethod: string | null): void {
    if (head.kind === "response") {
      const status = head.status!;
      if (status === 101 || (requestMethod === "CONNECT" && status >= 200 && status < 300)) {
        this.mode = "until-close";
        return;
      }
      if (status < 200 || status === 204 || status === 304 || requestMethod === "HEAD") return;
      if (head.framing === "other-coding" || head.framing === "none") {
        this.mode = "until-close";
        return;
      }
    } else if (head.framing === "other-coding") {
      // A request body we cannot delimit (RFC 9112 §6.3 makes it an error).
      this.loseSync(false);
      return;
    }
    if (head.framing === "chunked") {
      this.beginChunkSize();
    } else if (head.framing === "length" && head.contentLength > 0) {
      this.mode = "body";
      this.remaining = head.contentLength;
    }
  }

  private messageDone(): void {
    this.mode = "head";
  }

  private resetHead(): void {
    this.accLen = 0;
    this.headFirst = null;
    this.tentative = false;
    this.startLineChecked = false;
  }

  private releaseLargeBuffer(): void {
    if (this.acc !== null && this.acc.length > RETAINED_BUFFER_BYTES) this.acc = null;
  }

  private dropPartialHead(): void {
    this.counters.bytesSkipped += this.accLen;
    this.resetHead();
    this.releaseLargeBuffer();
  }

  private rejectOversize(resumeAt: number): number {
    this.counters.oversize++;
    this.loseSync(true);
    return resumeAt;
  }

  /**
   * The block being assembled cannot start with a valid start line: count it
   * (unless it was only a resync candidate) and search again from `resumeAt`,
   * which lies inside that line.
   */
  private rejectStartLine(resumeAt: number): number {
    const tentative = this.tentative;
    if (!tentative) this.counters.malformed++;
    this.loseSync(false, !tentative);
    return resumeAt;
  }

  /** Enter resync mode; `counted` is false when already resynchronising. */
  private loseSync(atLineStart: boolean, counted = true): void {
    this.dropPartialHead();
    this.mode = "resync";
    this.atLineStart = atLineStart;
    if (counted) {
      this.counters.resyncs++;
      this.sink.onDesync(this);
    }
  }

  private consumeResync(data: Buffer, start: number, end: number): number {
    let lineStart = this.atLineStart ? start : -1;
    let searchFrom = start;
    for (;;) {
      if (lineStart < 0) {
        const lf = data.indexOf(LF, searchFrom);
        if (lf < 0 || lf >= end) {
          this.counters.bytesSkipped += end - start;
          this.atLineStart = false;
          return end;
        }
        lineStart = lf + 1;
      }
      if (lineStart >= end) {
        this.counters.bytesSkipped += end - start;
        this.atLineStart = true;
        return end;
      }
      if (classifyStartLine(data, lineStart, end) !== "no") {
        this.counters.bytesSkipped += lineStart - start;
        this.mode = "head";
        this.tentative = true;
        return lineStart;
      }
      searchFrom = lineStart;
      lineStart = -1;
    }
  }

  private beginChunkSize(): void {
    this.mode = "chunk-size";
    this.sizeValue = 0;
    this.sizeDigits = 0;
    this.sizeLineBytes = 0;
    this.sizeInExtension = false;
    this.sizeAfterDigits = false;
  }

  private beginChunkDataEnd(): void {
    this.mode = "chunk-data-end";
    this.crSeen = false;
  }

  private consumeChunkSize(data: Buffer, start: number, end: number): number {
    let pos = start;
    while (pos < end) {
      const b = data[pos++]!;
      if (b === LF) {
        if (this.sizeDigits === 0) {
          this.loseSync(true);
          return pos;
        }
        if (this.sizeValue === 0) {
          this.mode = "trailers";
          this.trailerBytes = 0;
          this.lineLen = 0;
        } else {
          this.mode = "chunk-data";
          this.remaining = this.sizeValue;
        }
        return pos;
      }
      if (++this.sizeLineBytes > MAX_CHUNK_SIZE_LINE) {
        this.loseSync(false);
        return pos;
      }
      if (this.sizeInExtension || b === CR) continue;
      const digit = HEX[b]!;
      if (digit >= 0 && !this.sizeAfterDigits) {
        if (++this.sizeDigits > MAX_CHUNK_SIZE_DIGITS) {
          this.loseSync(false);
          return pos;
        }
        this.sizeValue = this.sizeValue * 16 + digit;
      } else if (b === SEMICOLON && this.sizeDigits > 0) {
        this.sizeInExtension = true;
      } else if ((b === SP || b === HT) && this.sizeDigits > 0) {
        this.sizeAfterDigits = true;
      } else {
        this.loseSync(false);
        return pos;
      }
    }
    return pos;
  }

  private consumeChunkDataEnd(data: Buffer, pos: number): number {
    const b = data[pos];
    if (b === CR && !this.crSeen) {
      this.crSeen = true;
      return pos + 1;
    }
    if (b === LF) {
      this.beginChunkSize();
      return pos + 1;
    }
    this.loseSync(false);
    return pos;
  }

  private consumeTrailers(data: Buffer, start: number, end: number): number {
    let pos = start;
    while (pos < end) {
      const lf = data.indexOf(LF, pos);
      const lineEnd = lf < 0 || lf >= end ? end : lf;
      const n = lineEnd - pos;
      if (n > 0 && this.lineLen === 0) this.lineStartsWithCr = data[pos] === CR;
      this.lineLen += n;
      this.trailerBytes += n;
      if (this.trailerBytes > this.limits.maxHeaderBytes) {
        this.counters.oversize++;
        this.loseSync(false);
        return lineEnd;
      }
      if (lineEnd === end) return end;
      pos = lineEnd + 1;
      this.trailerBytes++;
      const empty = this.lineLen === 0 || (this.lineLen === 1 && this.lineStartsWithCr);
      this.lineLen = 0;
      if (empty) {
        this.messageDone();
        return pos;
      }
    }
    return pos;
  }
}
