// The command line as a user meets it: exit statuses, one-line errors that name the file, nothing written on
// bad input, --json on stdout, and a train → merge → eval round trip.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeDatasets, makeTinyModel } from '../../src/engine/fixtures/model';
import { cliEnv, lorakit, tmpDir, userError } from '../helpers';

const root = tmpDir('cli');
const model = path.join(root, 'model');
makeTinyModel(model, { modelType: 'qwen2' });
const ds = makeDatasets(path.join(root, 'data'), 384);

test('--help and --version exit 0; unknown commands and options exit 2', () => {
  assert.equal(lorakit('--help').code, 0);
  assert.match(lorakit('--help').out, /train\s+fine-tune/);
  assert.equal(lorakit('train', '--help').code, 0);
  assert.match(lorakit('--version').out, /^\d+\.\d+\.\d+/);
  const u = lorakit('frobnicate');
  assert.equal(u.code, 2);
  assert.match(u.err, /unknown command "frobnicate"/);
  const o = lorakit('eval', '--model', model, '--data', ds.text, '--bogus');
  assert.equal(o.code, 2);
  assert.match(o.err, /unknown option --bogus/);
  assert.equal(lorakit('eval', '--data', ds.text).code, 2);
  assert.equal(lorakit('train', '--model', model, '--data', ds.text, '--rank', 'abc').code, 2);
});

