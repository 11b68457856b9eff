// What the trainer really does, read back from the run folder (metrics.jsonl, the adapter, checkpoints/): the
// learning rate of every step, gradient accumulation's normalisation, gradient clipping, checkpoint pruning and
// the per-epoch shuffle. Each test here was written against a planted bug that every other test let through
// (issue 14); expected values come from the formulas, never from running the code under test.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTinyModel } from '../../src/engine/fixtures/model';
import { train } from '../../src/engine/tasks/train/trainer';
import type { TrainConfig } from '../../src/engine/config';
import { defaultLoraConfig } from '../../src/engine/formats/lora-config';
import { SafetensorsFile } from '../../src/engine/formats/safetensors';
import { CpuBackend } from '../../src/engine/backend/cpu/cpu';
import { openModel } from '../../src/engine/tasks/session';
import { prepareData } from '../../src/engine/data/dataset';
import { Rng } from '../../src/engine/core/rng';
import { assertClose, lorakit, tmpDir } from '../helpers';

const root = tmpDir('trainer-bugs');
const model = path.join(root, 'model');
makeTinyModel(model, { modelType: 'llama', std: 0.1 });
const VOCAB = 384;

/** pre-tokenized data: `n` examples of random ids (so every window is different from every other) */
function idsData(name: string, n: number, len: number, seed: number): string {
  const r = new Rng(seed);
  const file = path.join(root, `${name}.jsonl`);
  const rows = Array.from({ length: n }, () =>
    JSON.stringify({ input_ids: Array.from({ length: len }, () => 1 + Math.floor(r.next() * (VOCAB - 1))) }),
  );
  fs.writeFileSync(file, rows.join('\n') + '\n');
  return file;
}
const data = idsData('data', 6, 40, 3);

function cfg(over: Partial<TrainConfig>): TrainConfig {
  return {
    model,
    data,
    out: path.join(root, 'run'),
    lora: defaultLoraConfig({ r: 4, alpha: 8, dropout: 0 }),
    seqLen: 16,
    batch: 1,
    gradAccum: 1,
    lr: 1e-3,
    steps: 4,
    warmup: 0,
    schedule: 'constant',
    evalSplit: 0,
    seed: 1,
    keepCheckpoints: 3,
    maxGradNorm: 0,
    weightDecay: 0,
    backend: 'cpu',
    ...over,
  };
}

interface StepRow {
  step: number;
  loss: number;
  lr: number;
  grad_norm: number;
}
function stepRows(out: string): StepRow[] {
  return fs
    .readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((x) => 'loss' in x);
}
function adapterTensors(dir: string): Map<string, Float32Array> {
  const st = new SafetensorsFile(path.join(dir, 'adapter_model.safetensors'));
  return new Map(st.names().map((n) => [n, st.readF32(n)]));
}

// ---- 1, 2: the learning rate of every step ----------------------------------------------------------------

/**
 * Hugging Face's schedules (get_{cosine,linear,constant}_schedule_with_warmup), written out: optimizer step s
 * (0-based) uses peak·s/W while s < W, then peak·½(1 + cos(π·p)) (cosine) or peak·(1 − p) (linear) with
 * p = (s − W)/(N − W), or peak (constant). W is given by each case, worked out by hand.
 */
function hfLr(s: number, N: number, W: number, peak: number, kind: string): number {
  if (s < W) return (peak * s) / W;
  if (kind === 'constant') return peak;
  const p = (s - W) / (N - W);
  return kind === 'linear' ? peak * (1 - p) : (peak * (1 + Math.cos(Math.PI * p))) / 2;
}

for (const c of [
  { schedule: 'cosine', steps: 10, warmup: 0.25, W: 3 }, // ⌈0.25·10⌉ = ⌈2.5⌉ = 3
  { schedule: 'linear', steps: 10, warmup: 0.15, W: 2 }, // ⌈1.5⌉ = 2
  { schedule: 'cosine', steps: 7, warmup: 0.1, W: 1 }, // ⌈0.7⌉ = 1: 0.1·steps is not an integer
  { schedule: 'linear', steps: 6, warmup: 2, W: 2 }, // ≥ 1: a number of steps
  { schedule: 'cosine', steps: 5, warmup: 1, W: 1 }, // exactly 1 is one step, not the whole run (1·5)
  { schedule: 'constant', steps: 5, warmup: 0.3, W: 2 }, // ⌈1.5⌉ = 2
] as const) {
  test(`the learning rate of every step: ${c.schedule}, ${c.steps} steps, warm-up ${c.warmup} (${c.W} steps)`, async () => {
    const out = path.join(root, `lr-${c.schedule}-${c.steps}-${c.warmup}`);
    const peak = 2e-3;
    await train(cfg({ out, steps: c.steps, warmup: c.warmup, schedule: c.schedule, lr: peak }));
    const rows = stepRows(out);
    assert.deepEqual(
      rows.map((r) => r.step),
      Array.from({ length: c.steps }, (_, i) => i + 1),
    );
    const want = rows.map((_, s) => hfLr(s, c.steps, c.W, peak, c.schedule));
    assertClose(
      rows.map((r) => r.lr),
      want,
      1e-15,
      1e-12,
      'lr by step',
    );
    // the first step of a warm-up runs at 0, the last warm-up step below the peak and step W at the peak
    assert.equal(rows[0].lr, 0);
    assert.ok(
      rows[c.W - 1].lr < peak && Math.abs(rows[c.W].lr - peak) < 1e-15,
      `steps ${c.W}, ${c.W + 1}: ${rows[c.W - 1].lr}, ${rows[c.W].lr}`,
    );
    assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'run.json'), 'utf8')).warmupSteps, c.W);
  });
}

