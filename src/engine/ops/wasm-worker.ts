/**
 * A worker thread of the WebAssembly runtime (wasm.ts): it instantiates the kernels on the shared memory, then
 * waits on the control block for calls (spinning briefly first) and joins each open call it is asked into, as
 * wasm-control.ts lays out. Bundled on its own (dist/wasm-worker.js) and started by the runtime.
 */
import { workerData } from 'node:worker_threads';
import { ACTIVE, ARGS, ARG_SLOTS, GEN, MODES, STEAL_NAMES, callSteal, spin } from './wasm-control';

const { module, memory, ctl, index } = workerData as {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  ctl: SharedArrayBuffer;
  index: number;
};
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
  if (Atomics.load(c, GEN) === g) callSteal(inst.exports, STEAL_NAMES[mode - 1], c.subarray(ARGS, ARGS + ARG_SLOTS), index);
  Atomics.sub(c, ACTIVE, 1);
  Atomics.notify(c, ACTIVE);
}
