// lorakit's trainer and forward pass against an independent PyTorch implementation (test/golden/train_reference.py:
// a Llama-family decoder from Hugging Face's formulas, LoRA as PEFT defines it, Trainer's step with torch's AdamW,
// clip_grad_norm_ and the warm-up + cosine schedule). Its outputs are kept in test/golden/fixtures, so these run
// everywhere, CI included, without torch: the kept trajectory (8 steps, continuing a given adapter, accumulation 2,
// clipping, weight decay, sequential data) and the kept logits of every fixture architecture. The fixtures are made
// here, deterministically, and must hash to what the references were made from. Where python3 has torch
// (LORAKIT_PYTHON names another python), the references are made again and compared too; LORAKIT_WRITE_FIXTURES=1
// then rewrites the kept files.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTinyModel, TinyModelOptions } from '../../src/engine/fixtures/model';
import { SafetensorsFile, writeSafetensors } from '../../src/engine/formats/safetensors';
import { linearShape, LINEAR_NAMES, modulePath } from '../../src/engine/formats/structure';
import { writeJsonAtomic } from '../../src/engine/core/fsx';
import { Rng } from '../../src/engine/core/rng';
import { CpuBackend } from '../../src/engine/backend/cpu/cpu';
import { openModel } from '../../src/engine/tasks/session';
import { train } from '../../src/engine/tasks/train/trainer';
import { resolveTrainConfig } from '../../src/engine/config';
import { tmpDir } from '../helpers';

const PY = process.env.LORAKIT_PYTHON ?? 'python3';
const probe = spawnSync(PY, ['-c', 'import torch'], { encoding: 'utf8' });
const skip =
  probe.status === 0 ? false : `needs python3 with torch (${(probe.stderr || probe.error?.message || '').trim().split('\n').pop()})`;
if (skip) console.log(`# regenerating the kept PyTorch references skipped: ${skip}; the kept ones are checked`);
const WRITE = !!process.env.LORAKIT_WRITE_FIXTURES;
const FIXTURES = path.resolve('test/golden/fixtures');
const sha = (...files: string[]) =>
  files
    .reduce((h, f) => h.update(fs.readFileSync(f)), createHash('sha256'))
    .digest('hex')
    .slice(0, 32);

