/**
 * The record publisher's disk overflow: sealed batches that do not fit its memory
 * bound are appended to segment files in one directory, read back one batch at a
 * time in the order they were written (each into a pooled slab, never a whole
 * segment in memory), and a segment is deleted once it was read to its end and
 * every batch read from it was acknowledged. Segments left by a previous run are
 * replayed first (their batch ids keep JetStream's dedupe exact).
 *
 * A segment is a sequence of frames `[u32 body length][u32 crc32(body)][body]`, the
 * body `[u16 id length][batch id][u16 length][capture id][u32 record count][payload]`.
 * A frame torn by a crash (short, or its checksum does not match) ends the segment:
 * it and anything after it are skipped and counted, never misparsed.
 */
import { closeSync, fstatSync, fsyncSync, mkdirSync, openSync, readSync, readdirSync, renameSync, statSync, unlinkSync, writeSync, writevSync } from "node:fs";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import type { BatchBufferPool } from "./batch-buffer-pool.ts";
import type { SealedBatch } from "./record-batch-builder.ts";

export interface BatchSpoolOptions {
  dir: string;
  /** Bytes of segment files on disk at most; a batch that does not fit is refused. Default 1 GiB. */
  maxBytes?: number;
  /** A segment is closed once it reaches this size. Default 4 MiB. */
  segmentBytes?: number;
  /** Slabs that read-back batches are read into (a frame larger than a slab gets a buffer of its own). */
  pool?: BatchBufferPool;
}

/** One segment file; its batches are counted as outstanding once read, until acknowledged. */
export interface SpoolSegment {
  readonly seq: number;
  /** Left by an earlier run: its records were never counted by this process. */
  readonly replayed: boolean;
  bytes: number;
  /** Read to its end (or to its first bad frame). */
  read: boolean;
  /** Batches read from it and not acknowledged yet. */
  outstanding: number;
}

/** One step of reading back: the next batch of the oldest unread segment, or how its end was bad. */
export interface SpoolRead {
  segment: SpoolSegment;
  /** The next batch (at most one; none when the segment ended in a bad frame or was unreadable). */
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

interface SpoolReader {
  segment: SpoolSegment;
  /** -1: the file could not be opened. */
  fd: number;
  /** Where the next frame starts. */
  at: number;
  size: number;
}

const segmentName = (seq: number) => `${String(seq).padStart(16, "0")}.seg`;

export class BatchSpool {
  readonly dir: string;
  private readonly maxBytes: number;
  private readonly segmentBytes: number;
  /** In sequence order: read segments (awaiting acks) first, then unread ones. */
  private readonly segments: SpoolSegment[] = [];
  private writer: { segment: SpoolSegment; fd: number } | null = null;
  /** The segment being read back: its file and where its next frame starts. */
  private reader: SpoolReader | null = null;
  private readonly frameHead = Buffer.alloc(FRAME_HEAD);
  private readonly pool: BatchBufferPool | undefined;
  private nextSeq: number;
  private totalBytes = 0;

