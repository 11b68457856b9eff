// A LoRA linear layer: the CPU's fused version (ops/matmul/lora.ts) against the composed sequence of plain ops
// (core/lora-linear.ts) on the same kernels (bit for bit) and on the reference backend, its backward pass against
// finite differences, its copies in and out of the WebAssembly memory, and the WebGPU backend's composed version.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { CpuBackend } from '../../src/engine/backend/cpu/cpu';
import type { Backend, LoraPair, Tensor } from '../../src/engine/core/backend';
import { linearLoraBackwardComposed, linearLoraComposed } from '../../src/engine/core/lora-linear';
import { f32ToBf16, f32ToF16 } from '../../src/engine/core/dtype';
import { gemmTraffic } from '../../src/engine/ops/matmul/gemm';
import { loraArenaFloats, loraFused } from '../../src/engine/ops/matmul/lora';
import { WasmRuntime } from '../../src/engine/ops/wasm';
import { cpuWorkspace } from '../../src/engine/backend/cpu/workspace';
import { assertClose } from '../helpers';
import { fdCheck, gpuSkip, gpus, rand, reference } from './parity';

type WType = 'F32' | 'BF16' | 'F16';
interface Case {
  N: number;
  inp: number;
  out: number;
  r: number;
  p: number; // dropout
  w: WType;
  bias: boolean;
  into: boolean;
}

/** inputs of a case, as host arrays: the same on every backend */
function inputs(c: Case) {
  const w = rand(c.out * c.inp, 0.3);
  return {
    x: rand(c.N * c.inp),
    w: c.w === 'F32' ? w : c.w === 'BF16' ? f32ToBf16(w) : f32ToF16(w),
    b: rand(c.out),
    A: rand(c.r * c.inp, 0.2),
    B: rand(c.out * c.r, 0.2),
    dA: rand(c.r * c.inp, 0.1),
    dB: rand(c.out * c.r, 0.1),
    dy: rand(c.N * c.out),
    into: rand(c.N * c.inp),
  };
}
type Inputs = ReturnType<typeof inputs>;

/** forward and backward of one case on `be`, by `fwd`/`bwd` (the backend's own, or the composed sequence) */
function run(be: Backend, c: Case, d: Inputs, composed = false) {
  const up = (x: Float32Array, shape: number[], tag: 'activations' | 'lora' = 'activations') => be.upload(x.slice(), shape, tag);
  const x = up(d.x, [c.N, c.inp]);
  const w = be.uploadWeight({ dtype: c.w, shape: [c.out, c.inp], data: d.w.slice() }, [c.out, c.inp]);
  const b = c.bias ? up(d.b, [c.out]) : undefined;
  const lora: LoraPair = {
    A: up(d.A, [c.r, c.inp], 'lora'),
    B: up(d.B, [c.out, c.r], 'lora'),
    scale: [1, 1.5, 16 / Math.sqrt(7)][c.N % 3], // 1, and scales exact and not in f32 (rsLoRA)
    dA: up(d.dA, [c.r, c.inp], 'lora'),
    dB: up(d.dB, [c.out, c.r], 'lora'),
  };
  const drop = { p: c.p, seed: 12345 };
  const f = composed ? linearLoraComposed(be, x, w, b, lora, drop, true) : be.linearLora(x, w, b, lora, drop, true);
  const saved = f.saved!;
  const dy = up(d.dy, [c.N, c.out]);
  const into = c.into ? up(d.into, [c.N, c.inp]) : undefined;
  const dx = composed ? linearLoraBackwardComposed(be, dy, w, lora, saved, into) : be.linearLoraBackward(dy, w, lora, saved, into);
  if (into) assert.equal(dx, into, 'the gradient is added into `into`');
  const read = (t: Tensor) => be.read(t).slice();
  const out = { y: read(f.y), h: read(saved.h), dx: read(dx), dA: read(lora.dA!), dB: read(lora.dB!) };
  be.free(x, w, b, lora.A, lora.B, lora.dA, lora.dB, f.y, saved.h, saved.xd === x ? null : saved.xd, saved.mask, dy, dx);
  return out;
}

