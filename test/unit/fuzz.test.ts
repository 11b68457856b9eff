// Property-based fuzzing of every parser that reads user files (issue 10, "Done when"): config.json, tokenizer.json,
// JSONL data lines, safetensors headers and model.safetensors.index.json. With a fixed seed and a few thousand
// small cases each, a parser may only (1) accept, and then with exactly the values it was given, or (2) refuse
// with one UserError line. Anything else (a TypeError, a RangeError, a case that runs long) fails the test.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { ModelSpec, parseSpec } from '../../src/engine/formats/config';
import { TextTokenizer } from '../../src/engine/formats/tokenizer';
import { SafetensorsFile, TensorStore } from '../../src/engine/formats/safetensors';
import { DTYPE_BYTES } from '../../src/engine/core/dtype';
import { loadExamples } from '../../src/engine/data/dataset';
import { makeTinyModel } from '../../src/engine/fixtures/model';
import { UserError } from '../../src/engine/core/errors';
import { tmpDir } from '../helpers';

const SEED = 20261201;
/** a case is a few KB of input: anything near this slow is a hang in the making */
const CASE_MS = 2000;

/** Run one case: its result, or the UserError it refused with; any other throw, or a slow case, fails. */
function attempt<T>(fn: () => T): { ok: true; value: T } | { ok: false; error: UserError } {
  const t0 = performance.now();
  try {
    return { ok: true, value: fn() };
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
    return { ok: false, error: e };
  } finally {
    assert.ok(performance.now() - t0 < CASE_MS, `a case took ${(performance.now() - t0).toFixed(0)} ms`);
  }
}

function run<T>(arb: fc.Arbitrary<T>, numRuns: number, check: (v: T) => void): { runs: number; ms: number } {
  const t0 = performance.now();
  fc.assert(fc.property(arb, check), { seed: SEED, numRuns });
  return { runs: numRuns, ms: performance.now() - t0 };
}

/** values that have broken parsers: wrong types, edges of every range, strings that look like numbers */
const nasty = fc.oneof(
  fc.constantFrom(
    0,
    -0,
    -1,
    1,
    2,
    3,
    4,
    16,
    64,
    99,
    100,
    101,
    0.5,
    1.5,
    1e-6,
    -100,
    2 ** 24,
    2 ** 31,
    2 ** 32,
    2 ** 53,
    2 ** 53 + 2,
    1e308,
    Infinity,
    -Infinity,
    NaN,
  ),
  fc.constantFrom(
    '',
    '.',
    '..',
    '0',
    '1',
    '100',
    'false',
    'true',
    'null',
    'NaN',
    '1e-6',
    'llama3',
    'linear',
    'default',
    'silu',
    'toString',
    '__proto__',
    'constructor',
  ),
  fc.constantFrom(null, true, false, [], {}, [1], [1, 2], [-100], { factor: 2 }),
  fc.integer({ min: -1000, max: 1000 }),
  fc.double(),
  fc.string({ maxLength: 8 }),
  fc.jsonValue({ maxDepth: 2 }),
);