function py(...args: string[]): void {
  const r = spawnSync(PY, [path.resolve('test/golden/train_reference.py'), ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, r.stderr);
}

/** the largest |got − want| / |want| over a list, and where */
function worstRel(got: ArrayLike<number>, want: ArrayLike<number>): { rel: number; at: number } {
  assert.equal(got.length, want.length);
  let rel = 0,
    at = -1;
  for (let i = 0; i < got.length; i++) {
    const r = Math.abs(got[i] - want[i]) / Math.abs(want[i]);
    if (!(r <= rel)) [rel, at] = [r, i];
  }
  return { rel, at };
}

// ---- the kept training trajectory ---------------------------------------------------------------------------

const SETTINGS = {
  seq_len: 16,
  batch: 2,
  grad_accum: 2,
  lr: 2e-2,
  steps: 8,
  warmup: 0.2,
  schedule: 'cosine',
  weight_decay: 0.1,
  max_grad_norm: 3.25,
};

/**
 * The trajectory's inputs, made deterministically: a 2-layer llama; 5 rows of 77 token ids (385 tokens: 24
 * windows of 16, so steps 7 and 8 wrap to the start) whose first 10 labels are −100, so micro-batches score
 * different counts; a PEFT adapter on every linear with non-zero A and B, rsLoRA, a rank pattern and an alpha
 * pattern, dropout 0.
 */
function trajectoryInputs(root: string): { model: string; data: string; adapter: string; hashes: Record<string, string> } {
  const model = path.join(root, 'model');
  const spec = makeTinyModel(model, { modelType: 'llama', std: 0.1 });
  const r = new Rng(2024);
  const data = path.join(root, 'data.jsonl');
  const rows = Array.from({ length: 5 }, () => {
    const ids = Array.from({ length: 77 }, () => 1 + Math.floor(r.next() * (spec.vocabSize - 1)));
    return JSON.stringify({ input_ids: ids, labels: ids.map((id, i) => (i < 10 ? -100 : id)) });
  });
  fs.writeFileSync(data, rows.join('\n') + '\n');
  const adapter = path.join(root, 'init-adapter');
  const tensors = [];
  for (let l = 0; l < spec.layers; l++)
    for (const name of LINEAR_NAMES) {
      const rank = name === 'down_proj' ? 2 : 4;
      const [out, inp] = linearShape(spec, name);
      const rand = (n: number, s: number) => Float32Array.from({ length: n }, () => s * r.normal());
      const key = `base_model.model.${modulePath(l, name)}`;
      tensors.push({ name: `${key}.lora_A.weight`, dtype: 'F32' as const, shape: [rank, inp], data: rand(rank * inp, 1 / Math.sqrt(inp)) });
      tensors.push({ name: `${key}.lora_B.weight`, dtype: 'F32' as const, shape: [out, rank], data: rand(out * rank, 0.02) });
    }
  fs.mkdirSync(adapter, { recursive: true });
  writeSafetensors(path.join(adapter, 'adapter_model.safetensors'), tensors, { format: 'pt' });
  writeJsonAtomic(path.join(adapter, 'adapter_config.json'), {
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    r: 4,
    lora_alpha: 8,
    lora_dropout: 0,
    bias: 'none',
    use_rslora: true,
    use_dora: false,
    fan_in_fan_out: false,
    target_modules: [...LINEAR_NAMES],
    rank_pattern: { down_proj: 2 },
    alpha_pattern: { 'layers.1.self_attn.q_proj': 32 },
  });
  const hashes = {
    model: sha(path.join(model, 'config.json'), path.join(model, 'model.safetensors')),
    data: sha(data),
    adapter: sha(path.join(adapter, 'adapter_config.json'), path.join(adapter, 'adapter_model.safetensors')),
  };
  return { model, data, adapter, hashes };
}

interface Trajectory {
  steps: { step: number; loss: number; lr: number; grad_norm: number }[];
  adapter: Map<string, Float32Array>;
}

const readAdapter = (file: string) => {
  const st = new SafetensorsFile(file);
  return new Map(st.names().map((n) => [n, st.readF32(n)]));
};

async function lorakitTrajectory(
  inp: ReturnType<typeof trajectoryInputs>,
  root: string,
  backend: 'cpu' | 'cpu-reference',
): Promise<Trajectory> {
  const out = path.join(root, `run-${backend}`);
  const s = SETTINGS;
  await train(
    resolveTrainConfig({
      model: inp.model,
      data: inp.data,
      out,
      initAdapter: inp.adapter,
      dataOrder: 'sequential',
      evalSplit: 0,
      backend,
      seqLen: s.seq_len,
      batch: s.batch,
      gradAccum: s.grad_accum,
      lr: s.lr,
      steps: s.steps,
      warmup: s.warmup,
      schedule: 'cosine',
      weightDecay: s.weight_decay,
      maxGradNorm: s.max_grad_norm,
    }),
  );
  const steps = fs
    .readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((x) => 'loss' in x);
  return { steps, adapter: readAdapter(path.join(out, 'adapter', 'adapter_model.safetensors')) };
}

/** lorakit against a reference trajectory: losses, grad norms and the final adapter to 1e-5 relative, lr exactly */
function compareTrajectory(got: Trajectory, want: Trajectory, tag: string): { loss: number; gradNorm: number; adapter: number } {
  assert.deepEqual(
    got.steps.map((r) => r.step),
    want.steps.map((r) => r.step),
    `${tag}: steps`,
  );
  for (const [i, r] of want.steps.entries())
    assert.ok(Math.abs(got.steps[i].lr - r.lr) <= 1e-12 * r.lr, `${tag} step ${r.step}: lr ${got.steps[i].lr}, reference ${r.lr}`);
  const loss = worstRel(
    got.steps.map((r) => r.loss),
    want.steps.map((r) => r.loss),
  );
  assert.ok(
    loss.rel < 1e-5,
    `${tag} step ${loss.at + 1}: loss ${got.steps[loss.at]?.loss}, reference ${want.steps[loss.at]?.loss} (rel ${loss.rel})`,
  );
  const gn = worstRel(
    got.steps.map((r) => r.grad_norm),
    want.steps.map((r) => r.grad_norm),
  );
  assert.ok(
    gn.rel < 1e-5,
    `${tag} step ${gn.at + 1}: grad norm ${got.steps[gn.at]?.grad_norm}, reference ${want.steps[gn.at]?.grad_norm} (rel ${gn.rel})`,
  );
  assert.deepEqual([...got.adapter.keys()].sort(), [...want.adapter.keys()].sort(), `${tag}: adapter tensors`);
  // each tensor to 1e-5 of its own scale (an element that happens to be near 0 has no meaningful relative error)
  let adapter = 0;
  for (const [n, w] of want.adapter) {
    const g = got.adapter.get(n)!;
    const scale = w.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    let d = 0;
    for (let i = 0; i < w.length; i++) d = Math.max(d, Math.abs(g[i] - w[i]));
    adapter = Math.max(adapter, d / scale);
    assert.ok(d <= 1e-5 * scale, `${tag} ${n}: max difference ${d} against a largest element ${scale}`);
  }
  return { loss: loss.rel, gradNorm: gn.rel, adapter };
}

const KEPT_TRAJECTORY = path.join(FIXTURES, 'trajectory.json');
const KEPT_ADAPTER = path.join(FIXTURES, 'trajectory-adapter.safetensors');

test('the trainer reproduces the kept PyTorch trajectory (8 steps from a given adapter) to 1e-5', async () => {
  const root = tmpDir('golden-trajectory');
  const inp = trajectoryInputs(root);
  const kept = JSON.parse(fs.readFileSync(KEPT_TRAJECTORY, 'utf8'));
  assert.deepEqual(inp.hashes, kept.inputs, 'the fixture model, data and adapter made here are the ones the reference was made from');
  assert.deepEqual(SETTINGS, kept.settings);
  const want: Trajectory = { steps: kept.steps, adapter: readAdapter(KEPT_ADAPTER) };
  // the reference does clip, warm up and decay, so the comparison covers them
  assert.ok(
    want.steps.some((r) => r.grad_norm > SETTINGS.max_grad_norm) && want.steps.some((r) => r.grad_norm < SETTINGS.max_grad_norm),
    'some steps clip, some do not',
  );
  assert.deepEqual(
    want.steps.slice(0, 3).map((r) => r.lr === SETTINGS.lr),
    [false, false, true],
  );
  for (const backend of ['cpu', 'cpu-reference'] as const) {
    const d = compareTrajectory(await lorakitTrajectory(inp, root, backend), want, backend);
    console.log(
      `# ${backend}: largest relative difference: loss ${d.loss.toExponential(2)}, grad norm ${d.gradNorm.toExponential(2)}, adapter ${d.adapter.toExponential(2)} (of each tensor's largest element)`,
    );
  }
});

test('the trajectory made again with PyTorch matches lorakit (and the kept one)', { skip }, async () => {
  const root = tmpDir('golden-trajectory-py');
  const inp = trajectoryInputs(root);
  const settingsFile = path.join(root, 'settings.json');
  fs.writeFileSync(settingsFile, JSON.stringify({ ...SETTINGS, model: inp.model, data: inp.data, init_adapter: inp.adapter }));
  const ref = path.join(root, 'ref');
  py('trajectory', settingsFile, ref);
  const made = JSON.parse(fs.readFileSync(path.join(ref, 'trajectory.json'), 'utf8'));
  const fresh: Trajectory = { steps: made.steps, adapter: readAdapter(path.join(ref, 'adapter_model.safetensors')) };
  compareTrajectory(await lorakitTrajectory(inp, root, 'cpu'), fresh, 'fresh reference');
  if (WRITE) {
    writeJsonAtomic(KEPT_TRAJECTORY, {
      made_by: `test/golden/train_reference.py (torch ${made.torch})`,
      inputs: inp.hashes,
      settings: SETTINGS,
      warmup_steps: made.warmup_steps,
      windows: made.windows,
      steps: made.steps,
    });
    fs.copyFileSync(path.join(ref, 'adapter_model.safetensors'), KEPT_ADAPTER);
  } else {
    const kept = JSON.parse(fs.readFileSync(KEPT_TRAJECTORY, 'utf8'));
    compareTrajectory(fresh, { steps: kept.steps, adapter: readAdapter(KEPT_ADAPTER) }, 'kept vs fresh reference');
  }
});

// ---- kept logits of every fixture architecture -------------------------------------------------------------

const ARCHS: [string, TinyModelOptions][] = [
  ['llama', { modelType: 'llama' }],
  ['llama-tied-bf16', { modelType: 'llama', tied: true, dtype: 'BF16' }],
  ['llama-biases', { modelType: 'llama', extraConfig: { attention_bias: true, mlp_bias: true } }],
  [
    'llama3-rope',
    {
      modelType: 'llama',
      ropeScaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 32 },
    },
  ],
  ['qwen2', { modelType: 'qwen2', ropeTheta: 1e6 }],
  ['qwen3', { modelType: 'qwen3', headDim: 24 }],
  ['qwen3-tied', { modelType: 'qwen3', tied: true }],
  ['mistral-window', { modelType: 'mistral', slidingWindow: 6 }],
];
const SEQ = 20;
const KEPT_LOGITS_JSON = path.join(FIXTURES, 'forward.json');
const KEPT_LOGITS = path.join(FIXTURES, 'forward-logits.safetensors');