const CASES: Case[] = [];
for (const [N, inp, out, r] of [
  [37, 45, 70, 5],
  [9, 64, 24, 16],
  [130, 33, 17, 3],
  [68, 100, 52, 12],
])
  for (const p of [0, 0.25])
    for (const w of ['F32', 'BF16'] as WType[]) CASES.push({ N, inp, out, r, p, w, bias: N % 2 === 0, into: (N + r) % 2 === 1 });
CASES.push({ N: 21, inp: 40, out: 30, r: 4, p: 0.1, w: 'F16', bias: true, into: true });
CASES.push({ N: 21, inp: 40, out: 30, r: 8, p: 0, w: 'F16', bias: false, into: false });
for (const c of [...CASES.slice(0, 2)]) CASES.push({ ...c, into: !c.into, bias: !c.bias });

const name = (c: Case) => `N=${c.N} in=${c.inp} out=${c.out} r=${c.r} p=${c.p} ${c.w}${c.bias ? ' bias' : ''}${c.into ? ' into' : ''}`;

test('the fused LoRA linear gives the composed sequence bit for bit (y, h, dx, dA, dB), and the reference ops to rounding', () => {
  const be = new CpuBackend({ threads: 2 });
  try {
    for (const c of CASES) {
      const s = { ...c, wKind: c.w === 'F32' ? 0 : 1, dropout: c.p > 0 };
      assert.ok(loraFused(s, false) && loraFused(s, true), `${name(c)} runs fused`);
      const d = inputs(c);
      const fused = run(be, c, d);
      const composed = run(be, c, d, true);
      const ref = run(reference, c, d);
      for (const k of ['y', 'h', 'dx', 'dA', 'dB'] as const) {
        assert.deepEqual(fused[k], composed[k], `${name(c)}: ${k} as the composed sequence`);
        assertClose(fused[k], ref[k], 1e-4 * Math.sqrt(Math.max(c.N, c.inp, c.out)), 1e-4, `${name(c)}: ${k} as the reference`);
      }
    }
  } finally {
    be.dispose();
  }
});

test('with W and the LoRA matrices in host memory (not resident) the fused pass copies them in, with the same result', () => {
  const keep = WasmRuntime.HEAP_LIMIT;
  const be = new CpuBackend({ threads: 2 });
  const host = new CpuBackend({ threads: 2 });
  try {
    const c: Case = { N: 29, inp: 36, out: 44, r: 6, p: 0.2, w: 'BF16', bias: true, into: true };
    const d = inputs(c);
    const want = run(be, c, d);
    WasmRuntime.HEAP_LIMIT = 0; // nothing fits the heap: every tensor stays in host memory
    const got = run(host, c, d);
    for (const k of ['y', 'h', 'dx', 'dA', 'dB'] as const) assert.deepEqual(got[k], want[k], k);
  } finally {
    WasmRuntime.HEAP_LIMIT = keep;
    be.dispose();
    host.dispose();
  }
});

test('the fused pass copies each operand in once and each result out once', () => {
  const be = new CpuBackend({ threads: 2 });
  try {
    const c: Case = { N: 40, inp: 24, out: 32, r: 8, p: 0, w: 'F32', bias: false, into: true };
    const d = inputs(c);
    const count = (composed: boolean) => {
      const [i0, o0] = [gemmTraffic.in, gemmTraffic.out];
      run(be, c, d, composed);
      return { in: (gemmTraffic.in - i0) / 4, out: (gemmTraffic.out - o0) / 4 };
    };
    const { N, inp, out, r } = c;
    // forward: x in; y and h out. backward: dy, dx (into), h, dB, x (as xd), dA in; dB, dA, dx out
    assert.deepEqual(count(false), {
      in: N * inp + (N * out + N * inp + N * r + out * r + N * inp + r * inp),
      out: N * out + N * r + (out * r + r * inp + N * inp),
    });
    const composed = count(true);
    assert.ok(composed.in > 2 * N * inp + 3 * N * out, `the composed sequence copies more in: ${composed.in}`);
  } finally {
    be.dispose();
  }
});

