// RoPE: the inverse rotation (the backward pass) against finite differences, and the WebAssembly and WGSL kernels
// against the reference.
import { test } from 'node:test';
import * as ref from '../../src/engine/ops/rope/reference';
import { T, fdCheck, gpu, gpuSkip, rand, same, joinedBackend } from './parity';
import { ropeTables } from '../../src/engine/model/rope';
import { parseSpec } from '../../src/engine/formats/config';
import * as assert from 'node:assert/strict';
import { assertClose } from '../helpers';

test('rope backward (the inverse rotation) matches finite differences', () => {
  const N = 5,
    H = 2,
    D = 6,
    P = 8;
  const x = rand(N * H * D),
    g = rand(N * H * D);
  const pos = Int32Array.from([0, 1, 4, 2, 7]);
  const cos = new Float32Array(P * 3),
    sin = new Float32Array(P * 3);
  for (let p = 0; p < P; p++)
    for (let i = 0; i < 3; i++) [cos[p * 3 + i], sin[p * 3 + i]] = [Math.cos(p * (i + 1) * 0.3), Math.sin(p * (i + 1) * 0.3)];
  const dx = ref.ropeForward(g, N, H, D, pos, cos, sin, true);
  fdCheck('rope', x, (xx) => ref.ropeForward(xx, N, H, D, pos, cos, sin), g, dx);
});

test('the WGSL RoPE matches the reference, forward and inverse', { skip: gpuSkip() }, () => {
  const g = gpu()!;
  const N = 7;
  const heads = 3,
    D = 8,
    P = 16;
  const pos = Int32Array.from({ length: N }, (_, i) => (i * 5) % P);
  for (const inverse of [false, true])
    same(g, `rope inverse=${inverse}`, [T([N, heads * D]), T([P, D / 2]), T([P, D / 2])], (be, [x, cos, sin]) =>
      be.rope(x, heads, pos, { cos, sin }, inverse),
    );
});

// hand-computed values (the arithmetic in the comments): the formula itself, with no torch needed
const F = (...v: number[]) => Float32Array.from(v);

test('RoPE: theta 100, head dim 4, rotate-half pairs (i, i + D/2) at positions 0 and 2', () => {
  const spec = parseSpec({
    model_type: 'llama',
    vocab_size: 16,
    hidden_size: 8,
    intermediate_size: 16,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 2,
    rope_theta: 100,
    max_position_embeddings: 8,
    rms_norm_eps: 1e-6,
  });
  assert.equal(spec.headDim, 4);
  // inv_freq[i] = 1/theta^(2i/D) = [1/100⁰, 1/100^½] = [1, 0.1]; the tables hold cos/sin(p·inv_freq) for p = 0, 1, 2
  const { cos, sin } = ropeTables(spec, 3);
  assertClose(cos, [1, 1, Math.cos(1), Math.cos(0.1), Math.cos(2), Math.cos(0.2)], 1e-7, 1e-6, 'cos');
  assertClose(sin, [0, 0, Math.sin(1), Math.sin(0.1), Math.sin(2), Math.sin(0.2)], 1e-7, 1e-6, 'sin');
  // two rows (positions 0 and 2) of two heads; head [x0, x1, x2, x3] pairs x0 with x2 (angle p·1), x1 with x3 (p·0.1)
  const x = F(1, 2, 3, 4, -1, 0.5, 0, 2, /* row 2 */ 1, 2, 3, 4, -1, 0.5, 0, 2);
  const pos = Int32Array.of(0, 2);
  const out = ref.ropeForward(x, 2, 2, 4, pos, cos, sin);
  const [c2, s2, c02, s02] = [Math.cos(2), Math.sin(2), Math.cos(0.2), Math.sin(0.2)];
  const want = [
    1,
    2,
    3,
    4,
    -1,
    0.5,
    0,
    2, // position 0: no rotation
    // head 1: out0 = x0·cos2 − x2·sin2, out1 = x1·cos.2 − x3·sin.2, out2 = x2·cos2 + x0·sin2, out3 = x3·cos.2 + x1·sin.2
    1 * c2 - 3 * s2,
    2 * c02 - 4 * s02,
    3 * c2 + 1 * s2,
    4 * c02 + 2 * s02,
    // head 2: x = [−1, 0.5, 0, 2]
    -1 * c2 - 0 * s2,
    0.5 * c02 - 2 * s02,
    0 * c2 + -1 * s2,
    2 * c02 + 0.5 * s02,
  ];
  assertClose(out, want, 1e-6, 1e-6, 'rope');
  // the backward pass is the inverse rotation: it brings the output back to x
  assertClose(ref.ropeForward(F(...want), 2, 2, 4, pos, cos, sin, true), x, 1e-6, 1e-6, 'inverse');
});

for (const threads of [1, 2])
  test(`the WebAssembly RoPE (${threads} thread${threads > 1 ? 's' : ''}) gives the reference bit for bit, forward and inverse, at any positions`, () => {
    const be = joinedBackend(threads);
    const spec = parseSpec({
      model_type: 'llama',
      vocab_size: 10,
      hidden_size: 64,
      intermediate_size: 8,
      num_hidden_layers: 1,
      num_attention_heads: 4,
      rope_theta: 10000,
    });
    const t = ropeTables(spec, 700);
    const cos = be.upload(t.cos, [700, 8], 'workspace'),
      sin = be.upload(t.sin, [700, 8], 'workspace');
    for (const pos of [Int32Array.of(5), Int32Array.from({ length: 600 }, (_, i) => (i * 37) % 700)]) {
      const N = pos.length;
      const x = rand(N * 64, 2);
      for (const inverse of [false, true]) {
        const got = be.read(be.rope(be.upload(x, [N, 64], 'activations'), 4, pos, { cos, sin }, inverse));
        assert.deepEqual(got, ref.ropeForward(x, N, 4, 16, pos, t.cos, t.sin, inverse), `${N} rows, inverse ${inverse}`);
      }
    }
    be.dispose();
  });
