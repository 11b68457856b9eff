// The WebAssembly runtime's threads: a share that throws on a worker fails the call instead of hanging it or leaving
// it half done, one that throws on the calling thread leaves the control block consistent, and the runtime goes on.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { COUNTER, WasmRuntime } from '../../src/engine/ops/wasm';
import { ARG_SLOTS, STEAL_KERNELS } from '../../src/engine/ops/wasm-control';

/** read_steal over 8 MiB, each thread's sum stored at out + 16·thread */
const read = (rt: WasmRuntime, out: number) => rt.dispatch('read_steal', 2, [64, 8 << 20, 64 << 10, COUNTER, out]);

test("a worker's share that traps fails the call with a clear error, and later calls work", () => {
  const rt = new WasmRuntime(2);
  try {
    rt.put(new Float32Array(4 << 20)); // 16 MiB of arena
    const end = rt.buffer().byteLength;
    read(rt, 1 << 10); // both sums in bounds
    // thread 0's sum fits just below the end, the worker's (thread 1) lies past it: only a worker that joins traps
    // (a worker joins few calls in its first 100 ms or so, while V8 compiles the module for it)
    let failed = 0;
    for (const until = Date.now() + 20_000; Date.now() < until && !failed;)
      try {
        read(rt, end - 16);
      } catch (e) {
        assert.match((e as Error).message, /WebAssembly worker thread failed in read_steal/);
        failed++;
      }
    assert.equal(failed, 1, 'the worker joined a call and its trap reached the caller');
    read(rt, 1 << 10);
    // this thread's share traps: the call is closed all the same, and the next one runs on both threads
    assert.throws(() => read(rt, end), /out of bounds/);
    read(rt, 1 << 10);
  } finally {
    rt.dispose();
  }
});

test("every kernel's arguments fit the control block, and a call with another count is refused", () => {
  // every thread reads a kernel's own count of arguments out of ARG_SLOTS slots (gemm_bh_steal once took 14 of 13:
  // a worker split panels by columns while the caller split them by rows)
  for (const [name, k] of Object.entries(STEAL_KERNELS)) assert.ok(k.args <= ARG_SLOTS, `${name} takes ${k.args}`);
  const rt = new WasmRuntime(2);
  try {
    for (const n of [12, ARG_SLOTS + 1])
      assert.throws(
        () => rt.dispatch('gemm_steal', 2, new Array(n).fill(0)),
        new RegExp(`gemm_steal takes 13 arguments, the call passed ${n}`),
      );
  } finally {
    rt.dispose();
  }
});
