/**
 * Reused backing buffers ("slabs") for encoded record batches. A batch is built
 * in a slab, stays there while it is queued and in flight, and the slab comes
 * back here once the batch is acknowledged, spooled or dropped. A fresh buffer
 * per batch lives long enough (queued for seconds) to be promoted to V8's old
 * generation, so it is freed only by a full GC, which V8 starts only once
 * external memory grew by ~64 MiB: under load the agent held that much dead
 * batch memory on top of the live queue. Reused slabs are never garbage.
 */

export class BatchBufferPool {
  private readonly free: Buffer[] = [];
  private allocated = 0;

  /**
   * @param slabBytes size of every pooled slab (a batch's byte limit)
   * @param maxFree slabs kept for reuse at most; a slab released beyond that is left to the GC
   */
  constructor(
    readonly slabBytes: number,
    private readonly maxFree: number,
  ) {
    if (!Number.isInteger(slabBytes) || slabBytes < 1) throw new RangeError("slabBytes must be a positive integer");
  }

  /** A slab of slabBytes (contents undefined): a free one if any, else a new one. */
  acquire(): Buffer {
    const slab = this.free.pop();
    if (slab) return slab;
    this.allocated++;
    // Not from Node's shared 8 KiB pool: a slab is never a view into memory it does not own.
    return Buffer.allocUnsafeSlow(this.slabBytes);
  }

  /** Gives a slab back: it must not be read or written by its previous owner any more. */
  release(slab: Buffer): void {
    if (slab.length !== this.slabBytes || slab.byteOffset !== 0 || slab.buffer.byteLength !== this.slabBytes) throw new RangeError("not a slab of this pool");
    // Two owners of one slab would overwrite each other's batch: fail loudly instead.
    if (this.free.includes(slab)) throw new Error("slab released twice");
    if (this.free.length < this.maxFree) this.free.push(slab);
  }

  /** Forgets the free slabs (e.g. once the agent is idle), so their memory can go. */
  trim(): void {
    this.free.length = 0;
  }

  /** Free slabs kept for reuse. */
  get freeCount(): number {
    return this.free.length;
  }

  /** Slabs allocated since the pool was created (reuse keeps this flat). */
  get allocatedCount(): number {
    return this.allocated;
  }
}