// ---- 3: gradient accumulation is normalised by the tokens of the whole step --------------------------------

test('batch 2 × accum 1 and batch 1 × accum 2 give the same loss, grad norm and adapter', async () => {
  // the same windows each step: micro-batch a, row b reads the data cursor at step·2 + a·batch + b
  const a = path.join(root, 'b2a1');
  const b = path.join(root, 'b1a2');
  const over = { steps: 3, lr: 5e-3, warmup: 0, maxGradNorm: 0, weightDecay: 0.01 };
  await train(cfg({ ...over, out: a, batch: 2, gradAccum: 1 }));
  await train(cfg({ ...over, out: b, batch: 1, gradAccum: 2 }));
  const ra = stepRows(a),
    rb = stepRows(b);
  assert.equal(ra.length, 3);
  assertClose(
    rb.map((r) => r.loss),
    ra.map((r) => r.loss),
    1e-6,
    1e-6,
    'loss',
  );
  assertClose(
    rb.map((r) => r.grad_norm),
    ra.map((r) => r.grad_norm),
    0,
    1e-5,
    'grad_norm',
  );
  const ta = adapterTensors(path.join(a, 'adapter')),
    tb = adapterTensors(path.join(b, 'adapter'));
  assert.deepEqual([...tb.keys()], [...ta.keys()]);
  for (const [n, x] of ta) assertClose(tb.get(n)!, x, 1e-7, 1e-4, n);
  // and the adapter moved (the comparison above is not between two untouched initialisations)
  assert.ok([...ta].some(([n, x]) => n.includes('lora_B') && x.some((v) => Math.abs(v) > 1e-3)));
});

// ---- 4: gradient clipping -----------------------------------------------------------------------------------

test('clipping brings the gradient norm down to max_grad_norm (read back from the first AdamW update)', async () => {
  // Step 1 from B = 0 (A's gradient is exactly 0 then): m̂ = g, v̂ = g², so each B element moves by
  // −lr·g/(|g| + eps) with eps = 1e-8. From u = |ΔB|/lr the gradient element is |g| = eps·u/(1 − u): a limit c
  // near eps·√(#B elements) keeps u well below 1, and √Σ|g|² must be c·n/(n + 1e-6) for the pre-clip norm n.
  const lr = 1e-2;
  const c = 1e-6;
  const out = path.join(root, 'clip');
  await train(cfg({ out, steps: 1, lr, warmup: 0, schedule: 'constant', maxGradNorm: c, weightDecay: 0 }));
  const [row] = stepRows(out);
  assert.ok(row.grad_norm > 100 * c, `pre-clip norm ${row.grad_norm} should be far above the limit ${c}`);
  let ss = 0;
  let moved = 0;
  for (const [n, x] of adapterTensors(path.join(out, 'adapter'))) {
    if (!n.includes('lora_B')) continue;
    for (const v of x) {
      const u = Math.abs(v) / lr;
      assert.ok(u < 0.999, `${n}: |ΔB|/lr = ${u}: the update is lr·sign(g), as from an unclipped gradient`);
      const g = (1e-8 * u) / (1 - u);
      ss += g * g;
      if (u > 0) moved++;
    }
  }
  assert.ok(moved > 1000, `${moved} B elements moved`);
  assertClose([Math.sqrt(ss)], [(c * row.grad_norm) / (row.grad_norm + 1e-6)], 0, 1e-3, 'clipped norm');
});

