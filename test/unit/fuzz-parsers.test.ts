// The parser defects found by fuzzing (issue 10, D3 D5 D6 D7 D11 D13 and item 17): each minimal reproducer is
// refused with one line naming the file, and the valid inputs next to it are still accepted.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseSpec } from '../../src/engine/formats/config';
import { MAX_TOKEN_ID, TextTokenizer } from '../../src/engine/formats/tokenizer';
import { loadExamples, prepareData } from '../../src/engine/data/dataset';
import { SafetensorsFile, TensorStore } from '../../src/engine/formats/safetensors';
import { makeDatasets, makeTinyModel } from '../../src/engine/fixtures/model';
import { UserError } from '../../src/engine/core/errors';
import { lorakit, tmpDir, userError } from '../helpers';

/** fn throws one UserError, on one line, that names `file` and matches `re` */
function throwsUser(fn: () => unknown, file: string, re: RegExp) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${(e as Error)?.stack ?? e}`);
    assert.ok(e.message.startsWith(file), `message should name ${file}: ${e.message}`);
    assert.match(e.message, re);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
}

/** the real CLI, killed after `ms` (a hang is a failure, not a stuck test run) */
function lorakitWithin(ms: number, ...args: string[]) {
  const r = spawnSync(process.execPath, [path.resolve('bin/lorakit.js'), ...args], {
    encoding: 'utf8',
    timeout: ms,
    killSignal: 'SIGKILL',
    env: { ...process.env, LORAKIT_THREADS: '2' },
  });
  assert.ok(r.signal === null, `lorakit ${args.join(' ')} still running after ${ms} ms`);
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const editJson = (file: string, edit: (j: any) => void) => {
  const j = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(j);
  fs.writeFileSync(file, JSON.stringify(j));
};

const BASE = {
  model_type: 'llama',
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  vocab_size: 100,
};
const LLAMA3 = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };

test('D3: config.json values of the wrong type or range are refused, naming the field', () => {
  const file = 'm/config.json';
  const cases: [object, RegExp][] = [
    [{ tie_word_embeddings: 'false' }, /"tie_word_embeddings" must be true or false \(a JSON boolean, not a string\), got "false"/],
    [{ rms_norm_eps: -1 }, /"rms_norm_eps" must be a positive number, got -1/],
    [{ rms_norm_eps: 0 }, /"rms_norm_eps" must be a positive number, got 0/],
    [{ rms_norm_eps: '1e-6' }, /"rms_norm_eps" must be a positive number, got "1e-6"/],
    [{ rope_scaling: { rope_type: 'llama3' } }, /"rope_scaling\.factor" must be a positive number, but it is missing/],
    [
      { rope_scaling: { ...LLAMA3, low_freq_factor: undefined } },
      /"rope_scaling\.low_freq_factor" must be a positive number, but it is missing/,
    ],
    [{ rope_scaling: { ...LLAMA3, high_freq_factor: 1 } }, /"rope_scaling\.high_freq_factor" must be larger than low_freq_factor, got 1/],
    [{ rope_scaling: { ...LLAMA3, factor: -8 } }, /"rope_scaling\.factor" must be a positive number, got -8/],
    [{ rope_scaling: { type: 'linear', factor: 0 } }, /"rope_scaling\.factor" must be a positive number, got 0/],
    [{ rope_scaling: { type: 'linear' } }, /"rope_scaling\.factor" must be a positive number, but it is missing/],
    [{ rope_scaling: 'llama3' }, /"rope_scaling" must be an object, got "llama3"/],
    [
      { rope_parameters: { rope_type: 'llama3', rope_theta: 5e5, factor: 8 } },
      /"rope_parameters\.low_freq_factor" must be a positive number, but it is missing/,
    ],
    [
      { rope_parameters: { full_attention: { rope_type: 'default', rope_theta: -1 } } },
      /"rope_parameters\.full_attention\.rope_theta" must be a positive number, got -1/,
    ],
    [{ rope_theta: '10000' }, /"rope_theta" must be a positive number, got "10000"/],
    [{ eos_token_id: 100 }, /"eos_token_id" 100 is not below vocab_size 100/],
    [{ eos_token_id: [1, 2, 250] }, /"eos_token_id" 250 is not below vocab_size 100/],
    [{ eos_token_id: -1 }, /"eos_token_id" must be a token id.*, got -1/],
    [{ eos_token_id: '2' }, /"eos_token_id" must be a token id or a list of token ids, got "2"/],
    [{ bos_token_id: 1.5 }, /"bos_token_id" must be a token id \(an integer ≥ 0\), got 1\.5/],
    [{ max_position_embeddings: '2048' }, /"max_position_embeddings" must be a positive integer, got "2048"/],
    [{ hidden_size: 64.5 }, /"hidden_size" must be a positive integer, got 64\.5/],
    [{ num_attention_heads: 0 }, /"num_attention_heads" must be a positive integer, got 0/],
    [{ vocab_size: '100' }, /"vocab_size" must be a positive integer, got "100"/],
    [{ vocab_size: 2 ** 40 }, /"vocab_size" must be at most 2147483647/],
    [{ intermediate_size: undefined }, /"intermediate_size" must be a positive integer, but it is missing/],
    [{ num_key_value_heads: 3 }, /num_attention_heads 4 is not a multiple of num_key_value_heads 3/],
    [{ num_attention_heads: 5 }, /hidden_size 64 is not a multiple of num_attention_heads 5/],
    [{ attention_bias: 'true' }, /"attention_bias" must be true or false/],
    [{ model_type: 'mistral', sliding_window: '4096' }, /"sliding_window" must be a positive integer, got "4096"/],
    [{ torch_dtype: 16 }, /"torch_dtype" must be a string, got 16/],
  ];
  for (const [change, re] of cases) throwsUser(() => parseSpec({ ...BASE, ...change }, file), file, re);
});

test('D3: every valid config.json accepted before is still accepted, with the values given', () => {
  const hf = parseSpec({
    ...BASE,
    architectures: ['LlamaForCausalLM'],
    some_future_key: { x: 1 },
    tie_word_embeddings: false,
    rms_norm_eps: 1e-5,
    bos_token_id: null,
    eos_token_id: [97, 98, 99],
    rope_scaling: null,
    max_position_embeddings: 4096,
    num_key_value_heads: null,
    head_dim: null,
  });
  assert.deepEqual(
    [hf.tieEmbeddings, hf.rmsEps, hf.bosTokenId, hf.eosTokenId, hf.maxPositions, hf.kvHeads, hf.headDim],
    [false, 1e-5, undefined, [97, 98, 99], 4096, 4, 16],
  );
  const defaults = parseSpec(BASE);
  assert.deepEqual([defaults.tieEmbeddings, defaults.rmsEps, defaults.maxPositions, defaults.rope], [false, 1e-6, 2048, { theta: 10000 }]);
  const l3 = parseSpec({ ...BASE, rope_theta: 5e5, rope_scaling: LLAMA3, tie_word_embeddings: true, eos_token_id: 0 });
  assert.deepEqual(l3.rope, {
    theta: 5e5,
    scaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 },
  });
  assert.equal(l3.tieEmbeddings, true);
  assert.equal(parseSpec({ ...BASE, rope_scaling: { type: 'linear', factor: 2 } }).rope.scaling?.factor, 2);
  const mistral = parseSpec({ ...BASE, model_type: 'mistral', sliding_window: null });
  assert.equal(mistral.slidingWindow, undefined);
  assert.equal(parseSpec({ ...BASE, model_type: 'mistral', sliding_window: 4096 }).slidingWindow, 4096);
  const qwen = parseSpec({
    ...BASE,
    model_type: 'qwen2',
    use_sliding_window: false,
    sliding_window: 131072,
    dtype: 'bfloat16',
    rope_parameters: { rope_type: 'default', rope_theta: 1e6 },
  });
  assert.deepEqual([qwen.slidingWindow, qwen.torchDtype, qwen.rope.theta], [undefined, 'bfloat16', 1e6]);
  const q3 = parseSpec({ ...BASE, model_type: 'qwen3', head_dim: 32, rope_parameters: { full_attention: { ...LLAMA3, rope_theta: 7 } } });
  assert.deepEqual([q3.headDim, q3.rope.theta, q3.rope.scaling?.type], [32, 7, 'llama3']);
});

test('D3: the CLI refuses a string tie_word_embeddings instead of running with tied weights', () => {
  const m = path.join(tmpDir('d3'), 'm');
  makeTinyModel(m);
  const cfgFile = path.join(m, 'config.json');
  fs.writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(cfgFile, 'utf8')), tie_word_embeddings: 'false' }));
  userError(lorakit('info', '--model', m), cfgFile, /"tie_word_embeddings" must be true or false/);
});

test('D5: tokenizer.json ids that are huge, negative, fractional or strings are refused before the tokenizer walks them', () => {
  const root = tmpDir('d5');
  const good = path.join(root, 'good');
  makeTinyModel(good);
  const vocabTokens = Object.keys(JSON.parse(fs.readFileSync(path.join(good, 'tokenizer.json'), 'utf8')).model.vocab);
  const tok = vocabTokens[300];
  const cases: [(j: any) => void, RegExp][] = [
    [(j) => (j.model.vocab[tok] = 2 ** 31), /token ".*" in model\.vocab has id 2147483648: token ids must be integers from 0 to \d+/],
    [(j) => (j.model.vocab[tok] = 2 ** 53), /in model\.vocab has id 9007199254740992/],
    [(j) => (j.model.vocab[tok] = '5'), /in model\.vocab has id "5"/],
    [(j) => (j.model.vocab[tok] = -1), /has id -1/],
    [(j) => (j.model.vocab[tok] = 1.5), /has id 1\.5/],
    [(j) => (j.added_tokens[0].id = 2 ** 31), /added token "<\|endoftext\|>" has id 2147483648/],
    [(j) => (j.added_tokens[0].id = null), /added token "<\|endoftext\|>" has id null/],
    [(j) => (j.added_tokens[1].content = 7), /added_tokens\[1\] needs a string "content"/],
    [(j) => (j.added_tokens = {}), /"added_tokens" must be a list/],
  ];
  for (const [i, [edit, re]] of cases.entries()) {
    const m = path.join(root, `m${i}`);
    fs.cpSync(good, m, { recursive: true });
    editJson(path.join(m, 'tokenizer.json'), edit);
    const t0 = performance.now();
    throwsUser(() => TextTokenizer.load(m), path.join(m, 'tokenizer.json'), re);
    assert.ok(performance.now() - t0 < 2000, 'refused at once');
  }
  // the bound: below twice the tokens listed (+1024), never 2^24; a gap inside it still loads
  const listed = vocabTokens.length + 4;
  assert.equal(MAX_TOKEN_ID, 2 ** 24);
  const gap = path.join(root, 'gap');
  fs.cpSync(good, gap, { recursive: true });
  editJson(path.join(gap, 'tokenizer.json'), (j) => (j.model.vocab[tok] = 2 * listed + 1023));
  const t = TextTokenizer.load(gap);
  assert.equal(t.decode(t.encode('a gap in the ids')), 'a gap in the ids');
  editJson(path.join(gap, 'tokenizer.json'), (j) => (j.model.vocab[tok] = 2 * listed + 1024));
  throwsUser(
    () => TextTokenizer.load(gap),
    path.join(gap, 'tokenizer.json'),
    new RegExp(`from 0 to ${2 * listed + 1023} \\(below 2\\^24 and twice the ${listed} tokens listed\\)`),
  );
});

test('tokenizer.json: a FixedLength pre-tokenizer of length 0 is refused (found by the fuzzer: encoding never ended)', () => {
  const m = path.join(tmpDir('fixedlen'), 'm');
  makeTinyModel(m);
  for (const length of [0, -3, '4']) {
    editJson(
      path.join(m, 'tokenizer.json'),
      (j) => (j.pre_tokenizer = { type: 'Sequence', pretokenizers: [{ type: 'FixedLength', length }] }),
    );
    throwsUser(
      () => TextTokenizer.load(m).encode('hi'),
      path.join(m, 'tokenizer.json'),
      new RegExp(`pre_tokenizer FixedLength needs a positive integer "length", got ${JSON.stringify(length)}`),
    );
  }
  editJson(path.join(m, 'tokenizer.json'), (j) => (j.pre_tokenizer = { type: 'FixedLength', length: 2 }));
  assert.ok(TextTokenizer.load(m).encode('four').length > 0);
});

test('D5: eval on a tokenizer with a vocab id of 2^53 ends at once with one line (it used to never end)', () => {
  const root = tmpDir('d5cli');
  const m = path.join(root, 'm');
  makeTinyModel(m, { modelType: 'qwen2' });
  const ds = makeDatasets(path.join(root, 'data'), 384);
  editJson(path.join(m, 'tokenizer.json'), (j) => (j.model.vocab[Object.keys(j.model.vocab)[300]] = 2 ** 53));
  userError(lorakitWithin(60_000, 'eval', '--model', m, '--data', ds.text), path.join(m, 'tokenizer.json'), /has id 9007199254740992/);
});

test('D6: a malformed chat_template matters only when a template is needed, and then it is one clear line', () => {
  const root = tmpDir('d6');
  const m = path.join(root, 'm');
  makeTinyModel(m, { modelType: 'qwen2' });
  const cfgFile = path.join(m, 'tokenizer_config.json');
  editJson(cfgFile, (c) => (c.chat_template = '{% for message in messages %}{{ message.content }'));
  const tok = TextTokenizer.load(m);
  assert.ok(tok.hasChatTemplate());
  assert.equal(tok.decode(tok.encode('plain text works')), 'plain text works');
  const ds = makeDatasets(path.join(root, 'data'), 384);
  assert.ok(loadExamples(ds.text, tok, 384, { appendEos: true }).examples.length > 0);
  throwsUser(() => tok.applyChat([{ role: 'user', content: 'hi' }]), cfgFile, /chat_template is not a valid template \(.+\)/);
  throwsUser(() => loadExamples(ds.messages, tok, 384, { appendEos: true }), cfgFile, /chat_template is not a valid template/);
  // a template that raises on the conversation, and one that is not a string
  editJson(cfgFile, (c) => (c.chat_template = "{{ raise_exception('roles must alternate') }}"));
  throwsUser(
    () => TextTokenizer.load(m).applyChat([{ role: 'user', content: 'hi' }]),
    cfgFile,
    /the chat_template failed on a conversation \(.*roles must alternate.*\)/,
  );
  editJson(cfgFile, (c) => (c.chat_template = 42));
  throwsUser(() => TextTokenizer.load(m).applyChat([]), cfgFile, /chat_template must be a template string/);
  editJson(cfgFile, (c) => (c.chat_template = '{% for message in messages %}{{ message.content }'));
  // the CLI: text data evaluates (it used to be "internal error: SyntaxError"); messages data names the template
  const ok = lorakitWithin(120_000, 'eval', '--model', m, '--data', ds.text);
  assert.equal(ok.code, 0, ok.err);
  userError(lorakitWithin(120_000, 'eval', '--model', m, '--data', ds.messages), cfgFile, /chat_template is not a valid template/);
});

test('D7: a weight_map entry that is not a plain file name in the model folder is refused; a shard symlinked elsewhere loads', () => {
  const root = tmpDir('d7');
  const good = path.join(root, 'good');
  makeTinyModel(good, { shards: 2 });
  const indexOf = (m: string) => path.join(m, 'model.safetensors.index.json');
  const cases: [(j: any) => void, RegExp][] = [
    [
      (j) => (j.weight_map['model.norm.weight'] = ''),
      /weight_map entry for "model\.norm\.weight" is "", not the name of a file in the model folder/,
    ],
    [(j) => (j.weight_map['model.norm.weight'] = '.'), /is "\.", not the name of a file/],
    [(j) => (j.weight_map['model.norm.weight'] = '..'), /is "\.\.", not the name of a file/],
    [(j) => (j.weight_map['model.norm.weight'] = '../good/model-00001-of-00002.safetensors'), /not the name of a file in the model folder/],
    [(j) => (j.weight_map['model.norm.weight'] = '/etc/passwd'), /is "\/etc\/passwd", not the name/],
    [(j) => (j.weight_map['model.norm.weight'] = 'sub/x.safetensors'), /is "sub\/x\.safetensors", not the name/],
    [(j) => (j.weight_map['model.norm.weight'] = 'a\0b'), /is "a\\u0000b", not the name/],
    [
      (j) => (j.weight_map['model.norm.weight'] = 5),
      /not a valid index: weight_map entry for "model\.norm\.weight" must be a shard file name/,
    ],
    [(j) => delete j.weight_map, /not a valid index: has no "weight_map" object/],
    [(j) => (j.weight_map = ['model-00001-of-00002.safetensors']), /has no "weight_map" object/],
  ];
  for (const [i, [edit, re]] of cases.entries()) {
    const m = path.join(root, `m${i}`);
    fs.cpSync(good, m, { recursive: true });
    editJson(indexOf(m), edit);
    throwsUser(() => new TensorStore(m), indexOf(m), re);
  }
  // a shard name that is a folder, and a model.safetensors that is a FIFO (opening it used to wait for ever)
  const dirShard = path.join(root, 'dirshard');
  fs.cpSync(good, dirShard, { recursive: true });
  fs.mkdirSync(path.join(dirShard, 'folder.safetensors'));
  editJson(indexOf(dirShard), (j) => (j.weight_map['model.norm.weight'] = 'folder.safetensors'));
  throwsUser(() => new TensorStore(dirShard), path.join(dirShard, 'folder.safetensors'), /not a regular file \(a folder\)/);
  const fifoModel = path.join(root, 'fifo');
  fs.mkdirSync(fifoModel);
  assert.equal(spawnSync('mkfifo', [path.join(fifoModel, 'model.safetensors')]).status, 0);
  throwsUser(
    () => new TensorStore(fifoModel),
    path.join(fifoModel, 'model.safetensors'),
    /not a regular file \(a device, FIFO or socket\)/,
  );
  // Hugging Face's cache: snapshots/<rev>/<shard> is a symbolic link into blobs/, outside the model folder
  const cache = path.join(root, 'hub');
  const snap = path.join(cache, 'snapshots', 'rev');
  fs.mkdirSync(path.join(cache, 'blobs'), { recursive: true });
  fs.cpSync(good, snap, { recursive: true });
  for (const shard of ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']) {
    fs.renameSync(path.join(snap, shard), path.join(cache, 'blobs', shard + '.blob'));
    fs.symlinkSync(path.join('..', '..', 'blobs', shard + '.blob'), path.join(snap, shard));
  }
  assert.equal(new TensorStore(snap).readF32('model.norm.weight').length, 64);
  // the CLI: one line naming the index (it used to be "internal error: EISDIR")
  const cli = path.join(root, 'cli');
  fs.cpSync(good, cli, { recursive: true });
  editJson(indexOf(cli), (j) => (j.weight_map['model.norm.weight'] = ''));
  userError(lorakit('info', '--model', cli), indexOf(cli), /weight_map entry for "model\.norm\.weight" is ""/);
});

test('safetensors headers: dtype names from Object.prototype and non-string metadata are refused', () => {
  const dir = tmpDir('sthdr');
  const raw = (name: string, header: object, data = new Uint8Array(8)) => {
    const file = path.join(dir, name);
    const h = Buffer.from(JSON.stringify(header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(h.length));
    fs.writeFileSync(file, Buffer.concat([len, h, data]));
    return file;
  };
  for (const dtype of ['toString', 'constructor', '__proto__', 7]) {
    const f = raw(`${dtype}.safetensors`, { a: { dtype, shape: [2], data_offsets: [0, 8] } });
    throwsUser(() => new SafetensorsFile(f), f, /has unknown dtype/);
  }
  const meta = raw('meta.safetensors', { __metadata__: { format: 'pt', total: 5 }, a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } });
  throwsUser(() => new SafetensorsFile(meta), meta, /__metadata__ must map names to strings/);
  const ok = raw('ok.safetensors', { __metadata__: { format: 'pt' }, a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } });
  assert.deepEqual(new SafetensorsFile(ok).metadata, { format: 'pt' });
});

test('D11: labels must be −100 or the input id at their position; anything else is refused with the line', () => {
  const m = path.join(tmpDir('d11m'), 'm');
  makeTinyModel(m, { modelType: 'qwen2' });
  const tok = TextTokenizer.load(m);
  const dir = tmpDir('d11');
  const f = path.join(dir, 'd.jsonl');
  const row = (labels: unknown) => JSON.stringify({ text: 'fine' }) + '\n' + JSON.stringify({ input_ids: [5, 6, 7], labels });
  const cases: [unknown, RegExp][] = [
    [['x', 6, 7], /d\.jsonl: line 2: labels\[0\] must be −100 or a token id, got "x"/],
    [[5, {}, 7], /line 2: labels\[1\] must be −100 or a token id, got \{\}/],
    [[5, 6, null], /line 2: labels\[2\] must be −100 or a token id, got null/],
    [[5, 1.5, 7], /labels\[1\] must be −100 or a token id, got 1\.5/],
    [[5, 6, 99999], /labels\[2\] is 99999 but input_ids\[2\] is 7: a label must be −100 \(not scored\) or equal to the input id/],
    [[-1, 6, 7], /labels\[0\] is -1 but input_ids\[0\] is 5/],
    [[6, 7, -100], /labels\[0\] is 6 but input_ids\[0\] is 5/],
  ];
  for (const [labels, re] of cases) {
    fs.writeFileSync(f, row(labels));
    throwsUser(() => loadExamples(f, tok, 384, { appendEos: true }), f, re);
  }
  fs.writeFileSync(f, row([-100, 6, 7]));
  assert.deepEqual(loadExamples(f, tok, 384, { appendEos: true }).examples[1].scored, [false, true, true]);
  // input_ids: integers in [0, vocab)
  for (const [ids, re] of [
    [[5, '6'], /token id "6" is out of range/],
    [[5, 1.5], /token id 1\.5 is out of range/],
    [[5, -1], /token id -1 is out of range/],
    [[384], /token id 384 is out of range \[0, 384\)/],
  ] as const) {
    fs.writeFileSync(f, JSON.stringify({ input_ids: ids }));
    throwsUser(() => loadExamples(f, tok, 384, { appendEos: true }), f, re);
  }
});

test('item 17: data with no token to learn from, and an empty text file, are refused', () => {
  const m = path.join(tmpDir('i17m'), 'm');
  makeTinyModel(m, { modelType: 'llama' });
  const tok = TextTokenizer.load(m);
  const dir = tmpDir('i17');
  const masked = path.join(dir, 'masked.jsonl');
  fs.writeFileSync(
    masked,
    [
      { input_ids: [5, 6, 7], labels: [-100, -100, -100] },
      { input_ids: [8, 9], labels: [-100, -100] },
    ]
      .map((r) => JSON.stringify(r))
      .join('\n'),
  );
  throwsUser(() => prepareData(masked, tok, 384, 16, 0.1, 0), masked, /no tokens to learn from/);
  throwsUser(() => loadExamples(masked, tok, 384, { appendEos: false }), masked, /no tokens to learn from/);
  for (const content of ['', '\n', '  \n\t\n']) {
    const empty = path.join(dir, 'empty.txt');
    fs.writeFileSync(empty, content);
    throwsUser(() => prepareData(empty, tok, 384, 16, 0.1, 0), empty, /the file is empty: no text to train on/);
  }
  // one scored token after the first is enough
  fs.writeFileSync(masked, JSON.stringify({ input_ids: [5, 6, 7], labels: [-100, -100, 7] }));
  assert.deepEqual(loadExamples(masked, tok, 384, { appendEos: false }).examples[0].scored, [false, false, true]);
  // the CLI: nothing is trained and no adapter is written
  const out = path.join(dir, 'run');
  fs.writeFileSync(masked, JSON.stringify({ input_ids: [5, 6, 7], labels: [-100, -100, -100] }));
  userError(lorakit('train', '--model', m, '--data', masked, '--out', out, '--steps', '1'), masked, /no tokens to learn from/);
  assert.ok(!fs.existsSync(path.join(out, 'adapter')));
});

test('D13: --data naming a FIFO is refused at once; a folder walk skips FIFOs with the reason', () => {
  const m = path.join(tmpDir('d13m'), 'm');
  makeTinyModel(m, { modelType: 'qwen2' });
  const tok = TextTokenizer.load(m);
  const dir = tmpDir('d13');
  const fifo = path.join(dir, 'data.txt');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  throwsUser(() => loadExamples(fifo, tok, 384, { appendEos: true }), fifo, /not a regular file or folder \(a FIFO\)/);
  const link = path.join(dir, 'link.jsonl');
  fs.symlinkSync(fifo, link);
  throwsUser(() => loadExamples(link, tok, 384, { appendEos: true }), link, /\(a FIFO\)/);
  const tree = path.join(dir, 'tree');
  fs.mkdirSync(tree);
  fs.writeFileSync(path.join(tree, 'a.md'), 'some text to learn');
  assert.equal(spawnSync('mkfifo', [path.join(tree, 'pipe.txt')]).status, 0);
  assert.equal(spawnSync('mkfifo', [path.join(tree, '.gitignore')]).status, 0);
  const d = loadExamples(tree, tok, 384, { appendEos: true });
  assert.deepEqual(
    d.examples.map((e) => e.source),
    ['a.md'],
  );
  assert.deepEqual(d.skipped, [
    { path: '.gitignore', reason: 'not a regular file (a FIFO)' },
    { path: 'pipe.txt', reason: 'not a regular file (a FIFO)' },
  ]);
  // the CLI ends (it used to wait for ever, deaf to SIGTERM)
  userError(lorakitWithin(60_000, 'train', '--model', m, '--data', fifo, '--out', path.join(dir, 'run'), '--steps', '1'), fifo, /a FIFO/);
});
