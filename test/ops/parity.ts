// What the op tests share: seeded inputs, the finite-difference check of a backward pass, and the parity check of
// a backend (the WebAssembly path, the GPU) against the plain reference ops on the same inputs.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { CpuBackend } from '../../src/engine/backend/cpu/cpu';
import type { Backend, Tensor } from '../../src/engine/core/backend';
import { WebGpuBackend } from '../../src/engine/backend/webgpu/webgpu';
import { DEFAULT_LIMITS } from '../../src/engine/backend/webgpu/plan';
import { Rng } from '../../src/engine/core/rng';
import { relaxedSimd } from '../../src/engine/ops/wasm-kernels';
import { COUNTER, WasmRuntime } from '../../src/engine/ops/wasm';
import { assertClose } from '../helpers';

export const rng = new Rng(7);
export const rand = (n: number, s = 1) => Float32Array.from({ length: n }, () => s * rng.normal());
export const T = (shape: number[], s = 1) => ({
  data: rand(
    shape.reduce((a, b) => a * b, 1),
    s,
  ),
  shape,
});
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

/**
 * Checks an analytic gradient dx of L(x) = Σ g·f(x) by central differences on every element (or a sample),
 * with a tolerance that grows with the gradient's size.
 */
export function fdCheck(
  name: string,
  x: Float32Array,
  f: (x: Float32Array) => ArrayLike<number>,
  g: ArrayLike<number>,
  dx: Float32Array,
  h = 1e-2,
  tol = 2e-2,
) {
  const n = x.length;
  const idx = n <= 64 ? [...Array(n).keys()] : Array.from({ length: 64 }, () => Math.floor(rng.next() * n));
  let worst = 0;
  for (const i of idx) {
    const keep = x[i];
    x[i] = keep + h;
    const lp = dot(g, f(x));
    x[i] = keep - h;
    const lm = dot(g, f(x));
    x[i] = keep;
    const num = (lp - lm) / (2 * h);
    const err = Math.abs(num - dx[i]) / (1e-3 + Math.abs(num) + Math.abs(dx[i]));
    worst = Math.max(worst, err);
    assert.ok(err < tol, `${name}: d/dx[${i}] numeric ${num} vs analytic ${dx[i]}`);
  }
  return worst;
}

/**
 * The two builds of the WebAssembly kernels (ops/wasm-kernels.ts): the plain SIMD one and the FMA one (relaxed
 * SIMD), where this JavaScript engine runs it. Each WebAssembly parity test runs on both.
 */
export function simdBuilds(): { build: string; fma: boolean }[] {
  if (relaxedSimd())
    return [
      { build: 'plain', fma: false },
      { build: 'FMA', fma: true },
    ];
  console.log('# the FMA kernels are skipped: this JavaScript engine has no WebAssembly relaxed SIMD');
  return [{ build: 'plain', fma: false }];
}

/** the reference ops, as a backend */
export const reference = new CpuBackend({ wasm: false });

let device: WebGpuBackend | null | undefined;
let plainDevice: WebGpuBackend | undefined;
let why = '';
/** the WebGPU backend (lavapipe here) with every feature the adapter offers, started on first use; null where there is no adapter */
export function gpu(): WebGpuBackend | null {
  if (device === undefined) {
    try {
      device = new WebGpuBackend();
    } catch (e) {
      device = null;
      why = `no WebGPU adapter: ${(e as Error).message}`;
      console.log(`# webgpu parity skipped: ${why}`);
    }
  }
  return device;
}
/**
 * Both kernel paths on the same adapter: `features` (shader-f16 and subgroups where the adapter has them, tiles from
 * its limits) and `plain` (neither feature, tiles from WebGPU's default limits). A parity test runs on each.
 */
export function gpus(): [string, WebGpuBackend][] {
  const g = gpu();
  if (!g) return [];
  plainDevice ??= new WebGpuBackend({ features: { f16: false, subgroups: false }, limits: DEFAULT_LIMITS });
  return [
    [`features (${g.info.features?.filter((f) => f === 'shader-f16' || f === 'subgroups').join(', ') || 'none offered'})`, g],
    ['plain', plainDevice],
  ];
}
/** the skip reason for a GPU test (false: run it) */
export function gpuSkip(): string | false {
  return gpu() ? false : why;
}
test.after(() => WebGpuBackend.disposeAll());

/** the same inputs on the reference and on `be`; `f` runs the op on one; outputs compared */
export function same(
  be: Backend,
  what: string,
  inputs: { data: Float32Array; shape: number[] }[],
  f: (be: Backend, t: Tensor[]) => Tensor | Tensor[],
  atol = 1e-5,
  rtol = 1e-4,
): void {
  const run = (b: Backend) => {
    const ts = inputs.map((i) => b.upload(i.data.slice(), i.shape, 'activations'));
    const out = f(b, ts);
    return (Array.isArray(out) ? out : [out]).map((o) => b.read(o).slice());
  };
  const want = run(reference);
  const got = run(be);
  want.forEach((w, i) => assertClose(got[i], w, atol, rtol, `${what} output ${i}`));
}

/**
 * Wait until every worker of `rt` has joined a call, so that a test of the split among threads runs on every thread:
 * a worker joins no call for its first 100 ms or so (V8 compiles the module for it), and a short test would run on
 * the caller alone.
 */
export function joinWorkers(rt: WasmRuntime): void {
  if (rt.threads < 2) return;
  rt.arenaReset();
  const buf = rt.alloc(1 << 12);
  const out = rt.alloc(4 * rt.threads);
  const slots = () => new Int32Array(rt.buffer(), out, 4 * rt.threads);
  for (const until = Date.now() + 30_000; ;) {
    slots().fill(-1);
    rt.dispatch('read_steal', rt.threads, [buf, 1 << 14, 64, COUNTER, out]);
    // each thread that joined stored its sum (of zeros) at out + 16·thread
    if (slots().every((v) => v !== -1)) return;
    assert.ok(Date.now() < until, 'the workers joined no call within 30 s');
  }
}

let splitting = 0; // joined runtimes not yet restored
let parallelMin = WasmRuntime.PARALLEL_MIN;

/**
 * A runtime of `threads` threads, its workers joined (joinWorkers), that splits products of any size (PARALLEL_MIN
 * 0) until the last such runtime is restored, in whatever order.
 */
export function joinedRuntime(threads: number, o: { fma?: boolean } = {}): { rt: WasmRuntime; restore(): void } {
  const rt = new WasmRuntime(threads, o);
  if (splitting++ === 0) parallelMin = WasmRuntime.PARALLEL_MIN;
  WasmRuntime.PARALLEL_MIN = 0;
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    rt.dispose();
    if (--splitting === 0) WasmRuntime.PARALLEL_MIN = parallelMin;
  };
  try {
    joinWorkers(rt);
  } catch (e) {
    restore();
    throw e;
  }
  return { rt, restore };
}

/** A CPU backend on `threads` threads, its workers joined (joinWorkers) */
export function joinedBackend(threads: number, o: { fma?: boolean } = {}): CpuBackend {
  const be = new CpuBackend({ threads, fma: o.fma });
  joinWorkers(be.runtime!);
  return be;
}