test('clipping changes the run only when the norm exceeds the limit', async () => {
  const over = { steps: 3, lr: 5e-3, warmup: 0, weightDecay: 0 };
  const off = path.join(root, 'clip-off');
  await train(cfg({ ...over, out: off, maxGradNorm: 0 }));
  const norms = stepRows(off).map((r) => r.grad_norm);
  const above = path.join(root, 'clip-above');
  await train(cfg({ ...over, out: above, maxGradNorm: 2 * Math.max(...norms) }));
  const limit = Math.min(...norms) / 2;
  const below = path.join(root, 'clip-below');
  await train(cfg({ ...over, out: below, maxGradNorm: limit }));
  const file = (d: string) => fs.readFileSync(path.join(d, 'adapter', 'adapter_model.safetensors'));
  assert.ok(file(above).equals(file(off)), 'a limit above every norm must not change the run');
  // the logged norm is the one before clipping: step 1 is the same in both runs, later steps follow the clipped run
  assert.equal(stepRows(below)[0].grad_norm, norms[0]);
  assert.ok(!file(below).equals(file(off)), 'a limit below every norm must change the adapter');
  // Adam is nearly scale invariant, so the difference is real but small: from step 2 on, each step's gradient is
  // scaled by its own factor limit/n_t, which changes m/√v
  const x = adapterTensors(path.join(below, 'adapter')),
    y = adapterTensors(path.join(off, 'adapter'));
  let diff = 0;
  for (const [n, v] of x) for (let i = 0; i < v.length; i++) diff = Math.max(diff, Math.abs(v[i] - y.get(n)![i]));
  assert.ok(diff > 1e-4, `largest difference ${diff}`);
});

// ---- 5: checkpoint pruning ----------------------------------------------------------------------------------

test('lorakit train --keep-checkpoints 2 of 5 checkpoints keeps the two newest', () => {
  const out = path.join(root, 'prune');
  const r = lorakit(
    'train',
    '--model',
    model,
    '--data',
    data,
    '--out',
    out,
    '--steps',
    '5',
    '--checkpoint-every',
    '1',
    '--keep-checkpoints',
    '2',
    '--seq-len',
    '16',
    '--batch',
    '1',
    '--eval-split',
    '0',
    '--rank',
    '2',
    '--backend',
    'cpu',
  );
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(fs.readdirSync(path.join(out, 'checkpoints')).sort(), ['step-4', 'step-5']);
  const state = JSON.parse(fs.readFileSync(path.join(out, 'checkpoints', 'step-5', 'trainer_state.json'), 'utf8'));
  assert.equal(state.step, 5);
});

// ---- 6: each epoch is a fresh permutation of the windows ----------------------------------------------------

test('each epoch visits every window once, in a new order', async () => {
  // With lr 1e-12 the adapter stays at B ≈ 0, so the loss of a step (batch 1, dropout 0) names the window it saw:
  // compare it with each window's loss under the base model.
  const be = new CpuBackend();
  const { model: m, tokenizer } = openModel(model, be);
  const T = 16;
  const windows = prepareData(data, tokenizer, m.spec.vocabSize, T, 0, 1).train;
  const n = windows.count;
  assert.ok(n >= 6, `${n} windows`);
  const perWindow = Array.from({ length: n }, (_, w) => {
    const r = m.loss(windows.inputs.subarray(w * T, (w + 1) * T), windows.targets.subarray(w * T, (w + 1) * T), 1, T);
    const l = be.read(r.loss)[0] / r.count;
    be.free(r.loss);
    return l;
  });
  const sorted = [...perWindow].sort((a, b) => a - b);
  const gap = Math.min(...sorted.slice(1).map((v, i) => v - sorted[i]));
  assert.ok(gap > 1e-4, `two windows have losses within ${gap}: the loss would not identify the window`);

  const out = path.join(root, 'epochs');
  const epochs = 3;
  await train(cfg({ out, steps: undefined, epochs, lr: 1e-12, warmup: 0 }));
  const rows = stepRows(out);
  assert.equal(rows.length, epochs * n);
  const seen = rows.map((r) => {
    const w = perWindow.findIndex((l) => Math.abs(l - r.loss) < 1e-5);
    assert.ok(w >= 0, `step ${r.step}: loss ${r.loss} is no window's loss (${perWindow.join(', ')})`);
    return w;
  });
  const order = Array.from({ length: epochs }, (_, e) => seen.slice(e * n, (e + 1) * n));
  for (const [e, o] of order.entries())
    assert.deepEqual(
      [...o].sort((a, b) => a - b),
      [...Array(n).keys()],
      `epoch ${e + 1} is not a permutation: ${o}`,
    );
  for (let e = 1; e < epochs; e++)
    assert.notDeepEqual(order[e], order[e - 1], `epochs ${e} and ${e + 1} visit the windows in the same order ${order[e]}`);
  assert.ok(
    order.some((o) => o.some((w, i) => w !== i)),
    'the windows are never shuffled',
  );
});
