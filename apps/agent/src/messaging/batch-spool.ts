/**
 * The record publisher's disk overflow: sealed batches that do not fit its memory
 * bound are appended to segment files in one directory, read back one segment at a
 * time in the order they were written, and a segment is deleted once every batch
 * read from it was acknowledged. Segments left by a previous run are replayed
 * first (their batch ids keep JetStream's dedupe exact).
 *
 * A segment is a sequence of frames `[u32 body length][u32 crc32(body)][body]`, the
 * body `[u16 id length][batch id][u16 length][capture id][u32 record count][payload]`.
 * A frame torn by a crash (short, or its checksum does not match) ends the segment:
 * it and anything after it are skipped and counted, never misparsed.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, statSync, unlinkSync, writevSync } from "node:fs";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import type { SealedBatch } from "./record-batch-builder.ts";

export interface BatchSpoolOptions {
  dir: string;
  /** Bytes of segment files on disk at most; a batch that does not fit is refused. Default 1 GiB. */
  maxBytes?: number;
  /** A segment is closed once it reaches this size. Default 4 MiB. */
  segmentBytes?: number;
}

/** One segment file; its batches are counted as outstanding once read, until acknowledged. */
export interface SpoolSegment {
  readonly seq: number;
  /** Left by an earlier run: its records were never counted by this process. */
  readonly replayed: boolean;
  bytes: number;
  read: boolean;
  outstanding: number;
}

export interface SpoolRead {
  segment: SpoolSegment;
  batches: SealedBatch[];
  /** Frames skipped as torn or corrupt (a segment stops at its first bad frame). */
  corruptFrames: number;
  corruptBytes: number;
}

const FRAME_HEAD = 8;
/** Fresh spools number segments from here so a front segment (written at shutdown) can sort before them. */
const FIRST_SEQ = 2 ** 40;
const SEGMENT_NAME = /^(\d{16})\.seg$/;
const FRONT_TMP = "front.seg.tmp";

const segmentName = (seq: number) => `${String(seq).padStart(16, "0")}.seg`;

export class BatchSpool {
  readonly dir: string;
  private readonly maxBytes: number;
  private readonly segmentBytes: number;
  /** In sequence order: read segments (awaiting acks) first, then unread ones. */
  private readonly segments: SpoolSegment[] = [];
  private writer: { segment: SpoolSegment; fd: number } | null = null;
  private nextSeq: number;
  private totalBytes = 0;

  constructor(options: BatchSpoolOptions) {
    this.dir = options.dir;
    this.maxBytes = options.maxBytes ?? 1024 ** 3;
    this.segmentBytes = options.segmentBytes ?? 4 * 1024 * 1024;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const names = readdirSync(this.dir);
    const seqs = names.flatMap((n) => {
      const m = SEGMENT_NAME.exec(n);
      return m ? [Number(m[1])] : [];
    });
    seqs.sort((a, b) => a - b);
    if (names.includes(FRONT_TMP)) {
      // A shutdown wrote its unacknowledged batches but did not get to rename the file: they precede the rest.
      const seq = (seqs[0] ?? FIRST_SEQ) - 1;
      renameSync(join(this.dir, FRONT_TMP), join(this.dir, segmentName(seq)));
      seqs.unshift(seq);
    }
    for (const seq of seqs) {
      const bytes = statSync(join(this.dir, segmentName(seq))).size;
      this.segments.push({ seq, replayed: true, bytes, read: false, outstanding: 0 });
      this.totalBytes += bytes;
    }
    this.nextSeq = seqs.length > 0 ? seqs[seqs.length - 1]! + 1 : FIRST_SEQ;
  }

  /** Bytes of segment files on disk. */
  get bytes(): number {
    return this.totalBytes;
  }

  /** Segment files on disk. */
  get segmentCount(): number {
    return this.segments.length;
  }

  /** True while some written batch has not been read back yet. */
  get hasUnread(): boolean {
    return this.segments.some((s) => !s.read);
  }

  /**
   * Appends a batch: "full" (nothing written) when it would exceed the size bound, "error"
   * when the file system refused it (a partly written frame then ends its segment, which
   * is closed, so the reader skips only that frame).
   */
  append(batch: SealedBatch): "spooled" | "full" | "error" {
    const frame = encodeFrame(batch);
    const frameBytes = frame[0].length + frame[1].length;
    if (this.totalBytes + frameBytes > this.maxBytes) return "full";
    try {
      if (this.writer && this.writer.segment.bytes >= this.segmentBytes) this.closeWriter();
      if (!this.writer) {
        const segment: SpoolSegment = { seq: this.nextSeq, replayed: false, bytes: 0, read: false, outstanding: 0 };
        const fd = openSync(join(this.dir, segmentName(segment.seq)), "a", 0o600);
        this.nextSeq++;
        this.segments.push(segment);
        this.writer = { segment, fd };
      }
      writeAll(this.writer.fd, frame);
    } catch {
      this.closeWriter();
      return "error";
    }
    this.writer.segment.bytes += frameBytes;
    this.totalBytes += frameBytes;
    return "spooled";
  }

  /** Reads the oldest unread segment whole (null when none is left). */
  readNext(): SpoolRead | null {
    const segment = this.segments.find((s) => !s.read);
    if (!segment) return null;
    if (this.writer?.segment === segment) this.closeWriter();
    let data: Buffer | null = null;
    try {
      data = readFileSync(join(this.dir, segmentName(segment.seq)));
    } catch {
      // gone or unreadable: counted as one corrupt frame of its size
    }
    const { batches, validBytes } = data ? decodeFrames(data) : { batches: [], validBytes: 0 };
    segment.read = true;
    segment.outstanding = batches.length;
    const corruptBytes = data ? data.length - validBytes : segment.bytes;
    if (segment.outstanding === 0) this.remove(segment);
    return { segment, batches, corruptFrames: corruptBytes > 0 || !data ? 1 : 0, corruptBytes };
  }

