/**
 * A worker thread of the WebAssembly runtime (wasm.ts): it instantiates the kernels on the shared memory, then
 * waits on the control block for calls (spinning briefly first), runs its share of the work-stealing kernel it is
 * given, and counts itself done. Bundled on its own (dist/wasm-worker.js) and started by the runtime.
 */
import { workerData } from 'node:worker_threads';
import { ARGS, ARG_SLOTS, DONE, GEN, MODES, SPIN, STEAL_NAMES, callSteal } from './wasm-control';

const { module, memory, ctl, index } = workerData as {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  ctl: SharedArrayBuffer;
  index: number;
};
const inst = new WebAssembly.Instance(module, { env: { memory } });
const c = new Int32Array(ctl);
let seen = 0;
for (;;) {
  // decoding calls kernels back to back: spin a little for the next call before sleeping until it comes
  for (let i = 0; i < SPIN && Atomics.load(c, GEN) === seen; i++);
  Atomics.wait(c, GEN, seen);
  seen = Atomics.load(c, GEN);
  const mode = c[MODES + index];
  if (mode > 0) callSteal(inst.exports, STEAL_NAMES[mode - 1], c.subarray(ARGS, ARGS + ARG_SLOTS), index);
  Atomics.add(c, DONE, 1);
  Atomics.notify(c, DONE);
}
