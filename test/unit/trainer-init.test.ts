// `--init-adapter DIR` (continue training a PEFT adapter, fresh optimizer state) and `--data-order sequential`
// (the windows in file order). The adapter here is written by hand in PEFT's layout, not by lorakit's trainer, and
// every expected value comes from an independent path: eval of base + adapter, or each window's base loss.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTinyModel } from '../../src/engine/fixtures/model';
import { train } from '../../src/engine/tasks/train/trainer';
import { checkpointDir } from '../../src/engine/tasks/train/checkpoint';
import { evaluateWindows } from '../../src/engine/tasks/evaluate';
import { TrainConfig, resolveTrainConfig } from '../../src/engine/config';
import { SafetensorsFile, writeSafetensors } from '../../src/engine/formats/safetensors';
import { CpuBackend } from '../../src/engine/backend/cpu/cpu';
import { openModel } from '../../src/engine/tasks/session';
import { prepareData } from '../../src/engine/data/dataset';
import { linearShape, modulePath } from '../../src/engine/formats/structure';
import { Rng } from '../../src/engine/core/rng';
import { assertClose, lorakit, tmpDir } from '../helpers';

const root = tmpDir('trainer-init');
const model = path.join(root, 'model');
const spec = makeTinyModel(model, { modelType: 'llama', std: 0.1 });
const VOCAB = 384;
const T = 16;

function idsData(name: string, n: number, len: number, seed: number): string {
  const r = new Rng(seed);
  const file = path.join(root, `${name}.jsonl`);
  fs.writeFileSync(
    file,
    Array.from({ length: n }, () =>
      JSON.stringify({ input_ids: Array.from({ length: len }, () => 1 + Math.floor(r.next() * (VOCAB - 1))) }),
    ).join('\n') + '\n',
  );
  return file;
}
const data = idsData('data', 4, 40, 5); // 160 tokens: 10 windows of 16

/**
 * A PEFT adapter as PEFT writes it: q_proj and v_proj, r 4 except v_proj (rank_pattern: 2), alpha 8 except
 * layer 1's q_proj (alpha_pattern: 32), non-zero random A and B (B = 0 would make it a fresh adapter).
 */
function peftAdapter(dir: string): Map<string, Float32Array> {
  const r = new Rng(11);
  const tensors = [];
  for (let l = 0; l < spec.layers; l++)
    for (const name of ['q_proj', 'v_proj'] as const) {
      const rank = name === 'v_proj' ? 2 : 4;
      const [out, inp] = linearShape(spec, name);
      const rand = (n: number, s: number) => Float32Array.from({ length: n }, () => s * r.normal());
      tensors.push({
        name: `base_model.model.${modulePath(l, name)}.lora_A.weight`,
        dtype: 'F32' as const,
        shape: [rank, inp],
        data: rand(rank * inp, 0.1),
      });
      tensors.push({
        name: `base_model.model.${modulePath(l, name)}.lora_B.weight`,
        dtype: 'F32' as const,
        shape: [out, rank],
        data: rand(out * rank, 0.05),
      });
    }
  fs.mkdirSync(dir, { recursive: true });
  writeSafetensors(path.join(dir, 'adapter_model.safetensors'), tensors, { format: 'pt' });
  fs.writeFileSync(
    path.join(dir, 'adapter_config.json'),
    JSON.stringify({
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      base_model_name_or_path: '/somewhere/else',
      r: 4,
      lora_alpha: 8,
      lora_dropout: 0,
      bias: 'none',
      target_modules: ['v_proj', 'q_proj'],
      use_rslora: false,
      use_dora: false,
      fan_in_fan_out: false,
      rank_pattern: { v_proj: 2 },
      alpha_pattern: { 'layers.1.self_attn.q_proj': 32 },
    }),
  );
  return new Map(tensors.map((t) => [t.name, t.data]));
}
const adapter = path.join(root, 'peft');
const init = peftAdapter(adapter);

function base(over: Partial<Parameters<typeof resolveTrainConfig>[0]>, out: string): TrainConfig {
  return resolveTrainConfig({
    model,
    data,
    out: path.join(root, out),
    seqLen: T,
    evalSplit: 0,
    warmup: 0,
    schedule: 'constant',
    seed: 3,
    backend: 'cpu',
    ...over,
  });
}
const stepRows = (out: string) =>
  fs
    .readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((x) => 'loss' in x) as { step: number; loss: number; lr: number }[];