test('the fused backward pass matches finite differences of the fused forward pass (dx, dA, dB), with dropout', () => {
  const be = new CpuBackend({ threads: 2 });
  try {
    for (const w of ['F32', 'BF16'] as WType[]) {
      const c: Case = { N: 11, inp: 13, out: 10, r: 3, p: 0.3, w, bias: true, into: false };
      const d = inputs(c);
      const g = rand(c.N * c.out); // L = Σ g·y
      const wt = be.uploadWeight({ dtype: w, shape: [c.out, c.inp], data: d.w.slice() }, [c.out, c.inp]);
      const b = be.upload(d.b.slice(), [c.out], 'activations');
      const lora: LoraPair = {
        A: be.upload(d.A.slice(), [c.r, c.inp], 'lora'),
        B: be.upload(d.B.slice(), [c.out, c.r], 'lora'),
        scale: 2,
        dA: be.zeros([c.r, c.inp], 'lora'),
        dB: be.zeros([c.out, c.r], 'lora'),
      };
      const forward = (x: Float32Array, A: Float32Array = d.A, B: Float32Array = d.B) => {
        be.write(lora.A, A);
        be.write(lora.B, B);
        const xt = be.upload(x.slice(), [c.N, c.inp], 'activations');
        const { y } = be.linearLora(xt, wt, b, lora, { p: c.p, seed: 99 }, false);
        const out = be.read(y).slice();
        be.free(xt, y);
        return out;
      };
      const x = be.upload(d.x.slice(), [c.N, c.inp], 'activations');
      const f = be.linearLora(x, wt, b, lora, { p: c.p, seed: 99 }, true);
      assert.ok(f.saved!.mask, 'dropout made a mask');
      const dy = be.upload(g, [c.N, c.out], 'activations');
      const dx = new Float32Array(be.read(be.linearLoraBackward(dy, wt, lora, f.saved!)));
      const [dA, dB] = [new Float32Array(be.read(lora.dA!)), new Float32Array(be.read(lora.dB!))];
      fdCheck(`${w} dx`, d.x.slice(), (v) => forward(v), g, dx);
      fdCheck(`${w} dA`, d.A.slice(), (v) => forward(d.x, v), g, dA);
      fdCheck(`${w} dB`, d.B.slice(), (v) => forward(d.x, d.A, v), g, dB);
    }
  } finally {
    be.dispose();
  }
});

test("the workspace hook sizes a fused pass's arena exactly (what the estimate counts), resident or not", () => {
  const keep = WasmRuntime.HEAP_LIMIT;
  try {
    for (const c of [
      { N: 300, inp: 200, out: 500, r: 12, p: 0, w: 'F32', bias: false, into: false },
      { N: 300, inp: 500, out: 200, r: 7, p: 0.1, w: 'BF16', bias: true, into: true },
      { N: 900, inp: 96, out: 96, r: 16, p: 0.1, w: 'F32', bias: false, into: true },
    ] as Case[])
      for (const heap of [keep, 0]) {
        WasmRuntime.HEAP_LIMIT = heap;
        const be = new CpuBackend({ threads: 2 }); // a fresh WebAssembly memory: its arena is this pass's
        const call = { op: 'loraLinear', N: c.N, inp: c.inp, out: c.out, r: c.r, halfW: c.w !== 'F32', dropout: c.p > 0 } as const;
        const d = inputs(c);
        const x = be.upload(d.x, [c.N, c.inp], 'activations');
        const w = be.uploadWeight({ dtype: c.w, shape: [c.out, c.inp], data: d.w }, [c.out, c.inp]);
        const A = be.upload(d.A, [c.r, c.inp], 'lora'),
          B = be.upload(d.B, [c.out, c.r], 'lora');
        const lora: LoraPair = { A, B, scale: 2, dA: be.zeros([c.r, c.inp], 'lora'), dB: be.zeros([c.out, c.r], 'lora') };
        const f = be.linearLora(x, w, undefined, lora, { p: c.p, seed: 1 }, true);
        const sized = cpuWorkspace({ forward: [call], backward: [call] });
        assert.equal(be.mem.peak.workspace, sized.forward, `${name(c)}, heap ${heap}: forward`);
        be.linearLoraBackward(be.upload(d.dy, [c.N, c.out], 'activations'), w, lora, f.saved!);
        assert.equal(be.mem.peak.workspace, sized.all, `${name(c)}, heap ${heap}: backward`);
        assert.ok(sized.all > 1 << 20, `${name(c)}: ${sized.all} bytes, past the arena's least size`);
        be.dispose();
      }
  } finally {
    WasmRuntime.HEAP_LIMIT = keep;
  }
});

