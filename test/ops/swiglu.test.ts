// SwiGLU: the reference's backward against finite differences; the WebAssembly and WGSL kernels against the reference.
import { test } from 'node:test';
import * as ref from '../../src/engine/ops/swiglu/reference';
import { CpuBackend } from '../../src/engine/backend/cpu/cpu';
import { assertClose } from '../helpers';
import { T, fdCheck, gpu, gpuSkip, rand, same } from './parity';

test('swiglu backward matches finite differences', () => {
  const n = 40;
  const gate = rand(n, 2), up = rand(n), g = rand(n);
  const { dgate, dup } = ref.swigluBackward(g, gate, up);
  fdCheck('swiglu/gate', gate, (x) => ref.swigluForward(x, up), g, dgate);
  fdCheck('swiglu/up', up, (x) => ref.swigluForward(gate, x), g, dup);
});

test('WebAssembly SwiGLU matches the reference, past one kernel slice and with an odd tail', () => {
  const be = new CpuBackend({ threads: 2 });
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

test('the WGSL SwiGLU matches the reference, forward and backward', { skip: gpuSkip() }, () => {
  const g = gpu()!;
  const [N, C] = [7, 37];
  same(g, 'swiglu', [T([N, C]), T([N, C])], (be, [g, u]) => be.swiglu(g, u));
  same(g, 'swiglu backward', [T([N, C]), T([N, C]), T([N, C])], (be, [dh, g, u]) => {
    const r = be.swigluBackward(dh, g, u);
    return [r.dgate, r.dup];
  });
});
