// `lorakit export job --target hf`: the rows are exactly lorakit's windows, lorakit_order.py is lorakit's order,
// train.py compiles and carries the run's settings (read back with Python's ast), the accelerate configs use only
// accelerate's keys, bad input is one line, and an adapter in PEFT's layout where train.py writes it is taken by
// info, eval, merge and the Adapters view. Where torch, transformers and peft are installed, train.py runs 2 steps.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeDatasets, makeTinyModel, sentences } from '../../src/engine/fixtures/model';
import { resolveTrainConfig, TrainConfig } from '../../src/engine/config';
import { prepareData, Windows } from '../../src/engine/data/dataset';
import { TextTokenizer } from '../../src/engine/formats/tokenizer';
import { jobData, JobRow } from '../../src/engine/tasks/export-job';
import { epochOrder } from '../../src/engine/tasks/train/schedule';
import { writeSafetensors } from '../../src/engine/formats/safetensors';
import { fromF32 } from '../../src/engine/core/dtype';
import { Rng } from '../../src/engine/core/rng';
import { listAdapters, newJobDir } from '../../src/extension/project';
import { SidecarClient, SidecarError } from '../../src/extension/client';
import { DEFAULT_SETTINGS } from '../../src/extension/controller';
import { lorakit, tmpDir, userError } from '../helpers';

const root = tmpDir('export-job');
const model = path.join(root, 'model');
const spec = makeTinyModel(model, { modelType: 'qwen2' });
const ds = makeDatasets(path.join(root, 'data'), 384);
const tok = TextTokenizer.load(model);
/** the python the tests run (LORAKIT_PYTHON: scripts/test.mjs points it at the test venv when there is one) */
const PY = process.env.LORAKIT_PYTHON ?? 'python3';
const python = spawnSync(PY, ['--version']).status === 0;
const hasYaml = python && spawnSync(PY, ['-c', 'import yaml']).status === 0;
const hf = python && spawnSync(PY, ['-c', 'import torch, transformers, peft']).status === 0;

/** rows back into lorakit's windows (inputs padded with `pad`, targets −1 where not scored) */
function toWindows(rows: JobRow[], T: number, pad: number): Windows {
  const inputs = new Int32Array(rows.length * T).fill(pad);
  const targets = new Int32Array(rows.length * T).fill(-1);
  rows.forEach((r, w) => {
    assert.equal(r.input_ids.length, r.labels.length);
    assert.ok(r.input_ids.length >= 2 && r.input_ids.length <= T + 1);
    assert.equal(r.labels[0], -100);
    for (let t = 0; t + 1 < r.input_ids.length; t++) {
      inputs[w * T + t] = r.input_ids[t];
      const l = r.labels[t + 1];
      assert.ok(l === -100 || l === r.input_ids[t + 1], 'a label is −100 or the token at its position');
      if (l !== -100) targets[w * T + t] = l;
    }
  });
  return { count: rows.length, T, inputs, targets };
}

const cfgFor = (data: string, more: Partial<Parameters<typeof resolveTrainConfig>[0]> = {}): TrainConfig =>
  resolveTrainConfig({ model, data, out: '-', seqLen: 24, evalSplit: 0.1, seed: 3, ...more });

test('the JSONL rows are exactly the windows lorakit trains and evaluates on, in every data form', () => {
  const txt = path.join(root, 'one.txt');
  fs.writeFileSync(txt, sentences().join(' '));
  const folder = path.join(root, 'folder');
  fs.mkdirSync(folder);
  sentences()
    .slice(0, 6)
    .forEach((s, i) => fs.writeFileSync(path.join(folder, `f${i}.md`), s));
  for (const [data, more] of [
    [ds.text, {}],
    [ds.completion, { seqLen: 17 }],
    [ds.messages, { evalSplit: 0.3, seed: 9 }],
    [ds.ids, {}],
    [txt, { evalSplit: 0.2 }], // one document: the eval windows are held out by window
    [folder, { evalSplit: 0 }],
  ] as const) {
    const cfg = cfgFor(data, more);
    const want = prepareData(data, tok, spec.vocabSize, cfg.seqLen, cfg.evalSplit, cfg.seed);
    const got = jobData(cfg, tok, spec.vocabSize);
    const pad = tok.eosId ?? 0;
    for (const split of ['train', 'eval'] as const) {
      const w = toWindows(got[split], cfg.seqLen, pad);
      assert.equal(w.count, want[split].count, `${data} ${split} count`);
      assert.deepEqual(w.inputs, want[split].inputs, `${data} ${split} inputs`);
      assert.deepEqual(w.targets, want[split].targets, `${data} ${split} targets`);
    }
    assert.equal(got.tokens, want.tokens);
  }
});