function archInputs(root: string, name: string, opts: TinyModelOptions): { model: string; ids: number[]; hash: string } {
  const model = path.join(root, name);
  const spec = makeTinyModel(model, { ...opts, std: 0.15 });
  const r = new Rng(99);
  const ids = Array.from({ length: SEQ }, () => Math.floor(r.next() * spec.vocabSize));
  return { model, ids, hash: sha(path.join(model, 'config.json'), path.join(model, 'model.safetensors')) };
}

function lorakitLogits(model: string, ids: number[], be: CpuBackend): Float32Array {
  const { model: m } = openModel(model, be);
  const { acts } = m.forward(Int32Array.from(ids), 1, ids.length);
  const logits = m.logits(acts.nf.y);
  return be.read(logits).slice();
}

/** max |got − want| over the logits, against the tolerance 1e-5 · max(1, max |want|) */
function compareLogits(got: Float32Array, want: Float32Array, tag: string): number {
  assert.equal(got.length, want.length, `${tag}: logits count`);
  let d = 0,
    scale = 1;
  for (let i = 0; i < want.length; i++) {
    d = Math.max(d, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  assert.ok(d <= 1e-5 * scale, `${tag}: logits differ by up to ${d} (largest logit ${scale})`);
  return d;
}

test('the forward pass of every fixture architecture gives the kept PyTorch logits to 1e-5', () => {
  const root = tmpDir('golden-logits');
  const kept = JSON.parse(fs.readFileSync(KEPT_LOGITS_JSON, 'utf8'));
  const file = new SafetensorsFile(KEPT_LOGITS);
  assert.deepEqual(
    Object.keys(kept.models),
    ARCHS.map(([n]) => n),
  );
  for (const backend of [new CpuBackend(), new CpuBackend({ wasm: false })]) {
    let worst = 0,
      maxLogit = 0;
    for (const [name, opts] of ARCHS) {
      const a = archInputs(root, `${name}-${backend.name}`, opts);
      assert.equal(a.hash, kept.models[name].hash, `${name}: the fixture model made here is the one the reference was made from`);
      assert.deepEqual(a.ids, kept.models[name].ids);
      const want = file.readF32(name);
      worst = Math.max(worst, compareLogits(lorakitLogits(a.model, a.ids, backend), want, `${name} (${backend.name})`));
      maxLogit = want.reduce((m, v) => Math.max(m, Math.abs(v)), maxLogit);
    }
    console.log(`# ${backend.name}: largest logit difference ${worst.toExponential(2)} (logits up to ${maxLogit.toFixed(2)})`);
  }
});

test('the logits made again with PyTorch match lorakit (and the kept ones)', { skip }, () => {
  const root = tmpDir('golden-logits-py');
  const be = new CpuBackend();
  const models: Record<string, { options: TinyModelOptions; hash: string; ids: number[] }> = {};
  const tensors = [];
  for (const [name, opts] of ARCHS) {
    const a = archInputs(root, name, opts);
    const idsFile = path.join(root, `${name}-ids.json`);
    fs.writeFileSync(idsFile, JSON.stringify({ ids: [a.ids] }));
    const out = path.join(root, `${name}-logits.safetensors`);
    py('logits', a.model, idsFile, out);
    const want = new SafetensorsFile(out).readF32('logits');
    compareLogits(lorakitLogits(a.model, a.ids, be), want, `${name} (fresh reference)`);
    if (!WRITE) compareLogits(want, new SafetensorsFile(KEPT_LOGITS).readF32(name), `${name} kept vs fresh`);
    models[name] = { options: opts, hash: a.hash, ids: a.ids };
    tensors.push({ name, dtype: 'F32' as const, shape: [SEQ, want.length / SEQ], data: want });
  }
  if (WRITE) {
    writeJsonAtomic(KEPT_LOGITS_JSON, { made_by: 'test/golden/train_reference.py logits', std: 0.15, models });
    writeSafetensors(KEPT_LOGITS, tensors, { format: 'pt' });
  }
});
