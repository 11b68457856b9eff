/**
 * A worker thread of the WebAssembly runtime (wasm.ts): it instantiates the kernels on the shared memory, then
 * waits on the control block for calls (spinning first) and joins each open call it is asked into, as
 * wasm-control.ts lays out. Bundled on its own (dist/wasm-worker.js) and started by the runtime, which hands it the
 * table of kernels. A share that throws is counted in the control block, and the caller raises it.
 */
import { workerData } from 'node:worker_threads';
import { ACTIVE, FAILED, GEN, StealKernel, callSteal, spin } from './wasm-control';

// the layout comes with the kernel table from the runtime, not from this bundle, which may be older
const { module, memory, ctl, index, names, kernels, layout } = workerData as {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  ctl: SharedArrayBuffer;
  index: number;
  names: StealKernel[];
  kernels: Record<string, { args: number; thread: boolean }>;
  layout: { ARGS: number; ARG_SLOTS: number; MODES: number };
};
const { ARGS, ARG_SLOTS, MODES } = layout;
const inst = new WebAssembly.Instance(module, { env: { memory } });
const c = new Int32Array(ctl);
let seen = Atomics.load(c, GEN);
for (;;) {
  // calls come back to back (decoding) or after some serial work (training): spin for the next one before sleeping
  spin(c, GEN, seen);
  Atomics.wait(c, GEN, seen);
  const g = (seen = Atomics.load(c, GEN));
  const mode = c[MODES + index];
  if ((g & 1) === 0 || mode === 0) continue; // closed, or not asked
  Atomics.add(c, ACTIVE, 1);
  try {
    if (Atomics.load(c, GEN) === g) callSteal(inst.exports, names[mode - 1], c.subarray(ARGS, ARGS + ARG_SLOTS), index, kernels);
  } catch (e) {
    Atomics.add(c, FAILED, 1);
    console.error(`lorakit: a WebAssembly worker thread failed in ${names[mode - 1]}: ${(e as Error).message}`);
  } finally {
    Atomics.sub(c, ACTIVE, 1);
    Atomics.notify(c, ACTIVE);
  }
}