test('lorakit_order.py yields the trainer’s window order', { skip: !python && 'python3 is not installed' }, () => {
  const out = tmpDir('order');
  const r = lorakit('export', 'job', '--target', 'hf', '--model', model, '--data', ds.text, '--out', out, '--steps', '2');
  assert.equal(r.code, 0, r.err);
  for (const [n, seed, count] of [
    [7, 0, 30],
    [50, 2 ** 32 - 1, 120],
    [1, 5, 3],
    [13, 123456, 13],
  ]) {
    const want: number[] = [];
    for (let c = 0; c < count; c++) want.push(epochOrder(n, seed, Math.floor(c / n))[c % n]);
    const py = spawnSync(
      PY,
      ['-c', `import json; from lorakit_order import window_order; print(json.dumps(window_order(${n}, ${seed}, ${count})))`],
      {
        cwd: out,
        encoding: 'utf8',
      },
    );
    assert.equal(py.status, 0, py.stderr);
    assert.deepEqual(JSON.parse(py.stdout), want, `n ${n} seed ${seed}`);
  }
});

/** keyword arguments of train.py's calls and its module constants, read with Python's ast */
const AST_DUMP = `
import ast, json, sys
tree = ast.parse(open(sys.argv[1]).read())
def value(node):
    try:
        return ast.literal_eval(node)
    except ValueError:
        return {"expr": ast.unparse(node)}
calls = {}
for node in ast.walk(tree):
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("LoraConfig", "TrainingArguments", "BitsAndBytesConfig"):
        calls[node.func.id] = {k.arg: value(k.value) for k in node.keywords}
consts = {t.id: value(n.value) for n in tree.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name) and t.id.isupper()}
print(json.dumps({"calls": calls, "consts": consts}))
`;