const tensors = (dir: string) => {
  const st = new SafetensorsFile(path.join(dir, 'adapter_model.safetensors'));
  return new Map(st.names().map((n) => [n, st.readF32(n)]));
};

test('--init-adapter takes r, alpha, dropout, targets and the rank/alpha patterns from the adapter', () => {
  const c = base({ initAdapter: adapter }, 'cfg');
  assert.equal(c.lora.r, 4);
  assert.equal(c.lora.alpha, 8);
  assert.equal(c.lora.dropout, 0); // the table's default (0.05) does not apply
  assert.deepEqual(c.lora.targetModules, ['v_proj', 'q_proj']);
  assert.deepEqual(c.lora.rankPattern, { v_proj: 2 });
  assert.deepEqual(c.lora.alphaPattern, { 'layers.1.self_attn.q_proj': 32 });
  assert.equal(c.initAdapter, adapter);
  // flags that agree are accepted; targets compare as sets
  assert.doesNotThrow(() => base({ initAdapter: adapter, rank: 4, alpha: 8, dropout: 0, targets: 'q_proj,v_proj' }, 'cfg'));
  assert.throws(() => base({ initAdapter: adapter, alpha: 16 }, 'cfg'), /--alpha 16 contradicts this adapter's 8/);
  assert.throws(
    () => base({ initAdapter: adapter, targets: 'all-linear' }, 'cfg'),
    /--targets .* contradicts this adapter's "q_proj,v_proj"/,
  );
  assert.throws(() => base({ initAdapter: adapter, rslora: true }, 'cfg'), /--rslora true contradicts/);
  assert.throws(() => base({ initAdapter: path.join(root, 'model') }, 'cfg'), /not a PEFT adapter folder: no adapter_config.json/);
});

test('lorakit train --init-adapter refuses a conflicting --rank in one line', () => {
  const r = lorakit(
    'train',
    '--model',
    model,
    '--data',
    data,
    '--out',
    path.join(root, 'cli-conflict'),
    '--init-adapter',
    adapter,
    '--rank',
    '8',
    '--backend',
    'cpu',
  );
  assert.equal(r.code, 1, r.err);
  assert.equal(r.err.trim().split('\n').length, 1, r.err);
  assert.match(r.err, /^lorakit: error: .*peft: --rank 8 contradicts this adapter's 4 \(from its adapter_config\.json\); leave --rank out/);
  assert.ok(!fs.existsSync(path.join(root, 'cli-conflict', 'run.json')), 'nothing was started');
  assert.match(lorakit('train', '--help').out, /--init-adapter DIR +continue training this PEFT adapter/);
});

test('training continues from the adapter: step 1 loss is eval of base + adapter, B starts where the adapter is', async () => {
  // Step 1 (lr 0 in a one-step warm-up) sees every window in one batch: its loss is the mean over all scored
  // tokens, which eval of the base model with the adapter loaded computes independently of the trainer.
  const be = new CpuBackend();
  const { model: m, tokenizer } = openModel(model, be, adapter);
  const windows = prepareData(data, tokenizer, m.spec.vocabSize, T, 0, 3).train;
  const want = evaluateWindows(m, windows, 4).loss;
  const { model: plain } = openModel(model, be);
  const baseLoss = evaluateWindows(plain, windows, 4).loss;
  assert.ok(Math.abs(want - baseLoss) > 1e-3, `the adapter changes the loss (${want} vs ${baseLoss})`);

  const out = path.join(root, 'continue-lr0');
  // two steps, so that the one-step warm-up is allowed (it never covers a whole run); step 1 runs at lr 0
  await train(
    base(
      { initAdapter: adapter, batch: windows.count, steps: 2, warmup: 1, lr: 1e-2, dataOrder: 'sequential', checkpointEvery: 1 },
      'continue-lr0',
    ),
  );
  const [row] = stepRows(out);
  assert.equal(row.lr, 0);
  assertClose([row.loss], [want], 0, 1e-6, 'step 1 loss');
  // an update at lr 0 leaves the adapter as loaded: B is the adapter's (not zero), A is not re-initialised
  const got = tensors(checkpointDir(out, 1));
  assert.deepEqual([...got.keys()].sort(), [...init.keys()].sort());
  for (const [n, x] of init) assert.deepEqual(got.get(n), x, n);
  const cfg = JSON.parse(fs.readFileSync(path.join(out, 'adapter', 'adapter_config.json'), 'utf8'));
  assert.deepEqual(
    [cfg.r, cfg.lora_alpha, cfg.rank_pattern, cfg.alpha_pattern],
    [4, 8, { v_proj: 2 }, { 'layers.1.self_attn.q_proj': 32 }],
  );
  assert.equal(cfg.base_model_name_or_path, path.resolve(model), "the new adapter names this run's base");
  const run = JSON.parse(fs.readFileSync(path.join(out, 'run.json'), 'utf8'));
  assert.equal(run.config.initAdapter, adapter);
  assert.match(run.initAdapter.hash, /^[0-9a-f]{16}$/);
});

test('the optimizer state starts fresh: the first update moves each element by about lr', async () => {
  // AdamW's first step from m = v = 0 is lr·g/(|g| + eps): every element with a gradient well above eps moves by
  // lr (a carried-over state would not). Weight decay 0, no clipping.
  const lr = 1e-3;
  const out = path.join(root, 'continue');
  await train(base({ initAdapter: adapter, batch: 2, steps: 1, lr, maxGradNorm: 0, dataOrder: 'sequential' }, 'continue'));
  const got = tensors(path.join(out, 'adapter'));
  let moved = 0;
  for (const [n, x] of init)
    for (let i = 0; i < x.length; i++) {
      const d = Math.abs(got.get(n)![i] - x[i]);
      assert.ok(d < lr * 1.0001, `${n}[${i}] moved ${d}`);
      if (d > lr * 0.99) moved++;
    }
  assert.ok(moved > 0.9 * [...init.values()].reduce((a, x) => a + x.length, 0), `${moved} elements moved by ≈ lr`);
});

test('a run from --init-adapter resumes to the same adapter, and only with the same adapter and data order', async () => {
  const out = path.join(root, 'resume');
  const c = base(
    { initAdapter: adapter, batch: 2, steps: 2, checkpointEvery: 1, keepCheckpoints: 2, lr: 1e-3, dataOrder: 'sequential' },
    'resume',
  );
  await train(c);
  const whole = fs.readFileSync(path.join(out, 'adapter', 'adapter_model.safetensors'));
  // as if stopped after step 1
  fs.rmSync(path.join(out, 'checkpoints', 'step-2'), { recursive: true });
  fs.rmSync(path.join(out, 'adapter'), { recursive: true });
  await assert.rejects(
    train({ ...c, initAdapter: undefined }, { resume: true }),
    /cannot resume: initAdapter was ".*peft" in this run, now undefined/,
  );
  await assert.rejects(
    train({ ...c, dataOrder: 'shuffle' }, { resume: true }),
    /cannot resume: dataOrder was "sequential" in this run, now "shuffle"/,
  );
  const r = await train(c, { resume: true });
  assert.equal(r.steps, 2);
  assert.ok(fs.readFileSync(path.join(out, 'adapter', 'adapter_model.safetensors')).equals(whole), 'resumed = uninterrupted, bit for bit');
});

test('--data-order sequential feeds the windows in file order, wrapping at the end', async () => {
  // lr 1e-12 keeps a fresh adapter at B ≈ 0, so each step's loss (batch 1) names the window it saw
  const be = new CpuBackend();
  const { model: m, tokenizer } = openModel(model, be);
  const w = prepareData(data, tokenizer, m.spec.vocabSize, T, 0, 3).train;
  const perWindow = Array.from({ length: w.count }, (_, i) => {
    const one = { count: 1, T, inputs: w.inputs.subarray(i * T, (i + 1) * T), targets: w.targets.subarray(i * T, (i + 1) * T) };
    return evaluateWindows(m, one, 1).loss;
  });
  const sorted = [...perWindow].sort((a, b) => a - b);
  assert.ok(Math.min(...sorted.slice(1).map((v, i) => v - sorted[i])) > 1e-4, 'every window has its own loss');
  const steps = w.count + 3;
  const out = path.join(root, 'sequential');
  await train(base({ batch: 1, steps, lr: 1e-12, dropout: 0, dataOrder: 'sequential' }, 'sequential'));
  const want = Array.from({ length: steps }, (_, s) => perWindow[s % w.count]);
  assertClose(
    stepRows(out).map((r) => r.loss),
    want,
    0,
    1e-5,
    'loss of step s is window s mod n',
  );
  // and the default order is not this one
  const shuffled = path.join(root, 'shuffled');
  await train(base({ batch: 1, steps: w.count, lr: 1e-12, dropout: 0 }, 'shuffled'));
  assert.notDeepEqual(
    stepRows(shuffled).map((r) => r.loss.toFixed(5)),
    want.slice(0, w.count).map((l) => l.toFixed(5)),
  );
});
