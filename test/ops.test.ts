// Finite-difference checks of every backward pass of the reference ops, and the CPU backend's fast paths
// (WebAssembly gemm inside attention and linear) against the reference, on awkward shapes.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as rmsnormRef from '../src/engine/ops/rmsnorm/reference';
import * as ropeRef from '../src/engine/ops/rope/reference';
import * as swigluRef from '../src/engine/ops/swiglu/reference';
import * as ceRef from '../src/engine/ops/cross_entropy/reference';
import * as attnRef from '../src/engine/ops/attention/reference';
import type { AttnShape } from '../src/engine/core/backend';
import { CpuBackend } from '../src/engine/backend/cpu/cpu';
import { Rng } from '../src/engine/core/rng';
import { assertClose } from './helpers';

const ref = { ...rmsnormRef, ...ropeRef, ...swigluRef, ...ceRef, ...attnRef };
const rng = new Rng(7);
const rand = (n: number, s = 1) => Float32Array.from({ length: n }, () => s * rng.normal());
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

/**
 * Checks an analytic gradient dx of L(x) = Σ g·f(x) by central differences on every element (or a sample),
 * with a tolerance that grows with the gradient's size.
 */
function fdCheck(name: string, x: Float32Array, f: (x: Float32Array) => ArrayLike<number>, g: ArrayLike<number>, dx: Float32Array, h = 1e-2, tol = 2e-2) {
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

test('rmsnorm backward matches finite differences', () => {
  const N = 3, C = 7;
  const x = rand(N * C), w = rand(C), g = rand(N * C);
  const { rstd } = ref.rmsnormForward(x, w, N, C, 1e-6);
  const dx = ref.rmsnormBackward(g, x, w, rstd, N, C);
  fdCheck('rmsnorm', x, (xx) => ref.rmsnormForward(xx, w, N, C, 1e-6).y, g, dx);
});

test('rope backward (the inverse rotation) matches finite differences', () => {
  const N = 5, H = 2, D = 6, P = 8;
  const x = rand(N * H * D), g = rand(N * H * D);
  const pos = Int32Array.from([0, 1, 4, 2, 7]);
  const cos = new Float32Array(P * 3), sin = new Float32Array(P * 3);
  for (let p = 0; p < P; p++) for (let i = 0; i < 3; i++) [cos[p * 3 + i], sin[p * 3 + i]] = [Math.cos(p * (i + 1) * 0.3), Math.sin(p * (i + 1) * 0.3)];
  const dx = ref.ropeForward(g, N, H, D, pos, cos, sin, true);
  fdCheck('rope', x, (xx) => ref.ropeForward(xx, N, H, D, pos, cos, sin), g, dx);
});

test('swiglu backward matches finite differences', () => {
  const n = 40;
  const gate = rand(n, 2), up = rand(n), g = rand(n);
  const { dgate, dup } = ref.swigluBackward(g, gate, up);
  fdCheck('swiglu/gate', gate, (x) => ref.swigluForward(x, up), g, dgate);
  fdCheck('swiglu/up', up, (x) => ref.swigluForward(gate, x), g, dup);
});

test('cross-entropy gradient matches finite differences, ignoring masked targets', () => {
  const N = 4, V = 9;
  const logits = rand(N * V, 3);
  const targets = Int32Array.from([2, -1, 8, 0]);
  const { dlogits, count } = ref.crossEntropy(logits, targets, V, 1);
  assert.equal(count, 3);
  const one = [1];
  fdCheck('cross-entropy', logits, (x) => [ref.crossEntropy(x, targets, V, 0).loss], one, dlogits, 1e-2);
  for (let j = 0; j < V; j++) assert.equal(dlogits[V + j], 0);
});

test('cross-entropy is stable for ±30 logits', () => {
  const V = 5;
  const logits = Float32Array.of(30, -30, 29, 0, -29);
  const { loss } = ref.crossEntropy(logits, Int32Array.of(2), V, 1);
  assert.ok(Math.abs(loss - (Math.log(Math.exp(0) + Math.exp(-1) + Math.exp(-59) + Math.exp(-30) + Math.exp(-58)) + 1)) < 1e-6);
});

for (const shape of [
  { B: 1, Tq: 1, Tk: 1, H: 1, KV: 1, D: 4 },
  { B: 2, Tq: 5, Tk: 5, H: 4, KV: 2, D: 6 },
  { B: 1, Tq: 3, Tk: 7, H: 2, KV: 1, D: 8 }, // queries after a cache of 4
  { B: 1, Tq: 6, Tk: 6, H: 2, KV: 2, D: 4, window: 3 },
]) {
  const label = JSON.stringify(shape);
  test(`attention backward matches finite differences ${label}`, () => {
    const { B, Tq, Tk, H, KV, D } = shape;
    const q = rand(B * Tq * H * D), k = rand(B * Tk * KV * D), v = rand(B * Tk * KV * D), g = rand(B * Tq * H * D);
    const { probs } = ref.attentionForward(q, k, v, shape);
    const { dq, dk, dv } = ref.attentionBackward(g, q, k, v, probs, shape);
    fdCheck('attention/q', q, (x) => ref.attentionForward(x, k, v, shape).out, g, dq);
    fdCheck('attention/k', k, (x) => ref.attentionForward(q, x, v, shape).out, g, dk);
    fdCheck('attention/v', v, (x) => ref.attentionForward(q, k, x, shape).out, g, dv);
  });

  test(`cpu backend attention (WebAssembly path) matches the reference ${label}`, () => attentionParity(shape));
}

/** the CPU backend's attention, forward and backward, against the reference on random inputs */
function attentionParity(shape: AttnShape): void {
  const be = new CpuBackend({ threads: 2 });
  const { B, Tq, Tk, H, KV, D } = shape;
  const q = rand(B * Tq * H * D), k = rand(B * Tk * KV * D), v = rand(B * Tk * KV * D), g = rand(B * Tq * H * D);
  const want = ref.attentionForward(q, k, v, shape);
  const wantB = ref.attentionBackward(g, q, k, v, want.probs, shape);
  const tq = be.upload(q, [B * Tq, H * D], 'activations');
  const tk = be.upload(k, [B * Tk, KV * D], 'activations');
  const tv = be.upload(v, [B * Tk, KV * D], 'activations');
  const got = be.attention(tq, tk, tv, shape);
  assertClose(be.read(got.out), want.out, 1e-5, 1e-4, 'out');
  const gb = be.attentionBackward(be.upload(g, [B * Tq, H * D], 'activations'), tq, tk, tv, got.saved, shape);
  assertClose(be.read(gb.dq), wantB.dq, 1e-5, 1e-4, 'dq');
  assertClose(be.read(gb.dk), wantB.dk, 1e-5, 1e-4, 'dk');
  assertClose(be.read(gb.dv), wantB.dv, 1e-5, 1e-4, 'dv');
  be.dispose();
}

test('the memory tracker counts live and peak bytes by tag', () => {
  const be = new CpuBackend({ wasm: false });
  const a = be.zeros([10, 10], 'activations');
  const w = be.zeros([4], 'weights');
  assert.equal(be.mem.live.activations, 400);
  be.free(a);
  be.free(a); // a second free is harmless
  assert.equal(be.mem.live.activations, 0);
  assert.equal(be.mem.peak.activations, 400);
  assert.equal(be.mem.peak.total, 416);
  be.free(w);
});

test('WebAssembly cross-entropy and SwiGLU match the reference (odd sizes, ±30 logits, masked rows)', () => {
  const be = new CpuBackend({ threads: 2 });
  const N = 7, V = 1003;
  const logits = rand(N * V, 10);
  logits[5] = 30;
  logits[V + 7] = -30;
  const targets = Int32Array.from([5, -1, 1002, 0, 17, -1, 500]);
  const want = ref.crossEntropy(logits, targets, V, 0.25);
  const got = be.crossEntropy(be.upload(logits.slice(), [N, V], 'activations'), targets, 0.25);
  assert.equal(got.count, want.count);
  assert.ok(Math.abs(be.read(got.loss)[0] - want.loss) < 1e-5 * Math.abs(want.loss), `${be.read(got.loss)[0]} vs ${want.loss}`);
  assertClose(be.read(got.dlogits), want.dlogits, 1e-7, 1e-5, 'dlogits');
  const n = (1 << 22) + 4099; // past one kernel slice (ELEMENTWISE_CHUNK), with an odd tail
  const gate = rand(n, 4), up = rand(n), dh = rand(n);
  const h = be.swiglu(be.upload(gate, [n], 'activations'), be.upload(up, [n], 'activations'));
  assertClose(be.read(h), ref.swigluForward(gate, up), 1e-6, 1e-5, 'swiglu');
  const bw = be.swigluBackward(be.upload(dh, [n], 'activations'), be.upload(gate, [n], 'activations'), be.upload(up, [n], 'activations'));
  const wb = ref.swigluBackward(dh, gate, up);
  assertClose(be.read(bw.dgate), wb.dgate, 1e-6, 1e-5, 'dgate');
  assertClose(be.read(bw.dup), wb.dup, 1e-6, 1e-5, 'dup');
  be.dispose();
});

test('attention processed one head at a time (a tiny scratch budget) gives the same results', async () => {
  const { setAttnChunkBytes, ATTN_CHUNK_BYTES } = await import('../src/engine/ops/attention/attention');
  const keep = ATTN_CHUNK_BYTES;
  setAttnChunkBytes(1024);
  try {
    attentionParity({ B: 2, Tq: 9, Tk: 9, H: 4, KV: 2, D: 8 });
  } finally {
    setAttnChunkBytes(keep);
  }
});