test('export job: train.py compiles and carries the run’s settings; the files are what they say', () => {
  const out = path.join(tmpDir('job'), 'job');
  const flags = ['--rank', '4', '--alpha', '12', '--dropout', '0.1', '--targets', 'q_proj,v_proj,down_proj', '--rslora'];
  flags.push('--quant', 'nf4', '--double-quant', '--blocksize', '128', '--seq-len', '20', '--batch', '3', '--grad-accum', '2');
  flags.push('--lr', '0.0003', '--warmup', '0.25', '--schedule', 'linear', '--weight-decay', '0.01', '--max-grad-norm', '0.5');
  flags.push(
    '--epochs',
    '2',
    '--eval-split',
    '0.15',
    '--eval-every',
    '3',
    '--seed',
    '7',
    '--checkpoint-every',
    '4',
    '--keep-checkpoints',
    '2',
  );
  const r = lorakit(
    'export',
    'job',
    '--target',
    'hf',
    '--model',
    model,
    '--data',
    ds.completion,
    '--out',
    out,
    '--gpus',
    '4',
    ...flags,
    '--json',
  );
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /warning: --blocksize 128: transformers quantizes in blocks of 64/);
  const res = JSON.parse(r.out);
  const names = ['train.py', 'lorakit_order.py', 'data/train.jsonl', 'data/eval.jsonl', 'accelerate_ddp.yaml', 'accelerate_fsdp.yaml'];
  for (const f of [...names, 'job.json', 'requirements.txt', 'README.md']) assert.ok(fs.existsSync(path.join(out, f)), f);
  assert.deepEqual(fs.readdirSync(path.dirname(out)), ['job'], 'no temporary folder is left');

  const cfg = cfgFor(ds.completion, {
    rank: 4,
    alpha: 12,
    dropout: 0.1,
    targets: 'q_proj,v_proj,down_proj',
    rslora: true,
    quant: 'nf4',
    doubleQuant: true,
    blocksize: 128,
    seqLen: 20,
    batch: 3,
    gradAccum: 2,
    lr: 0.0003,
    warmup: 0.25,
    schedule: 'linear',
    weightDecay: 0.01,
    maxGradNorm: 0.5,
    epochs: 2,
    evalSplit: 0.15,
    evalEvery: 3,
    seed: 7,
    checkpointEvery: 4,
    keepCheckpoints: 2,
  });
  // the data: the rows of the run's windows, line by line
  const data = jobData(cfg, tok, spec.vocabSize);
  const lines = (f: string) =>
    fs
      .readFileSync(path.join(out, 'data', f), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
  assert.deepEqual(lines('train.jsonl'), data.train);
  assert.deepEqual(lines('eval.jsonl'), data.eval);
  const totalSteps = Math.ceil((2 * data.train.length) / 6);
  assert.equal(res.totalSteps, totalSteps);
  assert.equal(res.warmupSteps, Math.ceil(0.25 * totalSteps));

  if (!python) return;
  const c = spawnSync(PY, ['-m', 'py_compile', 'train.py', 'lorakit_order.py'], { cwd: out, encoding: 'utf8' });
  assert.equal(c.status, 0, c.stderr);
  const a = spawnSync(PY, ['-c', AST_DUMP, path.join(out, 'train.py')], { encoding: 'utf8' });
  assert.equal(a.status, 0, a.stderr);
  const { calls, consts } = JSON.parse(a.stdout);
  assert.deepEqual(consts, {
    MODEL: path.resolve(model),
    SEQ_LEN: 20,
    BATCH: 3,
    GRAD_ACCUM: 2,
    TOTAL_STEPS: totalSteps,
    SEED: 7,
    SEQUENTIAL: false,
    QLORA: true,
    HERE: consts.HERE,
  });
  const lora = calls.LoraConfig;
  assert.deepEqual(
    { r: lora.r, alpha: lora.lora_alpha, dropout: lora.lora_dropout, targets: lora.target_modules, rslora: lora.use_rslora },
    { r: 4, alpha: 12, dropout: 0.1, targets: ['q_proj', 'v_proj', 'down_proj'], rslora: true },
  );
  assert.equal(lora.bias, 'none');
  const ta = calls.TrainingArguments;
  const want: Record<string, unknown> = {
    max_steps: { expr: 'TOTAL_STEPS' },
    learning_rate: 0.0003,
    lr_scheduler_type: 'linear',
    warmup_steps: Math.ceil(0.25 * totalSteps),
    weight_decay: 0.01,
    max_grad_norm: 0.5,
    adam_beta1: 0.9,
    adam_beta2: 0.999,
    adam_epsilon: 1e-8,
    eval_strategy: 'steps',
    eval_steps: 3,
    save_steps: 4,
    save_total_limit: 2,
    gradient_checkpointing: false,
    seed: { expr: 'SEED' },
    per_device_eval_batch_size: { expr: 'BATCH' },
  };
  for (const [k, v] of Object.entries(want)) assert.deepEqual(ta[k], v, `TrainingArguments.${k}`);
  const bnb = calls.BitsAndBytesConfig;
  assert.deepEqual([bnb.load_in_4bit, bnb.bnb_4bit_quant_type, bnb.bnb_4bit_use_double_quant], [true, 'nf4', true]);

  // the accelerate configs: YAML with accelerate's keys and values only (accelerate refuses unknown keys)
  if (!hasYaml) return;
  const y = spawnSync(
    PY,
    [
      '-c',
      'import json, sys, yaml; print(json.dumps([yaml.safe_load(open(f)) for f in sys.argv[1:]]))',
      'accelerate_ddp.yaml',
      'accelerate_fsdp.yaml',
    ],
    { cwd: out, encoding: 'utf8' },
  );
  assert.equal(y.status, 0, y.stderr);
  const [ddp, fsdp] = JSON.parse(y.stdout);
  // accelerate/commands/config/config_args.py: BaseConfig and ClusterConfig fields (those used here)
  const KEYS = ['compute_environment', 'distributed_type', 'mixed_precision', 'use_cpu', 'debug', 'num_processes', 'machine_rank'];
  KEYS.push('num_machines', 'gpu_ids', 'main_process_ip', 'main_process_port', 'rdzv_backend', 'same_network', 'fsdp_config');
  const FSDP_KEYS = ['fsdp_auto_wrap_policy', 'fsdp_transformer_layer_cls_to_wrap', 'fsdp_sharding_strategy', 'fsdp_backward_prefetch'];
  FSDP_KEYS.push('fsdp_forward_prefetch', 'fsdp_offload_params', 'fsdp_state_dict_type', 'fsdp_cpu_ram_efficient_loading');
  FSDP_KEYS.push('fsdp_sync_module_states', 'fsdp_use_orig_params');
  for (const conf of [ddp, fsdp]) {
    for (const k of Object.keys(conf)) assert.ok(KEYS.includes(k), `unknown accelerate key ${k}`);
    assert.equal(conf.compute_environment, 'LOCAL_MACHINE');
    assert.equal(conf.num_processes, 4);
    assert.equal(conf.num_machines, 1);
    assert.ok(['no', 'fp16', 'bf16'].includes(conf.mixed_precision));
    assert.equal(conf.rdzv_backend, 'static');
  }
  assert.equal(ddp.distributed_type, 'MULTI_GPU');
  assert.equal(fsdp.distributed_type, 'FSDP');
  for (const k of Object.keys(fsdp.fsdp_config)) assert.ok(FSDP_KEYS.includes(k), `unknown fsdp key ${k}`);
  assert.equal(fsdp.fsdp_config.fsdp_transformer_layer_cls_to_wrap, 'Qwen2DecoderLayer');
  assert.equal(fsdp.fsdp_config.fsdp_auto_wrap_policy, 'TRANSFORMER_BASED_WRAP');
  assert.ok(['FULL_SHARD', 'SHARD_GRAD_OP', 'NO_SHARD', 'HYBRID_SHARD'].includes(fsdp.fsdp_config.fsdp_sharding_strategy));
  assert.ok(['FULL_STATE_DICT', 'SHARDED_STATE_DICT'].includes(fsdp.fsdp_config.fsdp_state_dict_type));
});

