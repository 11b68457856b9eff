/**
 * What the WebAssembly runtime (wasm.ts) and its worker threads (wasm-worker.ts) agree on: the control block's
 * layout and the work-stealing kernels a worker can be told to run.
 *
 * Control block (Int32 slots): [0] generation, [1] workers inside the call, [2] workers whose share threw,
 * [ARGS, ARGS + ARG_SLOTS) the call's arguments, then one mode slot per worker at MODES (0: idle, else 1 + the index of
 * its kernel in STEAL_NAMES). The workers get STEAL_NAMES, STEAL_KERNELS and the layout from the runtime that starts
 * them (workerData), so a worker bundle built before a kernel was added, or the slots were resized, reads the same
 * arguments and modes as the caller.
 *
 * A call is open while the generation is odd. The calling thread writes the arguments and modes, opens the call
 * (generation + 1), runs its own share, closes it (+ 1 again) and waits until no worker is inside. A worker that
 * sees an open call counts itself in, checks the call is still open, runs its share, and counts itself out. So a
 * worker that comes late (descheduled on a busy machine) finds the call closed and keeps out: the caller, which has
 * done the work itself by then, waits only for the workers that really joined in.
 */
export const GEN = 0;
export const ACTIVE = 1;
export const FAILED = 2;
export const ARGS = 4;
/** a call's arguments the control block holds: every kernel of STEAL_KERNELS takes at most this many (a test checks) */
export const ARG_SLOTS = 16;
export const MODES = ARGS + ARG_SLOTS;
/**
 * How long a thread spins on the control block before it sleeps on it. A training step runs serial work between
 * kernel calls (copies, small ops), often for longer than a millisecond; a worker that has gone to sleep by the
 * next call wakes late, and the caller does most of that call alone. Measured on the reference step: a spin of 20000
 * loads (0.1–0.4 ms) gave 1270 tok/s, 2 ms gave 1390. A worker sleeps once a call has not come for this long, so an
 * idle engine costs nothing.
 */
export const SPIN_MS = 2;

/** spin while slot `i` of `c` reads `value` (or, with `not`, until it does), for at most SPIN_MS */
export function spin(c: Int32Array, i: number, value: number, not = false): void {
  const until = performance.now() + SPIN_MS;
  for (let n = 1; (Atomics.load(c, i) === value) !== not; n++) if ((n & 1023) === 0 && performance.now() > until) return;
}

/**
 * The kernels threads share through a work-stealing counter, with how many of the call's arguments each takes;
 * `thread`: the worker's index is passed after them (for its own scratch).
 */
export const STEAL_KERNELS = {
  gemm_steal: { args: 13, thread: false },
  gemm_tn_steal: { args: 12, thread: false },
  gemm_bh_steal: { args: 14, thread: false },
  pack_steal: { args: 9, thread: false },
  gemv_steal: { args: 9, thread: false },
  gemv_short_steal: { args: 9, thread: false },
  qgemm_steal: { args: 1, thread: true },
  qgemv_steal: { args: 1, thread: true },
  qgemv_fast_steal: { args: 1, thread: true },
  read_steal: { args: 5, thread: true },
  attn_decode_steal: { args: 1, thread: true },
  heads_steal: { args: 3, thread: false },
  swiglu_steal: { args: 6, thread: false },
  swiglu_backward_steal: { args: 6, thread: false },
  cross_entropy_steal: { args: 8, thread: false },
  rmsnorm_steal: { args: 3, thread: false },
  rmsnorm_backward_steal: { args: 3, thread: false },
  rope_steal: { args: 3, thread: false },
  add_steal: { args: 6, thread: false },
} as const;
export type StealKernel = keyof typeof STEAL_KERNELS;
export const STEAL_NAMES = Object.keys(STEAL_KERNELS) as StealKernel[];
for (const name of STEAL_NAMES)
  if (STEAL_KERNELS[name].args > ARG_SLOTS)
    throw new Error(`internal: ${name} takes ${STEAL_KERNELS[name].args} arguments, the control block holds ${ARG_SLOTS}`);

/** call a steal kernel of an instance with the arguments from the control block */
export function callSteal(
  exports: WebAssembly.Exports,
  name: StealKernel,
  args: Int32Array,
  thread: number,
  kernels: Record<string, { args: number; thread: boolean }> = STEAL_KERNELS,
): void {
  const k = kernels[name];
  const fn = exports[name] as (...a: number[]) => void;
  const a = Array.from(args.subarray(0, k.args)); // the caller and the workers both pass ARG_SLOTS slots
  if (k.thread) a.push(thread);
  fn(...a);
}
