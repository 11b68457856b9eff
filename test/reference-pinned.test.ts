// The reference ops pinned to their formulas on small vectors worked out by hand, so that a wrong formula whose
// forward and backward still agree with each other (finite differences, ops.test) fails here without a GPU or
// torch: RMSNorm with a large eps, RoPE's half-split pairs at a given theta and position, SwiGLU, dropout's
// 1/(1 − p) scale and cross-entropy.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as ref from '../src/engine/backend/cpu/reference';
import { CpuBackend } from '../src/engine/backend/cpu/cpu';
import { ropeTables } from '../src/engine/model/rope';
import { parseSpec } from '../src/engine/formats/config';
import { assertClose } from './helpers';

const F = (...v: number[]) => Float32Array.from(v);

test('RMSNorm: y = x·w / √(mean(x²) + eps), eps inside the square root (eps = 1)', () => {
  const C = 4;
  const x = F(1, 1, 1, 3, /* row 2 */ 2, 0, 0, 0);
  const w = F(1, 2, 0.5, -1);
  const { y, rstd } = ref.rmsnormForward(x, w, 2, C, 1);
  // row 1: mean(x²) = (1 + 1 + 1 + 9)/4 = 3, 3 + 1 = 4, rstd = 1/2 (eps outside: 1/(√3 + 1) ≈ 0.366)
  // row 2: mean(x²) = 4/4 = 1, 1 + 1 = 2, rstd = 1/√2 (eps outside: 1/2)
  assertClose(rstd, [0.5, Math.SQRT1_2], 1e-7, 1e-6, 'rstd');
  // y = x·w·rstd: row 1 [1·1, 1·2, 1·0.5, 3·(−1)]/2; row 2 [2·1/√2, 0, 0, 0]
  assertClose(y, [0.5, 1, 0.25, -1.5, Math.SQRT2, 0, 0, 0], 1e-7, 1e-6, 'y');
});

test('RMSNorm backward: dx = r·w·dy − (r³/C)·x·Σ(dy·w·x), by hand', () => {
  const C = 4;
  const x = F(1, 1, 1, 3, 2, 0, 0, 0);
  const w = F(1, 2, 0.5, -1);
  const dy = F(1, 0, 0, 1, /* row 2 */ 0, 1, 0, 0);
  const { rstd } = ref.rmsnormForward(x, w, 2, C, 1);
  const dx = ref.rmsnormBackward(dy, x, w, rstd, 2, C);
  // row 1: r = 1/2, Σ dy·w·x = 1·1·1 + 1·(−1)·3 = −2, r³/C = (1/8)/4 = 1/32, so dx = w·dy/2 + x/16:
  //   [1/2 + 1/16, 0 + 1/16, 0 + 1/16, −1/2 + 3/16] = [9/16, 1/16, 1/16, −5/16]
  // row 2: r = 1/√2, Σ dy·w·x = 1·2·0 = 0, so dx = r·w·dy = [0, 2/√2, 0, 0]
  assertClose(dx, [9 / 16, 1 / 16, 1 / 16, -5 / 16, 0, Math.SQRT2, 0, 0], 1e-7, 1e-6, 'dx');
  // and with the rstd given by hand, the backward pass alone
  assertClose(ref.rmsnormBackward(dy, x, w, F(0.5, Math.SQRT1_2), 2, C), [9 / 16, 1 / 16, 1 / 16, -5 / 16, 0, Math.SQRT2, 0, 0], 1e-7, 1e-6, 'dx (given rstd)');
});