  /** A batch read from `segment` was acknowledged; the segment goes once all of its batches were. */
  acked(segment: SpoolSegment): void {
    if (--segment.outstanding <= 0 && segment.read) this.remove(segment);
  }

  /**
   * At shutdown: writes the batches still held in memory (oldest first) into a segment
   * placed before every unread one, then deletes the segments already read (their
   * unacknowledged batches are among `batches`). Returns how many of `batches` were kept;
   * the rest did not fit the size bound.
   */
  keepInFront(batches: readonly SealedBatch[]): number {
    this.closeWriter();
    const unread = this.segments.filter((s) => !s.read);
    let room = this.maxBytes - unread.reduce((n, s) => n + s.bytes, 0);
    let kept = 0;
    if (batches.length > 0) {
      const tmp = join(this.dir, FRONT_TMP);
      const fd = openSync(tmp, "w", 0o600);
      try {
        for (const batch of batches) {
          const frame = encodeFrame(batch);
          const frameBytes = frame[0].length + frame[1].length;
          if (frameBytes > room) break;
          writeAll(fd, frame);
          room -= frameBytes;
          kept++;
        }
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      if (kept === 0) unlinkSync(tmp);
    }
    for (const s of this.segments.filter((s) => s.read)) this.remove(s);
    if (kept > 0) {
      const seq = unread.length > 0 ? unread[0]!.seq - 1 : this.nextSeq++;
      renameSync(join(this.dir, FRONT_TMP), join(this.dir, segmentName(seq)));
    }
    return kept;
  }

  /** Closes the segment being written (it stays on disk). */
  close(): void {
    this.closeWriter();
  }

  private closeWriter(): void {
    if (!this.writer) return;
    const { fd } = this.writer;
    this.writer = null;
    try {
      closeSync(fd);
    } catch {
      // nothing to do: the frames written are on disk or detected as torn when read
    }
  }

  private remove(segment: SpoolSegment): void {
    const at = this.segments.indexOf(segment);
    if (at < 0) return;
    this.segments.splice(at, 1);
    this.totalBytes -= segment.bytes;
    try {
      unlinkSync(join(this.dir, segmentName(segment.seq)));
    } catch {
      // already gone
    }
  }
}

/** Writes the frame's head and the payload (not copied into one buffer) completely. */
function writeAll(fd: number, [head, payload]: [Buffer, Uint8Array]): void {
  let parts: Uint8Array[] = [head, payload];
  for (let left = head.length + payload.length; left > 0; ) {
    let wrote = writevSync(fd, parts);
    left -= wrote;
    const rest: Uint8Array[] = [];
    for (const p of parts) {
      if (wrote >= p.length) wrote -= p.length;
      else {
        rest.push(p.subarray(wrote));
        wrote = 0;
      }
    }
    parts = rest;
  }
}

/** The frame as its head (length, checksum, ids, count) and the payload itself. */
function encodeFrame(batch: SealedBatch): [Buffer, Uint8Array] {
  const id = Buffer.from(batch.batchId);
  const capture = Buffer.from(batch.captureId);
  const head = Buffer.allocUnsafe(FRAME_HEAD + 2 + id.length + 2 + capture.length + 4);
  let at = FRAME_HEAD;
  at = head.writeUInt16LE(id.length, at);
  at += id.copy(head, at);
  at = head.writeUInt16LE(capture.length, at);
  at += capture.copy(head, at);
  head.writeUInt32LE(batch.count, at);
  head.writeUInt32LE(head.length - FRAME_HEAD + batch.payload.length, 0);
  head.writeUInt32LE(crc32(batch.payload, crc32(head.subarray(FRAME_HEAD))), 4);
  return [head, batch.payload];
}

/** Frames up to the first incomplete or corrupt one. */
function decodeFrames(data: Buffer): { batches: SealedBatch[]; validBytes: number } {
  const batches: SealedBatch[] = [];
  let at = 0;
  while (data.length - at >= FRAME_HEAD) {
    const bodyLength = data.readUInt32LE(at);
    const end = at + FRAME_HEAD + bodyLength;
    if (bodyLength < 8 || end > data.length) break;
    const body = data.subarray(at + FRAME_HEAD, end);
    if (crc32(body) !== data.readUInt32LE(at + 4)) break;
    const batch = decodeBody(body);
    if (!batch) break;
    batches.push(batch);
    at = end;
  }
  return { batches, validBytes: at };
}

function decodeBody(body: Buffer): SealedBatch | null {
  let at = 0;
  const idLength = body.readUInt16LE(at);
  at += 2;
  if (at + idLength + 2 > body.length) return null;
  const batchId = body.toString("utf8", at, at + idLength);
  at += idLength;
  const captureLength = body.readUInt16LE(at);
  at += 2;
  if (at + captureLength + 4 > body.length) return null;
  const captureId = body.toString("utf8", at, at + captureLength);
  at += captureLength;
  const count = body.readUInt32LE(at);
  at += 4;
  // A view, not a copy: the segment's buffer lives until its last batch is released (one segment, a few MiB).
  const payload = body.subarray(at);
  return { batchId, captureId, count, payload };
}
