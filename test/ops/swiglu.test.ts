// SwiGLU: the reference's backward against finite differences; the WebAssembly and WGSL kernels against the reference.
import { test } from 'node:test';
import * as ref from '../../src/engine/ops/swiglu/reference';
import { assertClose } from '../helpers';
import { T, fdCheck, gpu, gpuSkip, rand, same, simdBuilds, joinedBackend } from './parity';

test('swiglu backward matches finite differences', () => {
  const n = 40;
  const gate = rand(n, 2),
    up = rand(n),
    g = rand(n);
  const { dgate, dup } = ref.swigluBackward(g, gate, up);
  fdCheck('swiglu/gate', gate, (x) => ref.swigluForward(x, up), g, dgate);
  fdCheck('swiglu/up', up, (x) => ref.swigluForward(gate, x), g, dup);
});

for (const { build, fma } of simdBuilds())
  test(`WebAssembly SwiGLU (${build}) matches the reference, past one kernel slice and with an odd tail`, () => {
    const be = joinedBackend(2, { fma });
    const n = (1 << 22) + 4099; // past one kernel slice (ELEMENTWISE_CHUNK), with an odd tail
    const gate = rand(n, 4),
      up = rand(n),
      dh = rand(n);
    const h = be.swiglu(be.upload(gate, [n], 'activations'), be.upload(up, [n], 'activations'));
    assertClose(be.read(h), ref.swigluForward(gate, up), 1e-6, 1e-5, 'swiglu');
    const bw = be.swigluBackward(be.upload(dh, [n], 'activations'), be.upload(gate, [n], 'activations'), be.upload(up, [n], 'activations'));
    const wb = ref.swigluBackward(dh, gate, up);
    assertClose(be.read(bw.dgate), wb.dgate, 1e-6, 1e-5, 'dgate');
    assertClose(be.read(bw.dup), wb.dup, 1e-6, 1e-5, 'dup');
    be.dispose();
  });

test('the WGSL SwiGLU matches the reference, forward and backward', { skip: gpuSkip() }, () => {
  const g = gpu()!;
  const [N, C] = [7, 37];
  same(g, 'swiglu', [T([N, C]), T([N, C])], (be, [g, u]) => be.swiglu(g, u));
  same(g, 'swiglu backward', [T([N, C]), T([N, C]), T([N, C])], (be, [dh, g, u]) => {
    const r = be.swigluBackward(dh, g, u);
    return [r.dgate, r.dup];
  });
});

// hand-computed values (the arithmetic in the comments): the formula itself, with no torch needed
const F = (...v: number[]) => Float32Array.from(v);

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
