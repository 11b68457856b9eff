// Causal grouped-query attention: the reference's backward against finite differences, the WebAssembly path (whole,
// one head at a time, and the decode kernel; plain and FMA builds) and the WGSL kernels (tiled and per-row) against the reference.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as ref from '../../src/engine/ops/attention/reference';
import type { AttnShape } from '../../src/engine/core/backend';
import { CpuBackend } from '../../src/engine/backend/cpu/cpu';
import { assertClose } from '../helpers';
import { T, fdCheck, gpuSkip, gpus, joinedRuntime, rand, same, simdBuilds } from './parity';

for (const shape of [
  { B: 1, Tq: 1, Tk: 1, H: 1, KV: 1, D: 4 },
  { B: 2, Tq: 5, Tk: 5, H: 4, KV: 2, D: 6 },
  { B: 1, Tq: 3, Tk: 7, H: 2, KV: 1, D: 8 }, // queries after a cache of 4
  { B: 1, Tq: 6, Tk: 6, H: 2, KV: 2, D: 4, window: 3 },
]) {
  const label = JSON.stringify(shape);
  test(`attention backward matches finite differences ${label}`, () => {
    const { B, Tq, Tk, H, KV, D } = shape;
    const q = rand(B * Tq * H * D),
      k = rand(B * Tk * KV * D),
      v = rand(B * Tk * KV * D),
      g = rand(B * Tq * H * D);
    const { probs } = ref.attentionForward(q, k, v, shape);
    const { dq, dk, dv } = ref.attentionBackward(g, q, k, v, probs, shape);
    fdCheck('attention/q', q, (x) => ref.attentionForward(x, k, v, shape).out, g, dq);
    fdCheck('attention/k', k, (x) => ref.attentionForward(q, x, v, shape).out, g, dk);
    fdCheck('attention/v', v, (x) => ref.attentionForward(q, k, x, shape).out, g, dv);
  });

  for (const { build, fma } of simdBuilds())
    test(`cpu backend attention (WebAssembly path, ${build}) matches the reference ${label}`, () => attentionParity(shape, fma));
}

// past one block of 32 query rows: the products skip the masked keys block by block; the first shape is large
// enough to run on both threads
for (const shape of [
  { B: 2, Tq: 100, Tk: 100, H: 4, KV: 2, D: 32 },
  { B: 1, Tq: 45, Tk: 77, H: 2, KV: 1, D: 12 }, // queries after a cache of 32
  { B: 1, Tq: 90, Tk: 90, H: 2, KV: 2, D: 8, window: 40 },
])
  for (const { build, fma } of simdBuilds())
    test(`cpu backend attention (WebAssembly path, ${build}) matches the reference over several row blocks ${JSON.stringify(shape)}`, () =>
      attentionParity(shape, fma));

