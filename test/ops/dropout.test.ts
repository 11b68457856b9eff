// Dropout: the counter-based generator (Philox-4x32-10) against Random123's known-answer vectors; the GPU makes
// the same mask as the CPU for a seed, bit for bit; keep rate and scaling on both.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { T, gpu, gpuSkip, same } from './parity';
import { CpuBackend } from '../../src/engine/backend/cpu/cpu';
import type { Backend } from '../../src/engine/core/backend';
import { dropoutMask, mulhi32, philox4x32 } from '../../src/engine/ops/dropout/reference';
import { assertClose } from '../helpers';

const hex = (w: Uint32Array) => [...w].map((x) => x.toString(16).padStart(8, '0')).join(' ');

test('Philox-4x32-10 gives the Random123 known-answer vectors (kat_vectors, philox4x32_10)', () => {
  const out = new Uint32Array(4);
  assert.equal(hex(philox4x32([0, 0, 0, 0], 0, 0, out)), '6627e8d5 e169c58d bc57ac4c 9b00dbd8');
  const ones = 0xffffffff;
  assert.equal(hex(philox4x32([ones, ones, ones, ones], ones, ones, out)), '408f276d 41c83b0e a20bc7c6 6d5451fd');
  assert.equal(
    hex(philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], 0xa4093822, 0x299f31d0, out)),
    'd16cfe09 94fdcceb 5001e420 24126ea1',
  );
  // the high half of a 32×32 product, against BigInt
  for (const [a, b] of [
    [0xd2511f53, 0xffffffff],
    [0xcd9e8d57, 0x12345678],
    [0xffffffff, 0xffffffff],
    [1, 0xffffffff],
  ])
    assert.equal(mulhi32(a, b), Number((BigInt(a) * BigInt(b)) >> 32n));
});

test('a mask element depends only on (seed, index): a longer mask starts with the shorter one; another seed differs', () => {
  const a = dropoutMask(10, 0.5, 3),
    b = dropoutMask(1001, 0.5, 3);
  assert.deepEqual([...b.subarray(0, 10)], [...a]);
  const c = dropoutMask(1001, 0.5, 4);
  assert.ok(
    b.some((v, i) => v !== c[i]),
    'seeds 3 and 4 give the same mask',
  );
});

/** keep rate within 5 standard deviations of 1 − p, every kept value x/(1 − p) and its mask 1/(1 − p) */
function checkKeep(be: Backend, p: number, n: number): void {
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
    // p = 0.25: x·4/3; p = 0.5: x·2; p = 0.9: x·10
    assertClose([yd[i], md[i]], [x[i] / (1 - p), 1 / (1 - p)], 1e-6, 1e-6, `${be.name}: element ${i}, p ${p}`);
  }
  // kept ~ Binomial(n, 1 − p): √(p(1−p)/n) ≤ 0.0036 at n = 20000
  const sd = Math.sqrt((p * (1 - p)) / n);
  assert.ok(Math.abs(kept / n - (1 - p)) < 5 * sd, `${be.name}: kept ${kept / n} of the values at p = ${p}`);
}

test('dropout keeps each value with probability 1 − p, scaled by 1/(1 − p), and p = 0 is the identity', () => {
  const be = new CpuBackend({ wasm: false });
  for (const p of [0.25, 0.5, 0.9]) checkKeep(be, p, 20000);
  const x = be.upload(Float32Array.of(1, 2, 3), [3], 'activations');
  const r = be.dropout(x, 0, 1);
  assert.deepEqual([...be.read(r.y)], [1, 2, 3]);
  assert.equal(r.mask, null);
});

test('dropout on the GPU: the mask made on the device equals the CPU mask bit for bit; keep rate and scaling', { skip: gpuSkip() }, () => {
  const g = gpu()!;
  const cpu = new CpuBackend({ wasm: false });
  for (const [n, p, seed] of [
    [7 * 37, 0.3, 77], // not a multiple of 4: the last Philox block is partial
    [1, 0.5, 0],
    [70001, 0.05, 0xfffffffe],
    [4096, 0.9, 123456789],
  ]) {
    const x = T([n]);
    const masks = [cpu, g].map((be) => {
      const r = be.dropout(be.upload(x.data.slice(), [n], 'activations'), p, seed);
      return new Uint32Array(be.read(r.mask!).slice().buffer);
    });
    const diff = masks[0].findIndex((v, i) => v !== masks[1][i]);
    assert.equal(diff, -1, `n ${n}, p ${p}, seed ${seed}: masks differ first at element ${diff}`);
  }
  same(g, 'dropout output', [T([7, 37])], (be, [x]) => be.dropout(x, 0.3, 77).y, 0, 0);
  for (const p of [0.25, 0.5, 0.9]) checkKeep(g, p, 20000);
});
