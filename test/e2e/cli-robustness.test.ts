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
