// The trainer: loss falls, resume is exact, NaN/Inf stops with the last checkpoint kept, cancellation
// checkpoints, the adapter is a PEFT adapter, and merging gives base + adapter.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTinyModel } from '../../src/engine/fixtures/model';
import { train } from '../../src/engine/tasks/train/trainer';
import type { TrainConfig } from '../../src/engine/config';
import { defaultLoraConfig } from '../../src/engine/formats/lora-config';
import { SafetensorsFile } from '../../src/engine/formats/safetensors';
import { mergeAdapters } from '../../src/engine/tasks/merge/merge';
import { CpuBackend } from '../../src/engine/backend/cpu/cpu';
import { openModel } from '../../src/engine/tasks/session';
import { evaluateFile } from '../../src/engine/tasks/evaluate';
import { UserError } from '../../src/engine/core/errors';
import { assertClose, tmpDir } from '../helpers';

const root = tmpDir('trainer');
const model = path.join(root, 'model');
makeTinyModel(model, { modelType: 'llama', std: 0.1 });
const data = path.join(root, 'data');
fs.mkdirSync(data);
for (let i = 0; i < 8; i++)
  fs.writeFileSync(path.join(data, `doc${i}.md`), `Document ${i}. The adapter learns the shape of the data one step at a time. `.repeat(6));

function cfg(over: Partial<TrainConfig>): TrainConfig {
  return {
    model,
    data,
    out: path.join(root, 'run'),
    lora: defaultLoraConfig({ r: 4, alpha: 8, dropout: 0.1 }),
    seqLen: 32,
    batch: 2,
    gradAccum: 2,
    lr: 3e-3,
    steps: 6,
    warmup: 0.2,
    schedule: 'cosine',
    evalSplit: 0.2,
    seed: 1,
    checkpointEvery: 3,
    keepCheckpoints: 3,
    maxGradNorm: 1,
    weightDecay: 0.01,
    backend: 'cpu',
    ...over,
  };
}

