/**
 * Zeroed Float32Arrays for the CPU backend's tensors, reused. A large typed array fresh from the allocator costs a
 * page fault per 4 KiB page on first touch: filling a new 3 MiB array took 20–30 times as long as refilling one
 * already in use (measured here), and a training step makes and drops hundreds of them. So the backend gives the
 * arrays of tensors it frees back here (`recycle`), and ops take their outputs from here (`f32`): a reused array is
 * cleared with one `fill(0)`, so it reads exactly like a new one.
 *
 * Only arrays made here come back, each at most once, and only while the pool holds less than its cap; small arrays
 * are left to the allocator.
 */
const MIN_FLOATS = 1 << 14;
const CAP_BYTES = 1 << 30;
const free = new Map<number, Float32Array[]>();
/** arrays this pool made (only they may come back) */
const ours = new WeakSet<Float32Array>();
/** arrays waiting in `free` (a second recycle of one is ignored) */
const waiting = new WeakSet<Float32Array>();
let pooledBytes = 0;

/** a zeroed array of n floats */
export function f32(n: number): Float32Array {
  if (n < MIN_FLOATS) return new Float32Array(n);
  const a = free.get(n)?.pop();
  if (a) {
    waiting.delete(a);
    pooledBytes -= a.byteLength;
    return a.fill(0);
  }
  const b = new Float32Array(n);
  ours.add(b);
  return b;
}

/**
 * An array of n floats for an output whose every element the caller writes: a reused array is not cleared first
 * (its old values are never read). Saves one pass over the memory per op.
 */
export function f32Out(n: number): Float32Array {
  if (n < MIN_FLOATS) return new Float32Array(n);
  const a = free.get(n)?.pop();
  if (!a) return f32(n);
  waiting.delete(a);
  pooledBytes -= a.byteLength;
  return a;
}

/** give back an array that `f32` made and nothing reads any more (anything else is ignored) */
export function recycle(a: Float32Array): void {
  if (!ours.has(a) || waiting.has(a) || pooledBytes + a.byteLength > CAP_BYTES) return;
  let list = free.get(a.length);
  if (!list) free.set(a.length, (list = []));
  list.push(a);
  waiting.add(a);
  pooledBytes += a.byteLength;
}

/** whether `a` came from the pool (its memory may be handed out again once its tensor is freed) */
export function pooled(a: Float32Array): boolean {
  return ours.has(a);
}

/** empty the pool (a backend's dispose), leaving its arrays to the garbage collector */
export function drainPool(): void {
  free.clear();
  pooledBytes = 0;
}