test('bad input: one clear line naming the file, exit status 1, nothing written', () => {
  const bad = path.join(root, 'bad');
  fs.mkdirSync(bad);
  const out = path.join(root, 'never');
  const trainOn = (data: string, ...more: string[]) =>
    lorakit('train', '--model', model, '--data', data, '--out', out, '--steps', '1', ...more);
  // truncated safetensors, header length past the end
  const m2 = path.join(bad, 'm2');
  fs.cpSync(model, m2, { recursive: true });
  const st = path.join(m2, 'model.safetensors');
  fs.truncateSync(st, fs.statSync(st).size - 100);
  userError(lorakit('eval', '--model', m2, '--data', ds.text), st, /past its end \(.*truncated file\?\)/);
  fs.writeFileSync(st, Buffer.concat([Buffer.from([255, 255, 0, 0, 0, 0, 0, 0]), Buffer.from('{}')]));
  userError(lorakit('eval', '--model', m2, '--data', ds.text), st, /header length 65535 is larger than the file/);
  // unsupported model_type lists the supported ones
  const m3 = path.join(bad, 'm3');
  fs.cpSync(model, m3, { recursive: true });
  const cfg = JSON.parse(fs.readFileSync(path.join(m3, 'config.json'), 'utf8'));
  fs.writeFileSync(path.join(m3, 'config.json'), JSON.stringify({ ...cfg, model_type: 'falcon' }));
  userError(
    lorakit('info', '--model', m3),
    path.join(m3, 'config.json'),
    /model_type "falcon" is not supported \(supported: llama, mistral, qwen2, qwen3\)/,
  );
  userError(
    lorakit('eval', '--model', path.join(root, 'missing'), '--data', ds.text),
    path.join(root, 'missing'),
    /model folder not found/,
  );
  // a pickle checkpoint
  const m4 = path.join(bad, 'm4');
  fs.mkdirSync(m4);
  fs.copyFileSync(path.join(model, 'config.json'), path.join(m4, 'config.json'));
  fs.writeFileSync(path.join(m4, 'pytorch_model.bin'), 'PK\u0003\u0004');
  userError(lorakit('eval', '--model', m4, '--data', ds.text), path.join(m4, 'pytorch_model.bin'), /pickle checkpoints are refused/);
  // empty folder, folder of binaries
  const empty = path.join(bad, 'empty');
  fs.mkdirSync(empty);
  userError(trainOn(empty), empty, /no text files to train on/);
  const bins = path.join(bad, 'bins');
  fs.mkdirSync(bins);
  fs.writeFileSync(path.join(bins, 'x.dat'), Buffer.from([0, 1, 2]));
  userError(trainOn(bins), bins, /no text files to train on \(1 skipped: 1 binary/);
  // a JSONL line that is not JSON, one that lacks the fields
  const j = path.join(bad, 'd.jsonl');
  fs.writeFileSync(j, '{"text": "fine"}\n{oops}\n');
  userError(trainOn(j), j, /line 2: not valid JSON/);
  fs.writeFileSync(j, '{"text": "fine"}\n{"txt": "typo"}\n');
  userError(trainOn(j), j, /line 2: expected one of the fields/);
  // text that is not UTF-8
  const latin = path.join(bad, 'latin.txt');
  fs.writeFileSync(latin, Buffer.from('caf\xe9 au lait', 'latin1'));
  userError(trainOn(latin), latin, /not UTF-8/);
  // --rank 0, a negative learning rate, --seq-len 0: bad usage (status 2), the flag named with its range
  const usage = (r: ReturnType<typeof lorakit>, re: RegExp) => {
    assert.equal(r.code, 2, `exit status (stderr: ${r.err})`);
    assert.match(r.err.split('\n')[0], re);
  };
  usage(trainOn(ds.text, '--rank', '0'), /^lorakit train: --rank must be ≥ 1 and ≤ 1024, got 0$/);
  usage(trainOn(ds.text, '--lr', '-0.001'), /^lorakit train: --lr must be > 0, got -0.001$/);
  usage(trainOn(ds.text, '--seq-len', '0'), /^lorakit train: --seq-len must be ≥ 8 and ≤ 32768, got 0$/);
  usage(trainOn(ds.text, '--stpes', '3'), /^lorakit train: unknown option --stpes \(did you mean --steps\?\)$/);
  assert.ok(!fs.existsSync(out), 'nothing written for bad input');
  // an adapter made for another model
  const small = path.join(bad, 'small');
  makeTinyModel(small, { modelType: 'qwen2', hidden: 32, heads: 2, kvHeads: 1 });
  assert.equal(
    lorakit('train', '--model', small, '--data', ds.text, '--out', path.join(root, 'smallrun'), '--steps', '1', '--seq-len', '16').code,
    0,
  );
  userError(
    lorakit('eval', '--model', model, '--adapter', path.join(root, 'smallrun', 'adapter'), '--data', ds.text),
    'adapter_model.safetensors',
    /module "model\.layers\.0\.self_attn\.q_proj": lora_A is \[8,32\]/,
  );
  // an adapter folder given as the model
  userError(
    lorakit('eval', '--model', path.join(root, 'smallrun', 'adapter'), '--data', ds.text),
    path.join(root, 'smallrun', 'adapter'),
    /this is a PEFT adapter folder, not a model: pass it with --adapter/,
  );
});

test('train → eval --json → merge → eval: the merged model scores as base + adapter', () => {
  const run = path.join(root, 'run');
  const t = lorakit(
    'train',
    '--model',
    model,
    '--data',
    ds.completion,
    '--out',
    run,
    '--steps',
    '8',
    '--seq-len',
    '32',
    '--batch',
    '2',
    '--lr',
    '5e-3',
    '--json',
  );
  assert.equal(t.code, 0, t.err);
  const r = JSON.parse(t.out);
  assert.equal(r.status, 'completed');
  assert.match(t.err, /step 8\/8/);
  const base = JSON.parse(lorakit('eval', '--model', model, '--data', ds.completion, '--json').out);
  const withA = JSON.parse(lorakit('eval', '--model', model, '--adapter', r.adapterDir, '--data', ds.completion, '--json').out);
  assert.ok(withA.loss < base.loss, `adapter ${withA.loss} vs base ${base.loss}`);
  assert.equal(base.tokens, withA.tokens);
  const merged = path.join(root, 'merged');
  const m = lorakit('merge', '--model', model, '--adapter', r.adapterDir, '--out', merged, '--json');
  assert.equal(m.code, 0, m.err);
  const mergedEval = JSON.parse(lorakit('eval', '--model', merged, '--data', ds.completion, '--json').out);
  assert.ok(Math.abs(mergedEval.loss - withA.loss) < 1e-5 * withA.loss, `${mergedEval.loss} vs ${withA.loss}`);
  const info = JSON.parse(lorakit('info', '--model', merged, '--json').out);
  assert.equal(info.spec.modelType, 'qwen2');
  const runInfo = JSON.parse(lorakit('info', '--model', run, '--json').out);
  assert.equal(runInfo.kind, 'run');
  assert.equal(runInfo.status, 'completed');
  assert.equal(runInfo.steps, 8);
  assert.equal(runInfo.adapter, r.adapterDir);
  assert.match(lorakit('info', '--model', run).out, /completed, 8 of 8 steps/);
  const g = lorakit('generate', '--model', model, '--adapter', r.adapterDir, '--prompt', 'Q: hello', '--max-new-tokens', '5', '--json');
  assert.equal(g.code, 0, g.err);
  assert.ok(JSON.parse(g.out).newTokens <= 5);
  const e = JSON.parse(lorakit('estimate', '--model', model, '--rank', '8', '--seq-len', '32', '--batch', '2', '--json').out);
  for (const k of ['weights', 'lora', 'optimizer', 'activations', 'workspace', 'total']) assert.ok(e.bytes[k] > 0, k);
  assert.equal(typeof e.fits, 'boolean');
});

test('Ctrl-C during training keeps a checkpoint, exits 130, and --resume finishes the run', async () => {
  const { spawn } = await import('node:child_process');
  const run = path.join(root, 'sigint');
  // no checkpoint of its own before the Ctrl-C lands (the default is every 10 steps)
  const args = [
    'train',
    '--model',
    model,
    '--data',
    ds.text,
    '--out',
    run,
    '--steps',
    '400',
    '--seq-len',
    '32',
    '--batch',
    '2',
    '--checkpoint-every',
    '1000',
  ];
  const child = spawn(process.execPath, [path.resolve('bin/lorakit.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: cliEnv() });
  let err = '';
  let sent = false;
  child.stderr.on('data', (d) => {
    err += d;
    if (!sent && /step 2\/400/.test(err)) sent = child.kill('SIGINT'); // once: a second Ctrl-C quits at once
  });
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  assert.equal(code, 130, err);
  assert.match(err, /stopping after this step/);
  const ck = fs.readdirSync(path.join(run, 'checkpoints'));
  assert.equal(ck.length, 1);
  assert.ok(!fs.existsSync(path.join(run, 'adapter')));
  const r = lorakit(...args, '--resume', '--json');
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, new RegExp(`resumed from .*${ck[0]}`));
  assert.equal(JSON.parse(r.out).steps, 400);
});

test('eval cuts long examples into overlapping pieces: every token after the first is scored once', () => {
  const whole = JSON.parse(lorakit('eval', '--model', model, '--data', ds.ids, '--json').out);
  const cut = JSON.parse(lorakit('eval', '--model', model, '--data', ds.ids, '--seq-len', '8', '--json').out);
  assert.equal(cut.tokens, whole.tokens);
  assert.ok(cut.sequences > whole.sequences);
  assert.equal(lorakit('eval', '--model', model, '--data', ds.ids, '--seq-len', '1').code, 2);
});