test('training on a folder lowers the eval loss and writes a PEFT adapter and a full run folder', async () => {
  const out = path.join(root, 'fall');
  const r = await train(cfg({ out, steps: 25, lr: 1e-2, checkpointEvery: 10 }));
  assert.equal(r.status, 'completed');
  assert.ok(r.finalEvalLoss! < r.firstEvalLoss! - 0.2, `eval loss ${r.firstEvalLoss} → ${r.finalEvalLoss}`);
  // PEFT format: config fields, key names and shapes
  const c = JSON.parse(fs.readFileSync(path.join(out, 'adapter', 'adapter_config.json'), 'utf8'));
  assert.equal(c.peft_type, 'LORA');
  assert.equal(c.task_type, 'CAUSAL_LM');
  assert.equal(c.r, 4);
  assert.equal(c.lora_alpha, 8);
  assert.equal(c.bias, 'none');
  assert.equal(c.use_rslora, false);
  assert.deepEqual(c.target_modules, ['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj']);
  const st = new SafetensorsFile(path.join(out, 'adapter', 'adapter_model.safetensors'));
  assert.equal(st.names().length, 2 * 7 * 2);
  assert.deepEqual(st.info('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight').shape, [4, 64]);
  assert.deepEqual(st.info('base_model.model.model.layers.1.mlp.down_proj.lora_B.weight').shape, [64, 4]);
  assert.deepEqual(st.info('base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight').shape, [32, 4]);
  // the run folder
  const run = JSON.parse(fs.readFileSync(path.join(out, 'run.json'), 'utf8'));
  assert.equal(run.status, 'completed');
  assert.equal(run.config.seed, 1);
  const rows = fs
    .readFileSync(path.join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  const steps = rows.filter((x) => 'loss' in x);
  assert.equal(steps.length, 25);
  for (const k of ['step', 'loss', 'lr', 'grad_norm', 'tokens_per_s', 'mem']) assert.ok(k in steps[0], k);
  assert.ok(steps[0].mem.activations > 0 && steps[0].mem.optimizer > 0);
  assert.ok(rows.some((x) => 'eval_loss' in x));
  assert.deepEqual(fs.readdirSync(path.join(out, 'checkpoints')).sort(), ['step-10', 'step-20', 'step-25']);
});

test('a run stopped at step k and resumed ends with the same adapter as an uninterrupted run', async () => {
  const full = path.join(root, 'full');
  await train(cfg({ out: full }));
  const part = path.join(root, 'part');
  const ac = new AbortController();
  const r1 = await train(cfg({ out: part }), { signal: ac.signal, events: { onStep: (m) => m.step === 4 && ac.abort() } });
  assert.equal(r1.status, 'cancelled');
  assert.equal(r1.steps, 4);
  assert.ok(fs.existsSync(path.join(part, 'checkpoints', 'step-4', 'optimizer.safetensors')));
  assert.ok(!fs.existsSync(path.join(part, 'adapter')));
  const r2 = await train(cfg({ out: part }), { resume: true });
  assert.equal(r2.status, 'completed');
  const a = fs.readFileSync(path.join(full, 'adapter', 'adapter_model.safetensors'));
  const b = fs.readFileSync(path.join(part, 'adapter', 'adapter_model.safetensors'));
  assert.ok(a.equals(b), 'resumed adapter differs from the uninterrupted one');
  const rows = (d: string) =>
    fs
      .readFileSync(path.join(d, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((x) => 'loss' in x)
      .map((x) => x.loss);
  assert.deepEqual(rows(part), rows(full));
});

test('--grad-checkpoint trains the same adapter, bit for bit', async () => {
  const out = path.join(root, 'ckpt');
  await train(cfg({ out, gradCheckpoint: true }));
  const a = fs.readFileSync(path.join(root, 'full', 'adapter', 'adapter_model.safetensors'));
  assert.ok(a.equals(fs.readFileSync(path.join(out, 'adapter', 'adapter_model.safetensors'))));
});

test('resume refuses a changed configuration, and a fresh run refuses a used folder', async () => {
  const out = path.join(root, 'full');
  await assert.rejects(train(cfg({ out, lr: 1e-3 }), { resume: true }), /cannot resume: lr was 0.003 in this run, now 0.001/);
  await assert.rejects(train(cfg({ out })), /already holds a run; pass --resume/);
  await assert.rejects(train(cfg({ out: path.join(root, 'none') }), { resume: true }), /nothing to resume/);
  // the same flags over edited data cannot continue exactly, so they are refused
  const edited = path.join(root, 'edited');
  fs.cpSync(data, edited, { recursive: true });
  const part = path.join(root, 'part2');
  const ac = new AbortController();
  await train(cfg({ out: part, data: edited }), { signal: ac.signal, events: { onStep: () => ac.abort() } });
  fs.appendFileSync(path.join(edited, 'doc0.md'), 'a new sentence that changes the tokens');
  await assert.rejects(
    train(cfg({ out: part, data: edited }), { resume: true }),
    /cannot resume: the training data changed since this run started/,
  );
});

test('NaN/Inf stops the run without applying the update and keeps the last good checkpoint', async () => {
  const out = path.join(root, 'nan');
  await assert.rejects(
    train(cfg({ out, lr: 1e38, steps: 20, checkpointEvery: 1, warmup: 0, maxGradNorm: 0 })),
    (e: unknown) => e instanceof UserError && /NaN\/Inf/.test(e.message) && /Last good checkpoint: .*step-\d+/.test(e.message),
  );
  const ck = fs.readdirSync(path.join(out, 'checkpoints'));
  assert.ok(ck.length >= 1);
  for (const c of ck) {
    const st = new SafetensorsFile(path.join(out, 'checkpoints', c, 'adapter_model.safetensors'));
    for (const n of st.names()) assert.ok(st.readF32(n).every(Number.isFinite), `${c}/${n} holds non-finite values`);
  }
});

test('the memory estimate is checked before loading: checkpointing turns on when it makes the run fit, else a refusal with numbers', async () => {
  const { estimateMemory } = await import('../../src/engine/tasks/estimate');
  const { loadSpec } = await import('../../src/engine/formats/config');
  const c = cfg({ out: path.join(root, 'mem1'), steps: 2, checkpointEvery: undefined });
  const est = (gc: boolean) =>
    estimateMemory({ spec: loadSpec(model), lora: c.lora, seqLen: c.seqLen, batch: c.batch, gradCheckpoint: gc }).bytes.total;
  const between = Math.floor((est(true) + est(false)) / 2);
  const lines: string[] = [];
  const r = await train({ ...c, maxMemory: between }, { events: { onLog: (l) => lines.push(l) } });
  assert.equal(r.status, 'completed');
  assert.ok(
    lines.some((l) => /turning on gradient checkpointing/.test(l)),
    lines.join('\n'),
  );
  assert.equal(JSON.parse(fs.readFileSync(path.join(root, 'mem1', 'run.json'), 'utf8')).config.gradCheckpoint, true);
  const out = path.join(root, 'mem2');
  await assert.rejects(
    train({ ...c, out, maxMemory: Math.floor(est(true) / 2) }),
    /this run needs about .* even with gradient checkpointing .* try a smaller --batch or --seq-len/,
  );
  assert.ok(!fs.existsSync(out));
});

test('bad training settings are refused before anything is written', async () => {
  const out = path.join(root, 'bad');
  await assert.rejects(train(cfg({ out, lora: defaultLoraConfig({ r: 0 }) })), /rank must be a positive integer, got 0/);
  await assert.rejects(train(cfg({ out, lr: -1 })), /--lr must be > 0, got -1/);
  await assert.rejects(train(cfg({ out, seqLen: 4 })), /--seq-len must be ≥ 8 and ≤ 32768, got 4/);
  assert.ok(!fs.existsSync(out));
});

test('merge gives a model whose loss equals base + adapter, and a weighted merge of two adapters', async () => {
  const a1 = path.join(root, 'fall', 'adapter');
  const a2 = path.join(root, 'full', 'adapter');
  const evalData = path.join(data, 'doc0.md');
  const be = new CpuBackend();
  const withAdapter = (dir: string) => {
    const o = openModel(model, be, dir);
    return evaluateFile(o.model, o.tokenizer, evalData, 64).loss;
  };
  const merged = path.join(root, 'merged');
  mergeAdapters({ model, adapters: [{ dir: a1, weight: 1 }], out: merged });
  const m = openModel(merged, be);
  assertClose([evaluateFile(m.model, m.tokenizer, evalData, 64).loss], [withAdapter(a1)], 1e-5, 1e-5, 'merged vs adapter');
  // weighted: W + 0.7·Δ1 + 0.3·Δ2 equals scaling each adapter's scale in memory
  const merged2 = path.join(root, 'merged2');
  mergeAdapters({
    model,
    adapters: [
      { dir: a1, weight: 0.7 },
      { dir: a2, weight: 0.3 },
    ],
    out: merged2,
    dtype: 'f32',
  });
  const o = openModel(model, be, a1);
  const { loadAdapter } = await import('../../src/engine/model/peft');
  const { mergeInPlace } = await import('../../src/engine/model/lora');
  const ad2 = loadAdapter(a2, o.model.spec, be);
  for (const mod of o.model.adapter!.modules.values()) mod.scale *= 0.7;
  for (const mod of ad2.modules.values()) mod.scale *= 0.3;
  mergeInPlace(o.model.adapter!, o.model.w, be, 1);
  mergeInPlace(ad2, o.model.w, be, 1);
  o.model.adapterEnabled = false;
  const m2 = openModel(merged2, be);
  assertClose(
    [evaluateFile(m2.model, m2.tokenizer, evalData, 64).loss],
    [evaluateFile(o.model, o.tokenizer, evalData, 64).loss],
    1e-5,
    1e-5,
    'weighted',
  );
  // the base is untouched and merging over it is refused
  assert.throws(() => mergeAdapters({ model, adapters: [{ dir: a1, weight: 1 }], out: model }), /outside the base model folder/);
  assert.throws(() => mergeAdapters({ model, adapters: [{ dir: a1, weight: 1 }], out: merged }), /exists and is not empty/);
});

test('a --seq-len past max_position_embeddings is a warning, as in transformers, not an error', async () => {
  const m = path.join(root, 'shortpos');
  fs.cpSync(model, m, { recursive: true });
  const c = JSON.parse(fs.readFileSync(path.join(m, 'config.json'), 'utf8'));
  fs.writeFileSync(path.join(m, 'config.json'), JSON.stringify({ ...c, max_position_embeddings: 16 }));
  const lines: string[] = [];
  const r = await train(cfg({ model: m, out: path.join(root, 'shortpos-run'), steps: 2 }), { events: { onLog: (l) => lines.push(l) } });
  assert.equal(r.status, 'completed');
  assert.ok(lines.some((l) => /warning: --seq-len 32 is longer than the model's max_position_embeddings \(16\)/.test(l)));
});

test('a model folder without tokenizer.json works on input_ids data and says why text data needs one', async () => {
  const m = path.join(root, 'notok');
  fs.cpSync(model, m, { recursive: true });
  fs.rmSync(path.join(m, 'tokenizer.json'));
  const ids = path.join(root, 'ids.jsonl');
  fs.writeFileSync(
    ids,
    [1, 2, 3].map((k) => JSON.stringify({ input_ids: Array.from({ length: 20 }, (_, i) => (i * k * 7) % 300) })).join('\n'),
  );
  const be = new CpuBackend();
  const o = openModel(m, be);
  assert.ok(evaluateFile(o.model, o.tokenizer, ids, Infinity).tokens === 57);
  assert.throws(
    () => evaluateFile(o.model, o.tokenizer, path.join(data, 'doc0.md'), Infinity),
    /notok: no tokenizer.json: text data needs the model's tokenizer \(pre-tokenized input_ids data works without one\)/,
  );
  const r = await train(cfg({ model: m, data: ids, out: path.join(root, 'notok-run'), steps: 2, evalSplit: 0 }));
  assert.equal(r.status, 'completed');
});

test("a tokenizer larger than the model's vocabulary is refused when it produces an id past it", async () => {
  const m = path.join(root, 'smallvocab');
  fs.cpSync(model, m, { recursive: true });
  const c = JSON.parse(fs.readFileSync(path.join(m, 'config.json'), 'utf8'));
  fs.writeFileSync(path.join(m, 'config.json'), JSON.stringify({ ...c, vocab_size: 100 }));
  assert.throws(
    () => openModel(m, new CpuBackend({ wasm: false })),
    /the model has no tensor|has shape \[384,64\], config.json implies \[100,64\]/,
  );
  // with matching tensors but a larger tokenizer
  const tok = JSON.parse(fs.readFileSync(path.join(m, 'tokenizer.json'), 'utf8'));
  tok.model.vocab['extra-token'] = 384;
  tok.added_tokens.push({
    id: 384,
    content: '<|extra|>',
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  fs.writeFileSync(path.join(m, 'config.json'), JSON.stringify(c));
  fs.writeFileSync(path.join(m, 'tokenizer.json'), JSON.stringify(tok));
  const o = openModel(m, new CpuBackend({ wasm: false })); // loads: input_ids data would work
  const f = path.join(root, 'extra.jsonl');
  fs.writeFileSync(f, JSON.stringify({ text: 'fine text' }) + '\n' + JSON.stringify({ text: 'uses <|extra|> here' }) + '\n');
  assert.throws(
    () => evaluateFile(o.model, o.tokenizer, f, Infinity),
    /the tokenizer produced token id 384 \(in extra.jsonl:2\), past the model's vocab_size 384/,
  );
});

test('an adapter made for another model is refused, naming the module', async () => {
  const other = path.join(root, 'other');
  makeTinyModel(other, { modelType: 'llama', hidden: 32, heads: 2, kvHeads: 1 });
  const be = new CpuBackend();
  assert.throws(
    () => openModel(other, be, path.join(root, 'fall', 'adapter')),
    /module "model\.layers\.0\.self_attn\.q_proj": lora_A is \[4,64\] and lora_B is \[64,4\], but this model needs \[r, 32\] and \[32, r\]/,
  );
  const deep = path.join(root, 'deep');
  makeTinyModel(deep, { modelType: 'llama', layers: 1 });
  assert.throws(
    () => openModel(deep, be, path.join(root, 'fall', 'adapter')),
    /module "model\.layers\.1\.self_attn\.q_proj" does not exist in this model/,
  );
});