  constructor(options: BatchSpoolOptions) {
    this.dir = options.dir;
    this.maxBytes = options.maxBytes ?? 1024 ** 3;
    this.segmentBytes = options.segmentBytes ?? 4 * 1024 * 1024;
    this.pool = options.pool;
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

  /**
   * Reads the next batch of the oldest unread segment (null when none is left). A batch
   * read into a pooled slab owns it (`slab`) until the caller gives it back.
   */
  readNext(): SpoolRead | null {
    const reader = this.openReader();
    if (!reader) return null;
    const { segment } = reader;
    if (reader.fd < 0) return this.endRead(reader, segment.bytes); // gone or unreadable: one corrupt frame of its size
    const left = reader.size - reader.at;
    if (left === 0) return this.endRead(reader, 0);
    let batch: SealedBatch | null = null;
    let body: Buffer | null = null;
    let slab: Buffer | undefined;
    try {
      if (left >= FRAME_HEAD && readFully(reader.fd, this.frameHead, FRAME_HEAD, reader.at)) {
        const bodyLength = this.frameHead.readUInt32LE(0);
        if (bodyLength >= 8 && FRAME_HEAD + bodyLength <= left) {
          slab = this.pool && bodyLength <= this.pool.slabBytes ? this.pool.acquire() : undefined;
          body = (slab ?? Buffer.allocUnsafeSlow(bodyLength)).subarray(0, bodyLength);
          if (readFully(reader.fd, body, bodyLength, reader.at + FRAME_HEAD) && crc32(body) === this.frameHead.readUInt32LE(4)) batch = decodeBody(body);
        }
      }
    } catch {
      batch = null; // a read error ends the segment like a bad frame
    }
    if (!batch) {
      if (slab) this.pool!.release(slab);
      return this.endRead(reader, left);
    }
    if (slab) batch.slab = slab;
    reader.at += FRAME_HEAD + body!.length;
    segment.outstanding++;
    if (reader.at === reader.size) this.endRead(reader, 0);
    return { segment, batches: [batch], corruptFrames: 0, corruptBytes: 0 };
  }

  /** A batch read from `segment` was acknowledged; the segment goes once all of its batches were. */
  acked(segment: SpoolSegment): void {
    if (--segment.outstanding <= 0 && segment.read) this.remove(segment);
  }

  /**
   * At shutdown: writes the batches still held in memory (oldest first) into a segment
   * placed before every unread one, followed by the unread rest of the segment being
   * read back, then deletes the segments already read (their unacknowledged batches are
   * among `batches`). Returns how many of `batches` were kept; the rest did not fit the
   * size bound.
   */
  keepInFront(batches: readonly SealedBatch[]): number {
    this.closeWriter();
    const unread = this.segments.filter((s) => !s.read);
    // The segment being read counts whole (its rest is copied below).
    let room = this.maxBytes - unread.reduce((n, s) => n + s.bytes, 0);
    let kept = 0;
    const partial = this.reader && this.reader.fd >= 0 && this.reader.at > 0 ? this.reader : null;
    let frontSeq: number | undefined;
    if (batches.length > 0 || partial) {
      const tmp = join(this.dir, FRONT_TMP);
      const fd = openSync(tmp, "w", 0o600);
      let written = 0;
      try {
        for (const batch of batches) {
          const frame = encodeFrame(batch);
          const frameBytes = frame[0].length + frame[1].length;
          if (frameBytes > room) break;
          writeAll(fd, frame);
          written += frameBytes;
          room -= frameBytes;
          kept++;
        }
        if (partial) written += copyRest(partial.fd, partial.at, partial.size, fd);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      if (written === 0) unlinkSync(tmp);
      else {
        const after = unread.filter((s) => s !== partial?.segment);
        frontSeq = after.length > 0 ? after[0]!.seq - 1 : this.nextSeq++;
        if (partial) partial.segment.read = true; // its rest is in the front segment now
      }
    }
    this.closeReader();
    for (const s of this.segments.filter((s) => s.read)) this.remove(s);
    if (frontSeq !== undefined) renameSync(join(this.dir, FRONT_TMP), join(this.dir, segmentName(frontSeq)));
    return kept;
  }

  /** Closes the segment being written and the one being read (both stay on disk). */
  close(): void {
    this.closeWriter();
    this.closeReader();
  }

  /** The reader of the oldest unread segment, opened on first use. */
  private openReader(): SpoolReader | null {
    if (this.reader) return this.reader;
    const segment = this.segments.find((s) => !s.read);
    if (!segment) return null;
    // Its size is final from now on: batches sealed later go to a new segment.
    if (this.writer?.segment === segment) this.closeWriter();
    let fd = -1;
    let size = 0;
    try {
      fd = openSync(join(this.dir, segmentName(segment.seq)), "r");
      size = fstatSync(fd).size;
    } catch {
      if (fd >= 0) closeSync(fd);
      fd = -1;
    }
    this.reader = { segment, fd, at: 0, size };
    return this.reader;
  }

  /** The segment was read to its end; `corruptBytes` of it were skipped as bad. */
  private endRead(reader: SpoolReader, corruptBytes: number): SpoolRead {
    this.closeReader();
    const { segment } = reader;
    segment.read = true;
    if (segment.outstanding === 0) this.remove(segment);
    return { segment, batches: [], corruptFrames: corruptBytes > 0 ? 1 : 0, corruptBytes };
  }

  private closeReader(): void {
    if (!this.reader) return;
    const { fd } = this.reader;
    this.reader = null;
    if (fd >= 0) closeSync(fd);
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

/** Reads exactly `length` bytes at `position` into `into`; false at end of file. */
function readFully(fd: number, into: Buffer, length: number, position: number): boolean {
  for (let got = 0; got < length; ) {
    const n = readSync(fd, into, got, length - got, position + got);
    if (n === 0) return false;
    got += n;
  }
  return true;
}

/** Copies bytes [from, to) of one file to the end of another, through a small buffer. */
function copyRest(src: number, from: number, to: number, dst: number): number {
  const chunk = Buffer.allocUnsafe(64 * 1024);
  let at = from;
  while (at < to) {
    const n = readSync(src, chunk, 0, Math.min(chunk.length, to - at), at);
    if (n === 0) break;
    for (let w = 0; w < n; ) w += writeSync(dst, chunk, w, n - w);
    at += n;
  }
  return at - from;
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
  // A view of the frame's body (a pooled slab, or a buffer of this frame's size), not a copy.
  const payload = body.subarray(at);
  return { batchId, captureId, count, payload };
}