test('export job: bad input is one line naming the file or the flag', () => {
  const out = path.join(tmpDir('bad'), 'job');
  userError(
    lorakit('export', 'job', '--target', 'hf', '--model', model, '--data', path.join(root, 'none.jsonl'), '--out', out),
    path.join(root, 'none.jsonl'),
    /not found/,
  );
  const bad = path.join(root, 'bad.jsonl');
  fs.writeFileSync(bad, '{"text": "fine"}\n{nope\n');
  userError(lorakit('export', 'job', '--target', 'hf', '--model', model, '--data', bad, '--out', out), bad, /line 2: not valid JSON/);
  assert.ok(!fs.existsSync(out), 'nothing written');
  const full = tmpDir('full');
  fs.writeFileSync(path.join(full, 'keep.txt'), 'mine');
  userError(lorakit('export', 'job', '--target', 'hf', '--model', model, '--data', ds.text, '--out', full), full, /not empty/);
  assert.equal(lorakit('export', 'job', '--target', 'tpu', '--model', model, '--data', ds.text, '--out', out).code, 2);
  assert.equal(lorakit('export', 'job', '--model', model, '--data', ds.text, '--out', out).code, 2);
  assert.equal(lorakit('export', 'job', '--target', 'hf', '--model', model, '--data', ds.text, '--out', out, '--rank', '0').code, 2);
  const none = lorakit('export');
  assert.equal(none.code, 2);
  assert.match(none.err, /which export\? \(gguf, job\)/);
  assert.match(lorakit('export', 'tpu').err, /unknown export target "tpu" \(known: gguf, job\)/);
  assert.equal(lorakit('export', 'job', '--help').code, 0);
});

