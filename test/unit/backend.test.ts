// The CPU backend's bookkeeping: the memory tracker counts live and peak bytes by tag.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { CpuBackend } from '../../src/engine/backend/cpu/cpu';

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

test("a freed tensor's array is reused for the next one of its size, cleared, and never handed out twice", () => {
  const be = new CpuBackend({ wasm: false });
  const n = 1 << 15;
  const a = be.upload(
    Float32Array.from({ length: n }, (_, i) => i + 1),
    [n / 64, 64],
    'activations',
  );
  const b = be.add(a, a); // an op's output comes from the pool
  const seen = be.read(b); // a copy: b's array will be reused once b is freed
  be.free(b);
  be.free(b); // a second free gives nothing back twice
  const c = be.zeros([n / 64, 64], 'activations');
  const d = be.zeros([n / 64, 64], 'activations');
  assert.equal(seen[5], 12, 'what was read stays as it was read');
  assert.ok(be.read(c).every((x) => x === 0) && be.read(d).every((x) => x === 0), 'reused arrays read as new ones');
  be.addInPlace(c, a);
  assert.equal(be.read(d)[0], 0, 'two live tensors never share an array');
  // an uploaded array belongs to the caller: freeing its tensor must not hand it to the next op
  const mine = new Float32Array(n).fill(7);
  const e = be.upload(mine, [n / 64, 64], 'activations');
  be.free(e);
  const f = be.zeros([n / 64, 64], 'activations');
  be.addInPlace(f, a);
  assert.equal(mine[0], 7);
  be.dispose();
});

test('an op whose every output element is written takes a reused array uncleared, and writes all of it', () => {
  const be = new CpuBackend({ wasm: false });
  const n = 1 << 15;
  const x = be.upload(
    Float32Array.from({ length: n }, (_, i) => i % 7),
    [n / 64, 64],
    'activations',
  );
  const zero = be.zeros([n / 64, 64], 'activations');
  const junk = be.add(x, x);
  const junkArray = (junk as unknown as { data: Float32Array }).data;
  be.free(junk); // its array, full of 2·(i mod 7), goes back to the pool
  const y = be.add(x, zero); // takes it without clearing it
  assert.equal((y as unknown as { data: Float32Array }).data, junkArray, 'the freed array is reused');
  assert.deepEqual(be.read(y), be.read(x), 'no value of the array before shows through');
  be.dispose();
});