test('RoPE: theta 100, head dim 4, rotate-half pairs (i, i + D/2) at positions 0 and 2', () => {
  const spec = parseSpec({
    model_type: 'llama', vocab_size: 16, hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2,
    num_key_value_heads: 2, rope_theta: 100, max_position_embeddings: 8, rms_norm_eps: 1e-6,
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
    1, 2, 3, 4, -1, 0.5, 0, 2, // position 0: no rotation
    // head 1: out0 = x0·cos2 − x2·sin2, out1 = x1·cos.2 − x3·sin.2, out2 = x2·cos2 + x0·sin2, out3 = x3·cos.2 + x1·sin.2
    1 * c2 - 3 * s2, 2 * c02 - 4 * s02, 3 * c2 + 1 * s2, 4 * c02 + 2 * s02,
    // head 2: x = [−1, 0.5, 0, 2]
    -1 * c2 - 0 * s2, 0.5 * c02 - 2 * s02, 0 * c2 + -1 * s2, 2 * c02 + 0.5 * s02,
  ];
  assertClose(out, want, 1e-6, 1e-6, 'rope');
  // the backward pass is the inverse rotation: it brings the output back to x
  assertClose(ref.ropeForward(F(...want), 2, 2, 4, pos, cos, sin, true), x, 1e-6, 1e-6, 'inverse');
});

test('SwiGLU: h = silu(gate)·up and its derivatives, by hand', () => {
  const gate = F(0, 1, -2, 0.5);
  const up = F(3, 2, 0.5, -4);
  const sig = (z: number) => 1 / (1 + Math.exp(-z));
  // silu(0) = 0·½ = 0; silu(1) = 1/(1 + e⁻¹); silu(−2) = −2/(1 + e²); silu(0.5) = 0.5/(1 + e^−0.5)
  const silu = [0, 1 / (1 + Math.exp(-1)), -2 / (1 + Math.exp(2)), 0.5 / (1 + Math.exp(-0.5))];
  assertClose(ref.swigluForward(gate, up), [0, 2 * silu[1], 0.5 * silu[2], -4 * silu[3]], 1e-7, 1e-6, 'h');
  const dh = F(1, 1, 1, 2);
  const { dgate, dup } = ref.swigluBackward(dh, gate, up);
  // ∂h/∂up = silu(g); ∂h/∂gate = up·d/dg[g·σ(g)] = up·(σ(g) + g·σ(g)·(1 − σ(g)))
  assertClose(dup, [0, silu[1], silu[2], 2 * silu[3]], 1e-7, 1e-6, 'dup');
  const dsilu = (g: number) => sig(g) + g * sig(g) * (1 - sig(g));
  // at g = 0: σ = ½, so dgate = 3·½ = 1.5 exactly
  assertClose(dgate, [1.5, 2 * dsilu(1), 0.5 * dsilu(-2), 2 * -4 * dsilu(0.5)], 1e-7, 1e-6, 'dgate');
});

test('dropout keeps each value with probability 1 − p, scaled by 1/(1 − p), and p = 0 is the identity', () => {
  const be = new CpuBackend({ wasm: false });
  const n = 20000;
  for (const p of [0.25, 0.5]) {
    const x = Float32Array.from({ length: n }, (_, i) => 1 + (i % 7)); // 1..7
    const { y, mask } = be.dropout(be.upload(x.slice(), [n], 'activations'), p, 12345);
    const yd = be.read(y);
    const md = be.read(mask!);
    let kept = 0;
    for (let i = 0; i < n; i++) {
      if (yd[i] === 0) {
        assert.equal(md[i], 0);
        continue;
      }
      kept++;
      // p = 0.25: x·4/3; p = 0.5: x·2
      assertClose([yd[i], md[i]], [x[i] / (1 - p), 1 / (1 - p)], 1e-6, 1e-6, `element ${i}, p ${p}`);
    }
    // kept ~ Binomial(n, 1 − p): 1 − p within 5 standard deviations (√(p(1−p)/n) ≤ 0.0036)
    assert.ok(Math.abs(kept / n - (1 - p)) < 0.018, `kept ${kept / n} of the values at p = ${p}`);
  }
  const x = be.upload(F(1, 2, 3), [3], 'activations');
  const r = be.dropout(x, 0, 1);
  assert.deepEqual([...be.read(r.y)], [1, 2, 3]);
  assert.equal(r.mask, null);
});

test('cross-entropy: the summed loss, the scored count and (softmax − onehot)·gradScale, by hand', () => {
  const V = 4;
  // logits ln[1, 2, 3, 4]: softmax = [1, 2, 3, 4]/10; the second row is shifted by 100 (same softmax); the third is masked
  const row = [0, Math.log(2), Math.log(3), Math.log(4)];
  const logits = F(...row, ...row.map((v) => v + 100), 5, -5, 7, 1);
  const targets = Int32Array.of(3, 0, -1);
  const { loss, count, dlogits } = ref.crossEntropy(logits, targets, V, 0.5);
  assert.equal(count, 2);
  // −ln(4/10) − ln(1/10) = ln 2.5 + ln 10 = ln 25
  assertClose([loss], [Math.log(25)], 1e-5, 1e-6, 'loss');
  // row 1: ([.1, .2, .3, .4] − [0, 0, 0, 1])·0.5; row 2: ([.1, .2, .3, .4] − [1, 0, 0, 0])·0.5; row 3: 0
  assertClose(dlogits, [0.05, 0.1, 0.15, -0.3, -0.45, 0.1, 0.15, 0.2, 0, 0, 0, 0], 1e-6, 1e-5, 'dlogits');
});
