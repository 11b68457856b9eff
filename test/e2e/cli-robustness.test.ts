// Issue 10's command-line items, each with the reproducer it was filed with: long inputs (windows, cut prompts,
// bounded memory), progress, messages, refused bad values, full disks and read-only folders, the base-model guard,
// non-finite weights and checkpoints. Every bad input is one line naming the file, exit 1 (or 2 for a flag).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
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
  userError(lorakit('eval', '--model', model, '--data', none), none, /no token to score/);
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
  usage(lorakit('generate', '--model', short, '--prompt', 'hi', '--max-new-tokens', '32'), /--max-new-tokens 32 leaves no room for the prompt/);
  usage(lorakit('generate', '--model', short, '--prompt', 'hi', '--max-new-tokens', '-1'), /--max-new-tokens must be a whole number ≥ 0/);
});

// 16: messages that say what the thing is, and what was read and written
test('messages: a file or an adapter as --model; merge says what it read and what it wrote', () => {
  userError(lorakit('train', '--model', 'README.md', '--data', ds.text, '--out', path.join(root, 'never'), '--steps', '1'), 'README.md', /is a file, not a model folder/);
  const run = path.join(root, 'msgrun');
  assert.equal(lorakit('train', '--model', model, '--data', ds.text, '--out', run, '--steps', '1', '--seq-len', '16').code, 0);
  const adapter = path.join(run, 'adapter');
  userError(lorakit('train', '--model', adapter, '--data', ds.text, '--out', path.join(root, 'never'), '--steps', '1'), adapter,
    new RegExp(`this is a PEFT adapter folder, not a model: pass it with --adapter, and its base model \\(adapter_config.json names ${esc(model)}\\) with --model`));
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
  const row = fs.readFileSync(path.join(run, 'metrics.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((x) => x.lr !== undefined);
  assert.equal(row.lr, 1e-3);
  assert.match(r.err, /note: a warm-up of 1 step\(s\) would cover the whole run of 1; warming up for 0/);
  assert.match(lorakit('train', '--help').out, /at most all steps but the last/);
});

// 22: adapter_config.json values that change the numbers are checked, each error naming the field
test('adapter_config.json: bad lora_alpha, lora_dropout, r refused with the field named', () => {
  const run = path.join(root, 'msgrun');
  for (const [field, value] of [['lora_alpha', 'abc'], ['lora_alpha', 1e308], ['lora_alpha', -16], ['lora_alpha', null], ['lora_alpha', [16]], ['lora_dropout', ''], ['r', 2.5], ['rank_pattern', { q_proj: 0 }]] as const) {
    const a = path.join(root, `bad-adapter-${field}`);
    fs.rmSync(a, { recursive: true, force: true });
    fs.cpSync(path.join(run, 'adapter'), a, { recursive: true });
    const f = path.join(a, 'adapter_config.json');
    fs.writeFileSync(f, JSON.stringify({ ...JSON.parse(fs.readFileSync(f, 'utf8')), [field]: value }));
    userError(lorakit('eval', '--model', model, '--adapter', a, '--data', ds.text), f, new RegExp(`"${field}" must be .*, got ${esc(JSON.stringify(value))}$`));
  }
});

// 33: ranks past a matrix's smaller side, seeds out of range
test('--rank larger than a targeted matrix and --seed out of 0..2^32-1 are refused as bad usage', () => {
  const out = path.join(root, 'never33');
  usage(lorakit('train', '--model', model, '--data', ds.text, '--out', out, '--steps', '1', '--rank', '1000'), /^lorakit train: --rank 1000 is larger than model\.layers\.0\.self_attn\.q_proj \(64 × 64\) allows: at most 64$/);
  usage(lorakit('train', '--model', model, '--data', ds.text, '--out', out, '--steps', '1', '--rank', '48', '--targets', 'k_proj'), /k_proj \(32 × 64\) allows: at most 32/);
  usage(lorakit('train', '--model', model, '--data', ds.text, '--out', out, '--steps', '1', '--seed', '-1'), /^lorakit train: --seed must be ≥ 0 and ≤ 4294967295, got -1$/);
  usage(lorakit('train', '--model', model, '--data', ds.text, '--out', out, '--steps', '1', '--seed', '1e300'), /^lorakit train: --seed must be ≥ 0 and ≤ 4294967295/);
  assert.ok(!fs.existsSync(out));
});