const LLAMA3 = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
const CONFIG = {
  model_type: 'mistral',
  vocab_size: 100,
  hidden_size: 64,
  intermediate_size: 128,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  head_dim: 16,
  rms_norm_eps: 1e-5,
  max_position_embeddings: 2048,
  tie_word_embeddings: false,
  rope_theta: 10000,
  bos_token_id: 1,
  eos_token_id: 2,
  torch_dtype: 'bfloat16',
  attention_bias: false,
  mlp_bias: false,
  sliding_window: 4096,
  hidden_act: 'silu',
  rope_scaling: LLAMA3,
};
/** what a value of each kind must be for the engine to compute with it */
const KINDS = {
  size: (v: unknown) => Number.isSafeInteger(v) && (v as number) > 0,
  id: (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0,
  ids: (v: unknown) => KINDS.id(v) || (Array.isArray(v) && v.every(KINDS.id)),
  positive: (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v > 0,
  bool: (v: unknown) => typeof v === 'boolean',
  str: (v: unknown) => typeof v === 'string',
};
/** each field the engine reads: its kind, where its value lands in the spec, and what null (Python's None) means */
const FIELDS: Record<string, { kind: keyof typeof KINDS; get: (s: ModelSpec) => unknown; ifNull?: unknown }> = {
  vocab_size: { kind: 'size', get: (s) => s.vocabSize },
  hidden_size: { kind: 'size', get: (s) => s.hidden },
  intermediate_size: { kind: 'size', get: (s) => s.intermediate },
  num_hidden_layers: { kind: 'size', get: (s) => s.layers },
  num_attention_heads: { kind: 'size', get: (s) => s.heads },
  num_key_value_heads: { kind: 'size', get: (s) => s.kvHeads, ifNull: 4 },
  head_dim: { kind: 'size', get: (s) => s.headDim, ifNull: 16 },
  rms_norm_eps: { kind: 'positive', get: (s) => s.rmsEps, ifNull: 1e-6 },
  max_position_embeddings: { kind: 'size', get: (s) => s.maxPositions, ifNull: 2048 },
  tie_word_embeddings: { kind: 'bool', get: (s) => s.tieEmbeddings, ifNull: false },
  rope_theta: { kind: 'positive', get: (s) => s.rope.theta, ifNull: 10000 },
  bos_token_id: { kind: 'id', get: (s) => s.bosTokenId, ifNull: undefined },
  eos_token_id: { kind: 'ids', get: (s) => s.eosTokenId, ifNull: undefined },
  torch_dtype: { kind: 'str', get: (s) => s.torchDtype, ifNull: undefined },
  attention_bias: { kind: 'bool', get: (s) => s.oBias, ifNull: false },
  mlp_bias: { kind: 'bool', get: (s) => s.mlpBias, ifNull: false },
  sliding_window: { kind: 'size', get: (s) => s.slidingWindow, ifNull: undefined },
  'rope_scaling.factor': { kind: 'positive', get: (s) => s.rope.scaling?.factor },
  'rope_scaling.low_freq_factor': { kind: 'positive', get: (s) => (s.rope.scaling as any)?.lowFreqFactor },
  'rope_scaling.high_freq_factor': { kind: 'positive', get: (s) => (s.rope.scaling as any)?.highFreqFactor },
  'rope_scaling.original_max_position_embeddings': { kind: 'size', get: (s) => (s.rope.scaling as any)?.originalMaxPositions },
};

test('fuzz config.json: a changed field is refused, or parsed to exactly the value given', () => {
  const one = run(fc.tuple(fc.constantFrom(...Object.keys(FIELDS)), nasty), 3000, ([key, value]) => {
    const c: any = structuredClone(CONFIG);
    const [outer, inner] = key.split('.');
    if (inner) c[outer][inner] = value;
    else c[key] = value;
    const r = attempt(() => parseSpec(c, 'config.json'));
    if (!r.ok) return assert.ok(r.error.message.startsWith('config.json: '), r.error.message);
    const field = FIELDS[key];
    const isNull = value == null && 'ifNull' in field;
    assert.ok(isNull || KINDS[field.kind](value), `${key} = ${JSON.stringify(value)} was accepted, but it is not a valid ${field.kind}`);
    const want = isNull ? field.ifNull : value;
    assert.deepStrictEqual(
      field.get(r.value),
      want,
      `${key} = ${JSON.stringify(value)} was accepted as ${JSON.stringify(field.get(r.value))}`,
    );
  });
  // many fields at once, unknown keys, and whole documents that are not configs at all
  const keys = fc.constantFrom(...Object.keys(CONFIG), 'rope_parameters', 'dtype', 'use_sliding_window', 'unknown_key');
  const many = run(fc.oneof(fc.dictionary(keys, nasty, { maxKeys: 6 }), nasty), 2000, (change) => {
    const c = change !== null && typeof change === 'object' && !Array.isArray(change) ? { ...CONFIG, ...change } : change;
    attempt(() => parseSpec(c, 'config.json'));
  });
  console.log(
    `config.json: ${one.runs} single-field cases in ${one.ms.toFixed(0)} ms, ${many.runs} many-field cases in ${many.ms.toFixed(0)} ms`,
  );
});

test('fuzz tokenizer.json: ids, added tokens and whole sections; a refusal or a tokenizer that works', () => {
  const dir = path.join(tmpDir('fuzztok'), 'm');
  makeTinyModel(dir, { modelType: 'qwen2' });
  const base = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
  const config = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
  const tokens = Object.keys(base.model.vocab);
  const mutation = fc.oneof(
    fc.tuple(fc.constant('vocab'), fc.nat(tokens.length - 1), nasty),
    fc.tuple(fc.constant('added.id'), fc.nat(base.added_tokens.length - 1), nasty),
    fc.tuple(fc.constant('added.content'), fc.nat(base.added_tokens.length - 1), nasty),
    // known section types with random settings (a FixedLength length of 0 used to hang encoding)
    fc.tuple(
      fc.constant('pre_tokenizer'),
      fc.constant(0),
      fc.record(
        {
          type: fc.constantFrom('FixedLength', 'Split', 'Digits', 'Whitespace', 'ByteLevel', 'Metaspace'),
          length: nasty,
          individual_digits: nasty,
          add_prefix_space: nasty,
        },
        { requiredKeys: ['type'] },
      ),
    ),
    fc.tuple(
      fc.constant('pre_tokenizer'),
      fc.constant(0),
      fc.record({
        type: fc.constant('Sequence'),
        pretokenizers: fc.array(fc.record({ type: fc.constant('FixedLength'), length: nasty }), { maxLength: 2 }),
      }),
    ),
    fc.tuple(
      fc.constantFrom(
        'model',
        'added_tokens',
        'normalizer',
        'pre_tokenizer',
        'post_processor',
        'decoder',
        'model.vocab',
        'model.merges',
        'model.type',
      ),
      fc.constant(0),
      nasty,
    ),
  );
  const r = run(mutation, 3000, ([what, i, value]) => {
    const j = structuredClone(base);
    if (what === 'vocab') j.model.vocab[tokens[i]] = value;
    else if (what === 'added.id') j.added_tokens[i].id = value;
    else if (what === 'added.content') j.added_tokens[i].content = value;
    else if (what.startsWith('model.')) j.model[what.slice(6)] = value;
    else j[what] = value;
    const res = attempt(() => {
      const t = new TextTokenizer(dir, j, config);
      return t.decode(t.encode('Low-rank adaptation, 42 times.'));
    });
    // an id the tokenizer accepted is exactly an integer in range: never a string or a float it rounds
    if (res.ok && (what === 'vocab' || what === 'added.id'))
      assert.ok(
        Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) < 2 ** 24,
        `id ${JSON.stringify(value)} accepted`,
      );
  });
  console.log(`tokenizer.json: ${r.runs} cases in ${r.ms.toFixed(0)} ms`);
});

test('fuzz JSONL data lines: a refusal naming the line, or examples with exactly the ids and labels given', () => {
  const dir = path.join(tmpDir('fuzzdata'), 'm');
  makeTinyModel(dir, { modelType: 'qwen2' });
  const tok = TextTokenizer.load(dir);
  const V = 384;
  const file = path.join(path.dirname(dir), 'd.jsonl');
  const id = fc.oneof(fc.integer({ min: 0, max: V - 1 }), nasty);
  const row = fc.oneof(
    fc.record({ text: fc.oneof(fc.string({ maxLength: 40 }), nasty) }),
    fc.record(
      { prompt: fc.oneof(fc.string({ maxLength: 20 }), nasty), completion: fc.oneof(fc.string({ maxLength: 20 }), nasty) },
      { requiredKeys: [] },
    ),
    fc.record({
      messages: fc.oneof(
        fc.array(
          fc.record(
            {
              role: fc.oneof(fc.constantFrom('system', 'user', 'assistant'), nasty),
              content: fc.oneof(fc.string({ maxLength: 20 }), nasty),
            },
            { requiredKeys: [] },
          ),
          { maxLength: 4 },
        ),
        nasty,
      ),
    }),
    fc.record(
      {
        input_ids: fc.oneof(fc.array(id, { maxLength: 12 }), nasty),
        labels: fc.oneof(fc.array(fc.oneof(id, fc.constant(-100)), { maxLength: 12 }), nasty),
      },
      { requiredKeys: ['input_ids'] },
    ),
    nasty,
  );
  const line = fc.oneof(
    { weight: 9, arbitrary: row.map((r) => JSON.stringify(r) ?? 'undefined') },
    { weight: 1, arbitrary: fc.string({ maxLength: 30 }) },
  );
  const r = run(fc.array(line, { minLength: 1, maxLength: 4 }), 3000, (lines) => {
    fs.writeFileSync(file, lines.join('\n'));
    const res = attempt(() => loadExamples(file, tok, V, { appendEos: true }));
    if (!res.ok) return assert.ok(res.error.message.startsWith(file), res.error.message);
    const rows = lines.filter((l) => l.trim()).map((l) => JSON.parse(l));
    assert.equal(res.value.examples.length, rows.length);
    rows.forEach((row, i) => {
      const e = res.value.examples[i];
      assert.ok(
        e.ids.every((t) => Number.isInteger(t) && t >= 0 && t < V),
        'token ids in range',
      );
      assert.equal(e.scored.length, e.ids.length);
      if (typeof row.text !== 'string' && 'input_ids' in row && !('prompt' in row) && !('completion' in row) && !('messages' in row)) {
        assert.deepStrictEqual(e.ids, row.input_ids);
        assert.deepStrictEqual(
          e.scored,
          row.labels === undefined ? row.input_ids.map(() => true) : row.labels.map((l: number) => l !== -100),
        );
      }
    });
  });
  console.log(`JSONL: ${r.runs} cases in ${r.ms.toFixed(0)} ms`);
});

/** 8-byte length, header, data */
function rawSafetensors(header: string, data: Uint8Array, len = BigInt(Buffer.byteLength(header))): Buffer {
  const l = Buffer.alloc(8);
  l.writeBigUInt64LE(len);
  return Buffer.concat([l, Buffer.from(header), data]);
}

test('fuzz safetensors headers: a refusal, or tensors that read back with the size their dtype and shape need', () => {
  const dir = tmpDir('fuzzst');
  const file = path.join(dir, 'x.safetensors');
  const dtypes = Object.keys(DTYPE_BYTES);
  const small = fc.oneof({ weight: 4, arbitrary: fc.integer({ min: 0, max: 40 }) }, { weight: 1, arbitrary: nasty });
  const desc = fc.record(
    {
      dtype: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...dtypes) }, { weight: 1, arbitrary: nasty }),
      shape: fc.oneof(fc.array(small, { maxLength: 3 }), nasty),
      data_offsets: fc.oneof(fc.tuple(small, small), fc.array(small, { maxLength: 3 }), nasty),
    },
    { requiredKeys: [] },
  );
  const header = fc.dictionary(
    fc.oneof(fc.constantFrom('a', 'b', '__metadata__', '__proto__', 'toString'), fc.string({ maxLength: 4 })),
    fc.oneof({ weight: 4, arbitrary: desc }, { weight: 1, arbitrary: nasty }),
    { maxKeys: 4 },
  );
  const whole = fc.oneof(
    {
      weight: 6,
      arbitrary: fc.tuple(
        header.map((h) => JSON.stringify(h)),
        fc.uint8Array({ maxLength: 256 }),
        fc.constant(undefined),
      ),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(
        fc.string({ maxLength: 30 }),
        fc.uint8Array({ maxLength: 64 }),
        fc.option(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { nil: undefined }),
      ),
    },
  );
  const r = run(whole, 3000, ([h, data, len]) => {
    fs.writeFileSync(file, rawSafetensors(h, data, len));
    attempt(() => {
      const f = new SafetensorsFile(file);
      for (const name of f.names()) {
        const info = f.info(name);
        const t = f.read(name);
        const want = info.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[info.dtype];
        assert.equal(
          t.data.byteLength,
          want,
          `${name}: ${t.data.byteLength} bytes read, ${info.dtype}${JSON.stringify(info.shape)} needs ${want}`,
        );
      }
    });
  });
  // raw bytes with no structure at all
  const raw = run(fc.uint8Array({ maxLength: 64 }), 1000, (bytes) => {
    fs.writeFileSync(file, bytes);
    attempt(() => new SafetensorsFile(file));
  });
  console.log(`safetensors: ${r.runs} header cases in ${r.ms.toFixed(0)} ms, ${raw.runs} raw cases in ${raw.ms.toFixed(0)} ms`);
});

