// lorakit eval against an independent implementation: Hugging Face transformers + PEFT in float32 (through
// test/golden/hf_reference.py), on models and adapters that lorakit did not write, and PEFT loading adapters that
// lorakit did. Skipped, with the reason printed, where python3 lacks torch, transformers or peft.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeDatasets, makeTinyModel, TinyModelOptions } from '../../src/engine/fixtures/model';
import { CpuBackend } from '../../src/engine/backend/cpu/cpu';
import { openModel } from '../../src/engine/tasks/session';
import { evaluateFile } from '../../src/engine/tasks/evaluate';
import { train } from '../../src/engine/tasks/train/trainer';
import { defaultLoraConfig } from '../../src/engine/formats/lora-config';
import { tmpDir } from '../helpers';

const PY = process.env.LORAKIT_PYTHON ?? 'python3';
const probe = spawnSync(PY, ['-c', 'import torch, transformers, peft'], { encoding: 'utf8' });
const skip =
  probe.status === 0
    ? false
    : `needs python3 with torch, transformers and peft (${(probe.stderr || probe.error?.message || '').trim().split('\n').pop()})`;
if (skip) console.log(`# golden tests skipped: ${skip}`);

function python(jobs: unknown[][]): any[] {
  const file = path.join(tmpDir('jobs'), 'jobs.json');
  fs.writeFileSync(file, JSON.stringify(jobs));
  const r = spawnSync(PY, [path.resolve('test/golden/hf_reference.py'), 'jobs', file], { encoding: 'utf8', maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

const VARIANTS: [string, TinyModelOptions][] = [
  ['llama', { modelType: 'llama' }],
  ['llama-tied-bf16', { modelType: 'llama', tied: true, dtype: 'BF16' }],
  ['qwen3-f16', { modelType: 'qwen3', dtype: 'F16' }],
  ['llama-biases', { modelType: 'llama', extraConfig: { attention_bias: true, mlp_bias: true } }],
  ['qwen2', { modelType: 'qwen2', shards: 2, ropeTheta: 1e6 }],
  ['qwen3', { modelType: 'qwen3', headDim: 24 }],
  ['mistral-window', { modelType: 'mistral', slidingWindow: 6 }],
  [
    'llama3-rope',
    {
      modelType: 'llama',
      ropeScaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 32 },
    },
  ],
];
/** these get their config.json rewritten by the installed transformers (v5 writes rope_parameters, dtype) */
const RESAVED = new Set(['qwen2', 'llama3-rope']);

test('lorakit eval matches Hugging Face transformers + PEFT to 1e-4 relative', { skip }, () => {
  const root = tmpDir('golden');
  const be = new CpuBackend();
  const jobs: unknown[][] = [];
  const cases: { name: string; model: string; data: string; adapter?: string }[] = [];
  for (const [name, opts] of VARIANTS) {
    const model = path.join(root, name);
    makeTinyModel(model, { ...opts, std: 0.15 });
    const ds = makeDatasets(path.join(root, `${name}-data`), 384);
    const adapter = path.join(root, `${name}-peft`);
    const rslora = name === 'qwen2' ? '1' : '0';
    const targets = name === 'llama' ? 'q_proj,v_proj' : 'all-linear';
    jobs.push(['make_adapter', model, adapter, '4', '8', rslora, targets, '1']);
    for (const data of [ds.ids, ds.text]) {
      cases.push({ name, model, data });
      cases.push({ name: `${name}+adapter`, model, data, adapter });
    }
  }
  python([...VARIANTS.filter(([n]) => RESAVED.has(n)).map(([n]) => ['resave_config', path.join(root, n)]), ...jobs]); // then PEFT writes the adapters
  const refs = python(cases.map((c) => ['eval', c.model, c.data, ...(c.adapter ? [c.adapter] : [])]));
  cases.forEach((c, i) => {
    const { model, tokenizer } = openModel(c.model, be, c.adapter);
    const got = evaluateFile(model, tokenizer, c.data, 4096);
    const want = refs[i];
    assert.equal(got.tokens, want.tokens, `${c.name} ${path.basename(c.data)}: token count`);
    const rel = Math.abs(got.loss - want.loss) / Math.abs(want.loss);
    assert.ok(rel < 1e-4, `${c.name} ${path.basename(c.data)}: lorakit ${got.loss} vs HF ${want.loss} (rel ${rel})`);
  });
});

test('PEFT loads the adapters lorakit writes, and scores them as lorakit does', { skip }, async () => {
  const root = tmpDir('golden-peft');
  const model = path.join(root, 'm');
  makeTinyModel(model, { modelType: 'qwen2', std: 0.15 });
  const ds = makeDatasets(path.join(root, 'd'), 384);
  const r = await train({
    model,
    data: ds.text,
    out: path.join(root, 'run'),
    lora: defaultLoraConfig({ r: 4, alpha: 16, targetModules: ['q_proj', 'k_proj', 'down_proj'], useRslora: true }),
    seqLen: 32,
    batch: 2,
    gradAccum: 1,
    lr: 1e-2,
    steps: 5,
    warmup: 0,
    schedule: 'constant',
    evalSplit: 0.1,
    seed: 0,
    keepCheckpoints: 1,
    maxGradNorm: 1,
    weightDecay: 0,
    backend: 'cpu',
  });
  const [loaded, ref] = python([
    ['load_adapter', model, r.adapterDir],
    ['eval', model, ds.ids, r.adapterDir],
  ]);
  assert.equal(loaded.r, 4);
  assert.equal(loaded.lora_params, 2 * 2 * 3);
  const o = openModel(model, new CpuBackend(), r.adapterDir);
  const got = evaluateFile(o.model, o.tokenizer, ds.ids, 4096);
  assert.ok(Math.abs(got.loss - ref.loss) / ref.loss < 1e-4, `${got.loss} vs ${ref.loss}`);
});
