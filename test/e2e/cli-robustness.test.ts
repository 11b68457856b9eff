// Issue 10's command-line items, each with the reproducer it was filed with: long inputs (windows, cut prompts,
// bounded memory), progress, messages, refused bad values, full disks and read-only folders, the base-model guard,
// non-finite weights and checkpoints. Every bad input is one line naming the file, exit 1 (or 2 for a flag).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { SafetensorsFile, writeSafetensors } from '../../src/engine/formats/safetensors';
import { makeDatasets, makeTinyModel } from '../../src/engine/fixtures/model';
import { lorakit, tmpDir, userError } from '../helpers';

const root = tmpDir('cli10');
const model = path.join(root, 'model');
makeTinyModel(model, { modelType: 'qwen2' });
const ds = makeDatasets(path.join(root, 'data'), 384);

/** a copy of the model with config.json changed */
function modelWith(name: string, change: Record<string, unknown>): string {
  const dir = path.join(root, name);
  fs.cpSync(model, dir, { recursive: true });
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, ...change }));
  return dir;
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const usage = (r: ReturnType<typeof lorakit>, re: RegExp) => {
  assert.equal(r.code, 2, `exit status (stderr: ${r.err})`);
  assert.match(r.err.split('\n')[0], re);
};

// 12, 13: a long text is scored in windows of the model's context, with progress on stderr; a long prompt is cut
test('eval: long examples in windows of the context (said so), progress on stderr, zero scored tokens refused', () => {
  const short = modelWith('ctx64', { max_position_embeddings: 64 });
  const long = path.join(root, 'long.txt');
  fs.writeFileSync(long, 'the quick brown fox jumps over the lazy dog. '.repeat(60));
  const r = lorakit('eval', '--model', short, '--data', long);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /scored in 64-token windows \(the model's context; set it with --seq-len\)/);
  assert.match(r.err, /^eval: \d+\/\d+ pieces, \d+ tokens scored/m);
  const j = JSON.parse(lorakit('eval', '--model', short, '--data', long, '--json').out);
  assert.equal(j.window, 64);
  assert.ok(j.sequences > 1 && j.cutExamples === 1, JSON.stringify(j));
  // the default window is the same as --seq-len 64: every token after the first scored once
  const s = JSON.parse(lorakit('eval', '--model', short, '--data', long, '--seq-len', '64', '--json').out);
  assert.equal(s.loss, j.loss);
  assert.equal(s.tokens, j.tokens);
  // 28: nothing to score is an error, not loss NaN with exit 0
  const none = path.join(root, 'unscored.jsonl');
  fs.writeFileSync(none, '{"input_ids":[5,6,7],"labels":[-100,-100,-100]}\n');
  userError(lorakit('eval', '--model', model, '--data', none), none, /no tokens to learn from: nothing in the data is scored/);
});

test('generate: a prompt longer than the context keeps its end and says so; --max-new-tokens 0 is an empty result', () => {
  const short = modelWith('ctx32', { max_position_embeddings: 32 });
  const g = lorakit('generate', '--model', short, '--prompt', 'hello world '.repeat(2000), '--max-new-tokens', '4', '--json');
  assert.equal(g.code, 0, g.err);
  const r = JSON.parse(g.out);
  assert.equal(r.promptCut, true);
  assert.ok(r.promptTokens <= 28, `${r.promptTokens} prompt tokens`);
  assert.match(g.err, /the prompt is longer than the model's context of 32 tokens .*only its last \d+ tokens were used/);
  // 32: --max-new-tokens 0 is an empty completion, not an internal error
  const z = lorakit('generate', '--model', model, '--prompt', 'hi', '--max-new-tokens', '0', '--json');
  assert.equal(z.code, 0, z.err);
  assert.deepEqual([JSON.parse(z.out).text, JSON.parse(z.out).newTokens], ['', 0]);
  usage(
    lorakit('generate', '--model', short, '--prompt', 'hi', '--max-new-tokens', '32'),
    /--max-new-tokens 32 leaves no room for the prompt/,
  );
  usage(lorakit('generate', '--model', short, '--prompt', 'hi', '--max-new-tokens', '-1'), /--max-new-tokens must be a whole number ≥ 0/);
});

// 16: messages that say what the thing is, and what was read and written
test('messages: a file or an adapter as --model; merge says what it read and what it wrote', () => {
  userError(
    lorakit('train', '--model', 'README.md', '--data', ds.text, '--out', path.join(root, 'never'), '--steps', '1'),
    'README.md',
    /is a file, not a model folder/,
  );
  const run = path.join(root, 'msgrun');
  assert.equal(lorakit('train', '--model', model, '--data', ds.text, '--out', run, '--steps', '1', '--seq-len', '16').code, 0);
  const adapter = path.join(run, 'adapter');
  userError(
    lorakit('train', '--model', adapter, '--data', ds.text, '--out', path.join(root, 'never'), '--steps', '1'),
    adapter,
    new RegExp(
      `this is a PEFT adapter folder, not a model: pass it with --adapter, and its base model \\(adapter_config.json names ${esc(model)}\\) with --model`,
    ),
  );
  const m = lorakit('merge', '--model', model, '--adapter', adapter, '--out', path.join(root, 'merged16'));
  assert.equal(m.code, 0, m.err);
  assert.match(m.out, new RegExp(`^read the base ${esc(model)} \\(full precision; unchanged\\) and 1 adapter\\(s\\)`, 'm'));
  assert.match(m.out, /^wrote the merged model to .*merged16 /m);
  assert.doesNotMatch(m.out, /into /);
});

// 17: --steps 1 used to run its only step at lr 0 (a 3% warm-up rounded up to the whole run)
test('--steps 1 runs at --lr: the warm-up never covers the whole run, and a long one says so', () => {
  const run = path.join(root, 'steps1');
  const r = lorakit('train', '--model', model, '--data', ds.text, '--out', run, '--steps', '1', '--seq-len', '16', '--lr', '1e-3');
  assert.equal(r.code, 0, r.err);
  const row = fs
    .readFileSync(path.join(run, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .find((x) => x.lr !== undefined);
  assert.equal(row.lr, 1e-3);
  assert.match(r.err, /note: a warm-up of 1 step\(s\) would cover the whole run of 1; warming up for 0/);
  assert.match(lorakit('train', '--help').out, /at most all steps but the last/);
});

// 22: adapter_config.json values that change the numbers are checked, each error naming the field
test('adapter_config.json: bad lora_alpha, lora_dropout, r refused with the field named', () => {
  const run = path.join(root, 'msgrun');
  for (const [field, value] of [
    ['lora_alpha', 'abc'],
    ['lora_alpha', 1e308],
    ['lora_alpha', -16],
    ['lora_alpha', null],
    ['lora_alpha', [16]],
    ['lora_dropout', ''],
    ['r', 2.5],
    ['rank_pattern', { q_proj: 0 }],
  ] as const) {
    const a = path.join(root, `bad-adapter-${field}`);
    fs.rmSync(a, { recursive: true, force: true });
    fs.cpSync(path.join(run, 'adapter'), a, { recursive: true });
    const f = path.join(a, 'adapter_config.json');
    fs.writeFileSync(f, JSON.stringify({ ...JSON.parse(fs.readFileSync(f, 'utf8')), [field]: value }));
    userError(
      lorakit('eval', '--model', model, '--adapter', a, '--data', ds.text),
      f,
      new RegExp(`"${field}" must be .*, got ${esc(JSON.stringify(value))}$`),
    );
  }
});

// 33: ranks past a matrix's smaller side, seeds out of range
test('--rank larger than a targeted matrix and --seed out of 0..2^32-1 are refused as bad usage', () => {
  const out = path.join(root, 'never33');
  usage(
    lorakit('train', '--model', model, '--data', ds.text, '--out', out, '--steps', '1', '--rank', '1000'),
    /^lorakit train: --rank 1000 is larger than model\.layers\.0\.self_attn\.q_proj \(64 × 64\) allows: at most 64$/,
  );
  usage(
    lorakit('train', '--model', model, '--data', ds.text, '--out', out, '--steps', '1', '--rank', '48', '--targets', 'k_proj'),
    /k_proj \(32 × 64\) allows: at most 32/,
  );
  usage(
    lorakit('train', '--model', model, '--data', ds.text, '--out', out, '--steps', '1', '--seed', '-1'),
    /^lorakit train: --seed must be ≥ 0 and ≤ 4294967295, got -1$/,
  );
  usage(
    lorakit('train', '--model', model, '--data', ds.text, '--out', out, '--steps', '1', '--seed', '1e300'),
    /^lorakit train: --seed must be ≥ 0 and ≤ 4294967295/,
  );
  assert.ok(!fs.existsSync(out));
});

/** rewrite one tensor of a safetensors file (all others as they are) */
function rewriteTensor(file: string, name: string, change: (data: any) => any): void {
  const f = new SafetensorsFile(file);
  const tensors = f.names().map((n) => {
    const t = f.read(n);
    const data = n === name ? change(t.data.slice()) : t.data.slice();
    return { name: n, dtype: t.dtype, shape: n === name && data.length !== t.data.length ? [data.length] : [...t.shape], data };
  });
  writeSafetensors(file, tensors, f.metadata);
}

// 28: NaN weights: eval and generate name the tensor; train blames the weights, not the learning rate
test('non-finite weights: eval, generate and train name the tensor at fault', () => {
  const bad = path.join(root, 'nanmodel');
  fs.cpSync(model, bad, { recursive: true });
  const st = path.join(bad, 'model.safetensors');
  rewriteTensor(st, 'model.layers.0.mlp.down_proj.weight', (d: Float32Array) => ((d[3] = NaN), d));
  userError(
    lorakit('eval', '--model', bad, '--data', ds.text),
    st,
    /the eval loss is not finite: tensor "model\.layers\.0\.mlp\.down_proj\.weight" holds NaN/,
  );
  userError(
    lorakit('generate', '--model', bad, '--prompt', 'hello', '--max-new-tokens', '2'),
    st,
    /the logits is not finite: tensor "model\.layers\.0\.mlp\.down_proj\.weight" holds NaN/,
  );
  userError(
    lorakit('train', '--model', bad, '--data', ds.text, '--out', path.join(root, 'nanrun'), '--steps', '2', '--seq-len', '16'),
    st,
    /tensor "model\.layers\.0\.mlp\.down_proj\.weight" of the model holds NaN; the base weights are damaged \(not a learning-rate problem\)/,
  );
});

// 33: a double-quantized weight's nested_offset must be a finite float32
test('bnb quant_state: a nested_offset of ±Infinity is refused naming the weight', () => {
  const q = path.join(root, 'q4dq');
  assert.equal(lorakit('quantize', '--model', model, '--out', q, '--double-quant').code, 0);
  const st = path.join(q, 'model.safetensors');
  const f = new SafetensorsFile(st);
  const stateName = f.names().find((n) => n.startsWith('model.layers.0.self_attn.q_proj.weight.quant_state.'))!;
  for (const offset of ['1e999', '-1e999', '1e39']) {
    fs.copyFileSync(path.join(root, 'q4dq', 'model.safetensors'), st + '.orig');
    rewriteTensor(st, stateName, (d: Uint8Array) => {
      const j = Buffer.from(d)
        .toString('utf8')
        .replace(/"nested_offset": [^,}]+/, `"nested_offset": ${offset}`);
      return new Uint8Array(Buffer.from(j));
    });
    userError(lorakit('eval', '--model', q, '--data', ds.text), 'q_proj', /nested_offset .* is not a finite float32/);
    fs.renameSync(st + '.orig', st);
  }
});

// 27: the base and the model folder are never written to, by any spelling
test('outputs inside the base model (through a symlink too), or over a foreign folder, are refused', () => {
  const link = path.join(root, 'baselink');
  fs.symlinkSync(model, link);
  const adapter = path.join(root, 'msgrun', 'adapter');
  const sub = path.join(model, 'sub');
  userError(lorakit('merge', '--model', link, '--adapter', adapter, '--out', sub), sub, /must be written outside the base model folder/);
  userError(
    lorakit('merge', '--model', model, '--adapter', adapter, '--out', path.join(link, 'sub'), '--requantize'),
    path.join(link, 'sub'),
    /must be written outside the base model folder/,
  );
  userError(lorakit('quantize', '--model', link, '--out', sub), sub, /outside the source folder/);
  const trainTo = (out: string) => lorakit('train', '--model', link, '--data', ds.text, '--out', out, '--steps', '1', '--seq-len', '16');
  userError(trainTo(model), model, /--out must be outside the model folder/);
  userError(trainTo(sub), sub, /--out must be outside the model folder/);
  userError(trainTo(root), root, /--out must be outside the model folder .*must not contain it/);
  const foreign = path.join(root, 'foreign');
  fs.mkdirSync(foreign);
  fs.writeFileSync(path.join(foreign, 'notes.txt'), 'mine');
  userError(trainTo(foreign), foreign, /is not empty and is not a lorakit run \(it holds "notes\.txt"\)/);
  assert.ok(!fs.existsSync(sub));
  assert.deepEqual(fs.readdirSync(foreign), ['notes.txt']);
});

// 30: checkpoints: trainer_state.json checked, a damaged newest one falls back, a completed run is left alone,
// half-written ones removed
test('--resume: bad trainer_state.json and truncated checkpoints fall back to an intact one; a completed run is left as is', () => {
  const run = path.join(root, 'ckrun');
  const args = [
    'train',
    '--model',
    model,
    '--data',
    ds.text,
    '--out',
    run,
    '--steps',
    '4',
    '--seq-len',
    '16',
    '--checkpoint-every',
    '1',
    '--keep-checkpoints',
    '3',
  ];
  assert.equal(lorakit(...args).code, 0);
  // completed: --resume says so and rewrites nothing
  const adapterFile = path.join(run, 'adapter', 'adapter_model.safetensors');
  const before = fs.statSync(adapterFile).mtimeMs;
  const done = lorakit(...args, '--resume');
  assert.equal(done.code, 0, done.err);
  assert.match(done.err, /the run is already complete \(4 of 4 steps\).*Nothing to do/);
  assert.equal(fs.statSync(adapterFile).mtimeMs, before);
  // interrupted at step 4: no adapter, status cancelled
  const interrupt = () => {
    fs.rmSync(path.join(run, 'adapter'), { recursive: true, force: true });
    const j = JSON.parse(fs.readFileSync(path.join(run, 'run.json'), 'utf8'));
    fs.writeFileSync(path.join(run, 'run.json'), JSON.stringify({ ...j, status: 'cancelled' }));
  };
  interrupt();
  const state = (s: number) => path.join(run, 'checkpoints', `step-${s}`, 'trainer_state.json');
  const good4 = fs.readFileSync(state(4), 'utf8');
  for (const step of [1e9, -5, 2.5]) {
    fs.writeFileSync(state(4), JSON.stringify({ ...JSON.parse(good4), step }));
    const r = lorakit(...args, '--resume', '--json');
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, new RegExp(`falling back to .*step-3: the newer checkpoint is damaged \\(.*step-4.*trainer_state\\.json: "step"`));
    assert.match(r.err, /resumed from .*step-3 \(step 3 of 4\)/);
    interrupt();
    fs.writeFileSync(state(4), good4);
  }
  // a truncated adapter in the newest checkpoint; and a half-written checkpoint left by a killed process
  const st = path.join(run, 'checkpoints', 'step-4', 'adapter_model.safetensors');
  fs.truncateSync(st, fs.statSync(st).size - 64);
  const stale = path.join(run, 'checkpoints', 'step-5.999999.0.tmp');
  fs.mkdirSync(stale);
  const r = lorakit(...args, '--resume', '--json');
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /falling back to .*step-3: the newer checkpoint is damaged/);
  assert.match(r.err, /removed 1 half-written checkpoint\(s\) left by a killed run: step-5\.999999\.0\.tmp/);
  assert.ok(!fs.existsSync(stale));
  assert.equal(JSON.parse(r.out).steps, 4);
  // every checkpoint damaged: one line, exit 1
  interrupt();
  for (const s of [2, 3, 4]) fs.writeFileSync(state(s), '{"step": -5}');
  userError(lorakit(...args, '--resume'), run, /no checkpoint of this run loads whole/);
});

// 26: a full disk and a read-only folder: one line naming the file, the reason and what was kept
test('a full disk or a read-only folder is one line naming the file and what was kept', (t) => {
  const mnt = path.join(root, 'small');
  fs.mkdirSync(mnt);
  const mount = (...a: string[]) => spawnSync('mount', a, { encoding: 'utf8' });
  if (process.getuid?.() !== 0 || mount('-t', 'tmpfs', '-o', 'size=700k', 'tmpfs', mnt).status !== 0)
    return t.skip('needs root to mount a small tmpfs');
  try {
    const run = path.join(mnt, 'run');
    const r = lorakit(
      'train',
      '--model',
      model,
      '--data',
      ds.text,
      '--out',
      run,
      '--steps',
      '8',
      '--seq-len',
      '16',
      '--checkpoint-every',
      '1',
      '--keep-checkpoints',
      '8',
    );
    userError(
      r,
      run,
      /cannot write: the disk is full \(ENOSPC\); the previous checkpoint, .*step-\d+, is kept whole \(--resume continues from it\)/,
    );
    assert.doesNotMatch(r.err, /internal error| {4}at /);
    fs.rmSync(run, { recursive: true, force: true });
    assert.equal(mount('-o', 'remount,size=300k', mnt).status, 0); // less than the merged model
    const m = lorakit('merge', '--model', model, '--adapter', path.join(root, 'msgrun', 'adapter'), '--out', path.join(mnt, 'merged'));
    userError(m, path.join(mnt, 'merged'), /cannot write: the disk is full \(ENOSPC\); nothing was written/);
    assert.deepEqual(fs.readdirSync(mnt), [], 'the partial copy is removed');
    assert.equal(mount('-o', 'remount,ro', mnt).status, 0);
    const ro = lorakit('train', '--model', model, '--data', ds.text, '--out', path.join(mnt, 'run'), '--steps', '1', '--seq-len', '16');
    userError(ro, path.join(mnt, 'run'), /cannot write: the file system is read-only \(EROFS\); nothing was written/);
    // an immutable folder (root ignores permission bits, not chattr +i)
    const imm = path.join(root, 'immutable');
    fs.mkdirSync(imm);
    if (spawnSync('chattr', ['+i', imm]).status === 0)
      try {
        const r2 = lorakit('train', '--model', model, '--data', ds.text, '--out', path.join(imm, 'run'), '--steps', '1', '--seq-len', '16');
        userError(
          r2,
          path.join(imm, 'run'),
          /cannot write: not permitted \(the folder is read-only or immutable\?\) \(EPERM\); nothing was written/,
        );
      } finally {
        spawnSync('chattr', ['-i', imm]);
      }
  } finally {
    spawnSync('umount', [mnt]);
  }
});

// 19: Dawn's native "artificially reduced" warnings (written to fd 2, out of JavaScript's reach) are explained once
test("on a software Vulkan driver, Dawn's two warnings are explained once, in one line", (t) => {
  const r = lorakit('info', '--devices', '--json');
  const info = JSON.parse(r.out);
  if (!info.adapters.some((a: { name: string }) => /llvmpipe|lavapipe/i.test(a.name))) return t.skip('no lavapipe adapter here');
  const notes = r.err.split('\n').filter((l) => /^lorakit: the two "artificially reduced" warnings above come from Dawn/.test(l));
  assert.equal(notes.length, 1, r.err);
});
