/**
 * The CLI's record output: records are encoded into a few reused buffers and
 * written to a file descriptor (stdout). A file or a character device (e.g.
 * /dev/null, a terminal) never keeps us waiting long, so it is written
 * synchronously, buffer by buffer. A pipe or socket is written through a
 * libuv stream (non-blocking, one buffer at a time), so the event loop keeps
 * draining the ring buffer while a slow reader takes its time, and nothing
 * blocks a thread (a write blocked in the threadpool would also hang exit).
 * Memory is bounded by `buffers × bufferBytes`: when every buffer is full or
 * being written, further records are dropped and counted (reported in the
 * summary) instead of queueing without bound or stalling the capture.
 */
import { fstatSync, writeSync } from "node:fs";
import { Socket } from "node:net";

export interface RecordOutputOptions<R> {
  fd: number;
  /** One record → its text (a line of NDJSON, a text block). */
  format: (record: R) => string;
  /** Write "\n" after each record's text (cheaper than concatenating it to the text). */
  newline?: boolean;
  /** Size of each buffer; default 1 MiB. */
  bufferBytes?: number;
  /** Buffers at most (filling, queued and in flight); default 8. */
  buffers?: number;
  /** The fd stopped taking data (EPIPE: the reader went away, or another error). */
  onClosed?: (err: NodeJS.ErrnoException) => void;
}

export interface RecordOutputCounters {
  /** Records encoded for output. */
  accepted: number;
  /** Records whose bytes the fd took completely. */
  written: number;
  /** Records dropped because every buffer was full (the reader did not keep up) or the output was closed. */
  dropped: number;
  /** Bytes handed to the fd and confirmed written. */
  bytesWritten: number;
}

interface Pending {
  buf: Buffer;
  len: number;
  off: number;
  /** Records encoded in buf (counted as dropped if it is never written). */
  records: number;
}

const DEFAULT_BUFFER_BYTES = 1024 * 1024;
const DEFAULT_BUFFERS = 8;
/** Retry delay when a file or device fd is non-blocking and full. */
const EAGAIN_RETRY_MS = 2;

export class RecordOutput<R> {
  private readonly fd: number;
  private readonly format: (record: R) => string;
  private readonly newline: number;
  private readonly bufferBytes: number;
  private readonly maxBuffers: number;
  private readonly onClosed: ((err: NodeJS.ErrnoException) => void) | undefined;
  private readonly free: Buffer[] = [];
  private readonly queue: Pending[] = [];
  private allocated = 0;
  private current: Buffer | null = null;
  private pos = 0;
  private currentRecords = 0;
  private inFlight: Pending | null = null;
  private closedBy: NodeJS.ErrnoException | null = null;
  /** A file or character device: write in place instead of queueing. */
  private readonly sync: boolean;
  /** Pipe or socket: written through libuv (created on first use). */
  private stream: Socket | null = null;
  private idleWaiters: (() => void)[] = [];
  private readonly stats: RecordOutputCounters = { accepted: 0, written: 0, dropped: 0, bytesWritten: 0 };

  constructor(options: RecordOutputOptions<R>) {
    this.fd = options.fd;
    this.format = options.format;
    this.newline = options.newline ? 1 : 0;
    this.bufferBytes = options.bufferBytes ?? DEFAULT_BUFFER_BYTES;
    this.maxBuffers = Math.max(2, options.buffers ?? DEFAULT_BUFFERS);
    this.onClosed = options.onClosed;
    let sync = false;
    try {
      const st = fstatSync(this.fd);
      sync = st.isFile() || st.isCharacterDevice();
    } catch {
      // not stat-able: treat it as a pipe
    }
    this.sync = sync;
  }

  counters(): RecordOutputCounters {
    return { ...this.stats };
  }

  /** Encodes the records and writes them (file, device) or starts writing them (pipe); never grows past its buffers. */
  write(records: readonly R[]): void {
    if (this.closedBy !== null) {
      this.stats.dropped += records.length;
      return;
    }
    for (const r of records) {
      const text = this.format(r);
      // UTF-8 takes at most 3 bytes per UTF-16 code unit.
      const worst = text.length * 3 + this.newline;
      if (worst > this.bufferBytes) {
        this.writeOversize(this.newline ? `${text}\n` : text);
        continue;
      }
      if (this.current === null || this.pos + worst > this.current.length) {
        // A file or device: write the full buffer in place and reuse it.
        const writtenInPlace = this.canWriteInPlace() && this.writeCurrentNow();
        if (this.closedBy !== null) {
          this.stats.dropped++;
          continue;
        }
        if (!writtenInPlace && !this.rotate()) {
          this.stats.dropped++;
          continue;
        }
      }
      const buf = this.current!;
      this.pos += buf.write(text, this.pos, "utf8");
      if (this.newline) buf[this.pos++] = 0x0a;
      this.currentRecords++;
      this.stats.accepted++;
    }
    // Hand out what this batch filled now: records reach the reader within the drain tick.
    if (this.canWriteInPlace()) {
      this.writeCurrentNow();
      return;
    }
    if (this.inFlight === null) {
      this.queueCurrent();
      this.pump();
    }
  }