test('the sidecar exports the panel’s run settings as a job (what Export Training Job… asks for)', async () => {
  const logs: string[] = [];
  const client = new SidecarClient(path.resolve('dist/sidecar.js'), { onEvent: () => {}, onExit: () => {}, log: (l) => logs.push(l) });
  try {
    const project = tmpDir('ext-job');
    const out = newJobDir(project, new Date('2025-02-03T04:05:06Z'));
    assert.equal(out, path.join(project, '.lorakit', 'jobs', '2025-02-03T04-05-06-000Z'));
    const settings = { ...DEFAULT_SETTINGS, model, data: ds.messages, rank: 6, seqLen: 32, steps: 3 };
    const r = await client.request('export/job', { settings, out });
    assert.deepEqual([r.out, r.totalSteps, r.warnings], [out, 3, []]);
    const job = JSON.parse(fs.readFileSync(path.join(out, 'job.json'), 'utf8'));
    assert.deepEqual([job.config.lora.r, job.config.seqLen, job.config.steps, job.config.data], [6, 32, 3, ds.messages]);
    assert.equal(
      r.trainWindows,
      fs
        .readFileSync(path.join(out, 'data', 'train.jsonl'), 'utf8')
        .trim()
        .split('\n').length,
    );
    const missing = path.join(project, 'nope.jsonl');
    await assert.rejects(
      client.request('export/job', { settings: { ...settings, data: missing }, out: newJobDir(project) }),
      (e: SidecarError) => e.code === 'user_error' && e.message.includes(missing),
    );
  } finally {
    client.stop();
  }
});

/** an adapter as PEFT (0.13+) saves it, where train.py saves it, and run.json + metrics.jsonl as train.py writes them */
function writePeftRun(runDir: string, dtype: 'F32' | 'BF16'): void {
  const adapter = path.join(runDir, 'adapter');
  fs.mkdirSync(adapter, { recursive: true });
  const rng = new Rng(1);
  const targets = ['q_proj', 'v_proj', 'down_proj'];
  const shapes: Record<string, [number, number, string]> = {
    q_proj: [spec.heads * spec.headDim, spec.hidden, 'self_attn'],
    v_proj: [spec.kvHeads * spec.headDim, spec.hidden, 'self_attn'],
    down_proj: [spec.hidden, spec.intermediate, 'mlp'],
  };
  const tensors = [];
  for (let l = 0; l < spec.layers; l++)
    for (const n of targets) {
      const [outF, inF, block] = shapes[n];
      const key = `base_model.model.model.layers.${l}.${block}.${n}`;
      const rand = (k: number) => Float32Array.from({ length: k }, () => rng.uniform(-0.05, 0.05));
      tensors.push({ name: `${key}.lora_A.weight`, dtype, shape: [4, inF], data: fromF32(dtype, rand(4 * inF)) });
      tensors.push({ name: `${key}.lora_B.weight`, dtype, shape: [outF, 4], data: fromF32(dtype, rand(outF * 4)) });
    }
  writeSafetensors(path.join(adapter, 'adapter_model.safetensors'), tensors, { format: 'pt' });
  const config = {
    alpha_pattern: {},
    auto_mapping: null,
    base_model_name_or_path: '/cluster/models/tiny',
    bias: 'none',
    corda_config: null,
    eva_config: null,
    exclude_modules: null,
    fan_in_fan_out: false,
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: 12,
    lora_bias: false,
    lora_dropout: 0.1,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    peft_type: 'LORA',
    r: 4,
    rank_pattern: {},
    revision: null,
    target_modules: ['down_proj', 'v_proj', 'q_proj'],
    task_type: 'CAUSAL_LM',
    trainable_token_indices: null,
    use_dora: false,
    use_rslora: true,
  };
  fs.writeFileSync(path.join(adapter, 'adapter_config.json'), JSON.stringify(config, null, 2));
  fs.writeFileSync(path.join(adapter, 'README.md'), '---\nlibrary_name: peft\n---\n');
  const rows = [
    { step: 0, eval_loss: 5.9, eval_perplexity: Math.exp(5.9) },
    { step: 1, total_steps: 2, loss: 6.0, lr: 0.0003, grad_norm: 1.5 },
    { step: 2, total_steps: 2, loss: 5.5, lr: 0.00015, grad_norm: 1.2 },
    { step: 2, eval_loss: 5.4, eval_perplexity: Math.exp(5.4) },
  ];
  fs.writeFileSync(path.join(runDir, 'metrics.jsonl'), rows.map((r) => JSON.stringify(r) + '\n').join(''));
  const run = { config: { data: ds.text }, trainer: 'transformers', backend: 'transformers on 1 process(es), cpu', model: { dir: model } };
  const more = { data: { trainWindows: 9, evalWindows: 1 }, totalSteps: 2, started: '2025-01-01T00:00:00Z', status: 'completed' };
  fs.writeFileSync(path.join(runDir, 'run.json'), JSON.stringify({ ...run, ...more, steps: 2, finalLoss: 5.5, finalEvalLoss: 5.4 }));
}