/** the CPU backend's attention, forward and backward, against the reference on random inputs */
function attentionParity(shape: AttnShape, fma: boolean): void {
  const be = new CpuBackend({ threads: 2, fma });
  const { B, Tq, Tk, H, KV, D } = shape;
  const q = rand(B * Tq * H * D),
    k = rand(B * Tk * KV * D),
    v = rand(B * Tk * KV * D),
    g = rand(B * Tq * H * D);
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

for (const { build, fma } of simdBuilds())
  test(`attention processed one head at a time (a tiny scratch budget) gives the same results (${build})`, async () => {
    const { setAttnChunkBytes, ATTN_CHUNK_BYTES } = await import('../../src/engine/ops/attention/attention');
    const keep = ATTN_CHUNK_BYTES;
    setAttnChunkBytes(1024);
    try {
      attentionParity({ B: 2, Tq: 9, Tk: 9, H: 4, KV: 2, D: 8 }, fma);
      // the forward pass in blocks of 4 query rows (issue 10 #13: scratch linear in T), after a cache, with a window
      const { queryRowsPerBlock } = await import('../../src/engine/ops/attention/attention');
      assert.equal(queryRowsPerBlock(13, 17, 8), 4);
      attentionParity({ B: 1, Tq: 13, Tk: 17, H: 2, KV: 1, D: 8 }, fma);
      attentionParity({ B: 2, Tq: 11, Tk: 11, H: 2, KV: 2, D: 4, window: 3 }, fma);
    } finally {
      setAttnChunkBytes(keep);
    }
  });

test(
  'the WGSL attention matches the reference: causal, grouped-query, sliding window, decoding offsets, on each kernel path',
  { skip: gpuSkip() },
  () => {
    for (const [path, g] of gpus())
      for (const p of [
        { B: 2, Tq: 5, Tk: 5, H: 4, KV: 2, D: 8 },
        { B: 1, Tq: 9, Tk: 9, H: 2, KV: 2, D: 12, window: 3 },
        { B: 2, Tq: 1, Tk: 6, H: 4, KV: 1, D: 16 },
        { B: 1, Tq: 3, Tk: 7, H: 3, KV: 3, D: 5 },
        { B: 1, Tq: 70, Tk: 70, H: 2, KV: 1, D: 16, window: 40 }, // several query blocks and key tiles
        { B: 2, Tq: 50, Tk: 139, H: 4, KV: 2, D: 32 }, // after a cache: several blocks of keys in the per-key pass
        { B: 1, Tq: 131, Tk: 131, H: 2, KV: 2, D: 8, window: 70 }, // a window across key blocks
        { B: 1, Tq: 4, Tk: 4, H: 1, KV: 1, D: 160 }, // past the tiled kernels' 128: the per-row ones
        { B: 1, Tq: 3, Tk: 9, H: 2, KV: 1, D: 256 }, // the widest head
      ]) {
        const q = T([p.B * p.Tq, p.H * p.D]),
          k = T([p.B * p.Tk, p.KV * p.D]),
          v = T([p.B * p.Tk, p.KV * p.D]),
          dout = T([p.B * p.Tq, p.H * p.D]);
        same(
          g,
          `attention ${JSON.stringify(p)} (${path})`,
          [q, k, v, dout],
          (be, [qq, kk, vv, dd]) => {
            const f = be.attention(qq, kk, vv, p);
            const b = be.attentionBackward(dd, qq, kk, vv, f.saved, p);
            return [f.out, b.dq, b.dk, b.dv];
          },
          2e-5,
          2e-4,
        );
      }
  },
);

for (const { build, fma } of simdBuilds())
  test(`the decode attention kernel (${build}; batch 1, ≤ 4 query rows) matches the reference over the first Tk rows of a longer K/V, the same on 1–3 threads, resident or not`, async () => {
    const { Residency } = await import('../../src/engine/backend/cpu/resident');
    const { attentionDecodeWasm, decodeApplies } = await import('../../src/engine/ops/attention/decode');
    const joined = [1, 2, 3].map((t) => joinedRuntime(t, { fma })); // workers joined: 2 and 3 threads really split
    const rts = joined.map((j) => j.rt);
    try {
      for (const p of [
        { B: 1, Tq: 1, Tk: 1, H: 1, KV: 1, D: 4 },
        { B: 1, Tq: 1, Tk: 37, H: 14, KV: 2, D: 64 },
        { B: 1, Tq: 3, Tk: 9, H: 4, KV: 4, D: 12 },
        { B: 1, Tq: 4, Tk: 300, H: 8, KV: 2, D: 64 }, // enough work for several threads
        { B: 1, Tq: 2, Tk: 50, H: 2, KV: 1, D: 8, window: 7 },
      ] as AttnShape[]) {
        assert.ok(decodeApplies(p));
        const spare = 5; // rows past Tk, as in a KV cache with room left
        const q = rand(p.Tq * p.H * p.D),
          k = rand((p.Tk + spare) * p.KV * p.D),
          v = rand((p.Tk + spare) * p.KV * p.D);
        const n = p.Tk * p.KV * p.D;
        const want = ref.attentionForward(q, k.subarray(0, n), v.subarray(0, n), p);
        // the log-sum-exp of each (head, row)'s scaled scores
        const lse = new Float32Array(p.H * p.Tq);
        for (let h = 0; h < p.H; h++)
          for (let i = 0; i < p.Tq; i++) {
            const kh = Math.floor(h / (p.H / p.KV));
            let m = -Infinity;
            const sc: number[] = [];
            for (let j = 0; j < p.Tk; j++) {
              if (!ref.visible(p, i, j)) continue;
              let s = 0;
              for (let d = 0; d < p.D; d++) s += q[(i * p.H + h) * p.D + d] * k[(j * p.KV + kh) * p.D + d];
              sc.push(s / Math.sqrt(p.D));
              m = Math.max(m, s / Math.sqrt(p.D));
            }
            lse[h * p.Tq + i] = m + Math.log(sc.reduce((a, s) => a + Math.exp(s - m), 0));
          }
        let first: Float32Array | null = null;
        for (const rt of rts)
          for (const resident of [false, true]) {
            const res = new Residency(rt);
            const [kk, vv] = resident ? [res.place(k)!, res.place(v)!] : [k, v];
            const got = attentionDecodeWasm(rt, q, kk, vv, p);
            res.release(kk);
            res.release(vv);
            const what = `${JSON.stringify(p)} threads ${rt.threads} resident ${resident}`;
            assertClose(got.out, want.out, 1e-5, 1e-4, what);
            assertClose(got.lse, lse, 1e-5, 1e-5, `${what}: lse`);
            if (!first) first = got.out;
            else assert.deepEqual(got.out, first, what);
          }
      }
    } finally {
      for (const j of joined.reverse()) j.restore();
    }
  });