test('fuzz model.safetensors.index.json: a refusal, or every tensor read from the plain file its entry names', () => {
  const dir = path.join(tmpDir('fuzzidx'), 'm');
  makeTinyModel(dir, { shards: 2, layers: 1 });
  const indexFile = path.join(dir, 'model.safetensors.index.json');
  const base = JSON.parse(fs.readFileSync(indexFile, 'utf8'));
  const names = Object.keys(base.weight_map);
  const shards = [...new Set<string>(Object.values(base.weight_map))];
  fs.mkdirSync(path.join(dir, 'sub'));
  const shardName = fc.oneof(
    fc.constantFrom(
      ...shards,
      '',
      '.',
      '..',
      '/',
      'sub',
      'sub/',
      `sub/${shards[0]}`,
      `../m/${shards[0]}`,
      `./${shards[0]}`,
      `/${shards[0]}`,
      'config.json',
      'missing.safetensors',
      'a\0b',
      `${shards[0]}\\..`,
    ),
    fc.string({ maxLength: 12 }),
    nasty,
  );
  const edit = fc.oneof(
    {
      weight: 6,
      arbitrary: fc
        .array(fc.tuple(fc.constantFrom(...names, 'not.a.tensor', '__proto__'), shardName), { minLength: 1, maxLength: 3 })
        .map((es) => ({ weight_map: { ...base.weight_map, ...Object.fromEntries(es) } })),
    },
    { weight: 1, arbitrary: fc.oneof(nasty, fc.record({ weight_map: nasty })) },
  );
  const r = run(edit, 2000, (index) => {
    fs.writeFileSync(indexFile, JSON.stringify(index) ?? 'undefined');
    const res = attempt(() => new TensorStore(dir));
    if (!res.ok) return;
    for (const [name, shard] of Object.entries((index as any).weight_map)) {
      assert.ok(typeof shard === 'string' && shards.includes(shard), `weight_map entry ${JSON.stringify(shard)} accepted`);
      assert.equal(res.value.info(name).file, path.join(dir, shard));
    }
  });
  console.log(`index json: ${r.runs} cases in ${r.ms.toFixed(0)} ms`);
});