test('an adapter in PEFT’s layout at output/adapter: info, eval, merge and the Adapters view take it as is', () => {
  const job = tmpDir('back');
  for (const dtype of ['F32', 'BF16'] as const) {
    const runDir = path.join(job, dtype, 'output');
    writePeftRun(runDir, dtype);
    const adapter = path.join(runDir, 'adapter');
    const info = lorakit('info', '--model', adapter, '--json');
    assert.equal(info.code, 0, info.err);
    const a = JSON.parse(info.out);
    assert.deepEqual([a.kind, a.config.r, a.config.alpha, a.config.useRslora, a.modules], ['adapter', 4, 12, true, 3 * spec.layers]);
    const run = JSON.parse(lorakit('info', '--model', runDir, '--json').out);
    assert.deepEqual([run.kind, run.status, run.steps, run.lastEval.eval_loss, run.adapter], ['run', 'completed', 2, 5.4, adapter]);
    const base = JSON.parse(lorakit('eval', '--model', model, '--data', ds.text, '--json').out);
    const withA = lorakit('eval', '--model', model, '--adapter', adapter, '--data', ds.text, '--json');
    assert.equal(withA.code, 0, withA.err);
    assert.notEqual(JSON.parse(withA.out).loss, base.loss, 'the adapter changes the model');
    const merged = path.join(job, dtype, 'merged');
    const m = lorakit('merge', '--model', model, '--adapter', adapter, '--out', merged, '--json');
    assert.equal(m.code, 0, m.err);
    const after = JSON.parse(lorakit('eval', '--model', merged, '--data', ds.text, '--json').out);
    assert.ok(Math.abs(after.loss - JSON.parse(withA.out).loss) < 1e-4, 'merged = base + adapter');
  }
  // copied into a project's .lorakit/runs/, the Adapters view lists it with its losses
  const project = tmpDir('project');
  fs.cpSync(path.join(job, 'F32', 'output'), path.join(project, '.lorakit', 'runs', 'cluster-run'), { recursive: true });
  const [listed] = listAdapters(project);
  assert.deepEqual([listed.run, listed.rank, listed.steps, listed.trainLoss, listed.evalLoss], ['cluster-run', 4, 2, 5.5, 5.4]);
});

test(
  'the exported train.py runs 2 steps on the CPU and lorakit loads its adapter',
  {
    skip: !hf && `needs ${PY} with torch, transformers and peft (ensure-test-deps makes .test-deps/py with pip where pip can install them)`,
  },
  () => {
    const out = path.join(tmpDir('run'), 'job');
    const r = lorakit(
      'export',
      'job',
      '--target',
      'hf',
      '--model',
      model,
      '--data',
      ds.completion,
      '--out',
      out,
      '--steps',
      '2',
      '--seq-len',
      '32',
    );
    assert.equal(r.code, 0, r.err);
    const t = spawnSync(PY, ['train.py', '--cpu'], { cwd: out, encoding: 'utf8', timeout: 600_000 });
    assert.equal(t.status, 0, t.stderr);
    const adapter = path.join(out, 'output', 'adapter');
    const info = lorakit('info', '--model', adapter, '--json');
    assert.equal(info.code, 0, info.err);
    assert.equal(JSON.parse(info.out).config.r, 8);
    const run = JSON.parse(lorakit('info', '--model', path.join(out, 'output'), '--json').out);
    assert.equal(run.steps, 2);
    assert.equal(lorakit('eval', '--model', model, '--adapter', adapter, '--data', ds.completion).code, 0);
  },
);