test('a few rows (decoding) and passes too large for the memory compose the plain ops', () => {
  const s = { N: 4, inp: 64, out: 64, r: 8, wKind: 0, dropout: false };
  assert.equal(loraFused(s, false), false, 'four rows take the matrix-vector kernels');
  assert.equal(loraFused({ ...s, N: 5 }, false), true);
  const keep = WasmRuntime.MAX_BYTES;
  const be = new CpuBackend({ threads: 2 });
  try {
    // a backward pass past MAX_BYTES whose forward pass fits: the forward pass fused, the backward pass composed
    const c: Case = { N: 64, inp: 16, out: 24, r: 4, p: 0.1, w: 'F32', bias: false, into: true };
    const t = { ...c, wKind: 0, dropout: true };
    const d = inputs(c);
    const want = run(be, c, d);
    WasmRuntime.MAX_BYTES = loraArenaFloats(t, false) * 4 + 32;
    assert.equal(loraFused(t, false), true, 'its forward pass fits');
    assert.equal(loraFused(t, true), false, 'its backward pass does not');
    const got = run(be, c, d);
    for (const k of ['y', 'h', 'dx', 'dA', 'dB'] as const) assert.deepEqual(got[k], want[k], k);
  } finally {
    WasmRuntime.MAX_BYTES = keep;
    be.dispose();
  }
});

test('operands whose shapes do not agree are refused, on both CPU paths', () => {
  for (const be of [new CpuBackend({ threads: 2 }), reference]) {
    const x = be.zeros([8, 6], 'activations');
    const w = be.zeros([5, 6], 'weights');
    const lora: LoraPair = { A: be.zeros([2, 6], 'lora'), B: be.zeros([5, 3], 'lora'), scale: 1 };
    assert.throws(() => be.linearLora(x, w, undefined, lora, { p: 0, seed: 0 }, false), /do not agree/);
    lora.B = be.zeros([5, 2], 'lora');
    const { saved } = be.linearLora(x, w, undefined, lora, { p: 0, seed: 0 }, true);
    assert.throws(() => be.linearLoraBackward(x, w, lora, saved!), /do not agree/, 'dy must have out columns');
    const dy = be.zeros([8, 5], 'activations');
    assert.throws(() => be.linearLoraBackward(dy, w, lora, saved!, be.zeros([8, 5], 'activations')), /into \[8,5\]/);
  }
});

test('WebGPU: the composed LoRA linear matches the reference', { skip: gpuSkip() }, () => {
  for (const [label, g] of gpus())
    for (const c of [CASES[0], CASES[3]]) {
      const d = inputs(c);
      const got = run(g, c, d);
      const want = run(reference, c, d);
      for (const k of ['y', 'h', 'dx', 'dA', 'dB'] as const) assertClose(got[k], want[k], 2e-4, 1e-3, `${label} ${name(c)}: ${k}`);
    }
});
