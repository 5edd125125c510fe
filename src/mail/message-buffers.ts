/**
 * The bytes of composed messages, reused: a worker composes thousands of 30 KB messages a second,
 * each its own allocation outside the JS heap, which V8 frees only at a full collection once 64 MB of
 * them have piled up (the campaign bench's worker carried 20 to 70 MB of sent messages). A buffer
 * comes back only when the transport says it let go of it (an SMTP send the server accepted); any
 * other one is left to the garbage collector, so a buffer is never reused while something reads it.
 */
const GRANULE = 16 * 1024;

export class MessageBuffers {
  readonly #free: ArrayBuffer[] = [];
  /** Handed out and not given back: a buffer given back twice, or never handed out, is ignored. */
  readonly #out = new WeakSet<ArrayBuffer>();

  constructor(readonly keep = 64) {}

  /** A buffer of exactly `size` bytes, its contents undefined (bound: can be passed as it is). */
  readonly take = (size: number): Buffer => {
    let ab = this.#free.pop();
    if (ab === undefined || ab.byteLength < size) ab = new ArrayBuffer(Math.ceil(Math.max(size, 1) / GRANULE) * GRANULE);
    this.#out.add(ab);
    return Buffer.from(ab, 0, size);
  };

  /** `buf` (from take) is read by nobody any more. */
  give(buf: Buffer): void {
    const ab = buf.buffer as ArrayBuffer;
    if (!this.#out.delete(ab)) return;
    if (this.#free.length < this.keep) this.#free.push(ab);
  }

  get idle(): number {
    return this.#free.length;
  }
}
