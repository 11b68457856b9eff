// The optimizer's pieces: learning-rate schedules, one AdamW step by hand, and gradient accumulation.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { lrAt, warmupSteps } from '../../src/engine/tasks/train/schedule';
import { CpuBackend } from '../../src/engine/backend/cpu/cpu';
import { makeTinyModel } from '../../src/engine/fixtures/model';
import { openModel } from '../../src/engine/tasks/session';
import { LoraAdapter } from '../../src/engine/model/lora';
import { defaultLoraConfig } from '../../src/engine/formats/lora-config';
import { Rng } from '../../src/engine/core/rng';
import { assertClose, tmpDir } from '../helpers';

test('schedules: linear warm-up from 0, then cosine, linear or constant (Hugging Face semantics)', () => {
  assert.equal(warmupSteps(0.1, 100), 10);
  assert.equal(warmupSteps(5, 100), 5);
  assert.equal(lrAt(0, 100, 10, 1, 'cosine'), 0);
  assert.equal(lrAt(5, 100, 10, 1, 'cosine'), 0.5);
  assert.equal(lrAt(10, 100, 10, 1, 'cosine'), 1);
  assert.ok(Math.abs(lrAt(55, 100, 10, 1, 'cosine') - 0.5) < 1e-12);
  assert.ok(lrAt(99, 100, 10, 1, 'cosine') < 0.001);
  assert.ok(Math.abs(lrAt(55, 100, 10, 2, 'linear') - 1) < 1e-12);
  assert.equal(lrAt(99, 100, 10, 3, 'constant'), 3);
  assert.equal(lrAt(0, 100, 0, 3, 'cosine'), 3);
});

test('one AdamW step matches the formula (bias correction, decoupled weight decay)', () => {
  const be = new CpuBackend({ wasm: false });
  const p = be.upload(Float32Array.of(1, -2, 0.5), [3], 'lora');
  const g = be.upload(Float32Array.of(0.1, 0.2, -0.3), [3], 'lora');
  const m = be.zeros([3], 'optimizer');
  const v = be.zeros([3], 'optimizer');
  const hp = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step: 1 };
  be.adamw(p, g, m, v, hp);
  // step 1: m̂ = g, v̂ = g², so the update is lr·g/(|g| + eps) = lr·sign(g), after decay p·(1 − lr·wd)
  const want = [1 * (1 - 0.001) - 0.01, -2 * (1 - 0.001) - 0.01, 0.5 * (1 - 0.001) + 0.01];
  assertClose(be.read(p), want, 1e-7, 1e-6, 'params');
  assertClose(be.read(m), [0.01, 0.02, -0.03], 1e-9, 1e-6, 'm');
  assertClose(be.read(v), [1e-5, 4e-5, 9e-5], 1e-12, 1e-5, 'v');
});

test('accumulating gradients over two half batches equals one full batch', () => {
  const dir = path.join(tmpDir('accum'), 'm');
  makeTinyModel(dir, { modelType: 'qwen2' });
  const be = new CpuBackend();
  const { model } = openModel(dir, be);
  model.adapter = LoraAdapter.create(model.spec, defaultLoraConfig({ dropout: 0 }), be, new Rng(1));
  const r = new Rng(2);
  for (const mod of model.adapter.modules.values())
    be.write(
      mod.B,
      Float32Array.from({ length: mod.B.shape[0] * mod.B.shape[1] }, () => 0.05 * r.normal()),
    );
  model.adapter.allocGrads(be);
  const T = 10;
  const ids = Int32Array.from({ length: 4 * T }, () => Math.floor(r.next() * 300));
  const tg = Int32Array.from({ length: 4 * T }, (_, i) => (i % 7 === 0 ? -1 : ids[(i + 1) % ids.length]));
  const count = tg.filter((t) => t >= 0).length;
  model.lossAndGrad(ids, tg, 4, T, 1 / count, 0);
  const full = model.adapter.params().map((p) => be.read(p.g()!).slice());
  model.adapter.zeroGrads(be);
  model.lossAndGrad(ids.subarray(0, 2 * T), tg.subarray(0, 2 * T), 2, T, 1 / count, 0);
  model.lossAndGrad(ids.subarray(2 * T), tg.subarray(2 * T), 2, T, 1 / count, 0);
  model.adapter.params().forEach((p, i) => assertClose(be.read(p.g()!), full[i], 1e-7, 1e-4, p.name));
});
