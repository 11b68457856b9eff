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