  /** Resolves when everything accepted is written (or the fd closed), or after timeoutMs; returns true if all was written. */
  async flush(timeoutMs: number): Promise<boolean> {
    this.queueCurrent();
    this.pump();
    if (this.isIdle()) return this.closedBy === null;
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true)));
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const done = await Promise.race([idle, timeout]);
    clearTimeout(timer);
    if (!done) {
      // Whatever is still queued will not be written: count it.
      this.stats.dropped += this.unwrittenRecords();
      return false;
    }
    return this.closedBy === null;
  }

  /** Stops writing; a pipe or socket fd is closed with its stream (a file's fd stays the caller's). */
  destroy(): void {
    this.stream?.destroy();
    this.stream = null;
    this.closedBy ??= Object.assign(new Error("output destroyed"), { code: "EDESTROYED" });
  }

  private isIdle(): boolean {
    return this.inFlight === null && this.queue.length === 0 && this.pos === 0;
  }

  /** Records accepted but not (completely) written. */
  private unwrittenRecords(): number {
    let n = this.currentRecords;
    for (const p of this.queue) n += p.records;
    if (this.inFlight) n += this.inFlight.records;
    return n;
  }

  /** Queues the current buffer and takes a fresh one; false when all buffers are busy. */
  private rotate(): boolean {
    if (this.current !== null && this.pos === 0) return true; // empty already
    this.queueCurrent();
    let next = this.free.pop();
    if (next === undefined) {
      if (this.allocated >= this.maxBuffers) return false;
      next = Buffer.allocUnsafe(this.bufferBytes);
      this.allocated++;
    }
    this.current = next;
    this.pos = 0;
    this.currentRecords = 0;
    return true;
  }

  private queueCurrent(): void {
    if (this.current !== null && this.pos > 0) {
      this.queue.push({ buf: this.current, len: this.pos, off: 0, records: this.currentRecords });
      this.current = null;
      this.pos = 0;
      this.currentRecords = 0;
    }
  }

  /** A file or device with nothing queued ahead (an oversize record or an EAGAIN may have queued some). */
  private canWriteInPlace(): boolean {
    return this.sync && this.current !== null && this.pos > 0 && this.queue.length === 0 && this.inFlight === null;
  }

  /**
   * Synchronous write of the current buffer (file or character device only).
   * False, with nothing changed, if the fd would block (O_NONBLOCK): the
   * caller falls back to the queue.
   */
  private writeCurrentNow(): boolean {
    const buf = this.current!;
    let off = 0;
    while (off < this.pos) {
      try {
        off += writeSync(this.fd, buf, off, this.pos - off);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        if (e.code === "EAGAIN" && off === 0) return false;
        if (e.code === "EAGAIN") continue;
        this.close(e);
        return true;
      }
    }
    this.stats.bytesWritten += off;
    this.stats.written += this.currentRecords;
    this.pos = 0;
    this.currentRecords = 0;
    return true;
  }

  private writeOversize(text: string): void {
    // A record larger than a buffer (a 64 KiB header block of multi-byte text): its own buffer, counted against the bound.
    if (this.allocated >= this.maxBuffers && this.free.length === 0) {
      this.stats.dropped++;
      return;
    }
    if (this.free.length > 0) this.free.pop();
    else this.allocated++;
    const buf = Buffer.from(text, "utf8");
    this.queueCurrent();
    this.queue.push({ buf, len: buf.length, off: 0, records: 1 });
    this.stats.accepted++;
  }

  private pump(): void {
    if (this.inFlight !== null || this.closedBy !== null) return;
    const next = this.queue.shift();
    if (next === undefined) {
      this.notifyIdle();
      return;
    }
    this.inFlight = next;
    this.writeSome(next);
  }

  private writeSome(p: Pending): void {
    if (this.sync) {
      // A file or device whose write would block (O_NONBLOCK set by someone): retry shortly.
      try {
        p.off += writeSync(this.fd, p.buf, p.off, p.len - p.off);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        if (e.code !== "EAGAIN") return this.close(e);
      }
      if (p.off < p.len) {
        setTimeout(() => this.writeSome(p), EAGAIN_RETRY_MS);
        return;
      }
      this.written(p);
      return;
    }
    const stream = this.openStream();
    // The stream holds the buffer until the callback: it is not reused before.
    stream.write(p.buf.subarray(p.off, p.len), (err) => {
      if (err) return this.close(err as NodeJS.ErrnoException);
      p.off = p.len;
      this.written(p);
    });
  }

  private openStream(): Socket {
    if (this.stream === null) {
      this.stream = new Socket({ fd: this.fd, readable: false, writable: true });
      // Errors also reach the write callback; without a listener they would be thrown.
      this.stream.on("error", () => {});
    }
    return this.stream;
  }

  private written(p: Pending): void {
    if (this.inFlight !== p || this.closedBy !== null) return;
    this.stats.bytesWritten += p.len;
    this.inFlight = null;
    this.stats.written += p.records;
    this.release(p.buf);
    if (this.queue.length === 0) this.queueCurrent();
    this.pump();
  }

  private release(buf: Buffer): void {
    if (buf.length === this.bufferBytes) this.free.push(buf);
    else this.allocated--; // an oversize record's own buffer
  }

  private close(err: NodeJS.ErrnoException): void {
    this.closedBy = err;
    this.stats.dropped += this.unwrittenRecords();
    this.inFlight = null;
    this.queue.length = 0;
    this.current = null;
    this.pos = 0;
    this.currentRecords = 0;
    this.notifyIdle();
    this.onClosed?.(err);
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
