// safetensors, config.json, dtype conversions and tokenizers: round trips and every kind of bad file.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SafetensorsFile, TensorStore, writeSafetensors } from '../../src/engine/formats/safetensors';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../../src/engine/core/dtype';
import { parseSpec } from '../../src/engine/formats/config';
import { TextTokenizer } from '../../src/engine/formats/tokenizer';
import { makeTinyModel } from '../../src/engine/fixtures/model';
import { UserError } from '../../src/engine/core/errors';
import { tmpDir } from '../helpers';

function rawFile(file: string, header: object | string, data: Uint8Array = new Uint8Array(0), lenOverride?: bigint) {
  const h = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lenOverride ?? BigInt(h.length));
  fs.writeFileSync(file, Buffer.concat([len, h, data]));
}

function throwsUser(fn: () => unknown, file: string, pattern: RegExp) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${e}`);
    assert.ok(e.message.startsWith(file), `message should name ${file}: ${e.message}`);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
}

test('safetensors round-trips every supported dtype, 8-byte aligned', () => {
  const dir = tmpDir('st');
  const file = path.join(dir, 'a.safetensors');
  const tensors = [
    { name: 'f32', dtype: 'F32' as const, shape: [2, 3], data: Float32Array.of(1, -2, 3.5, 0, 1e-8, -1e8) },
    { name: 'f16', dtype: 'F16' as const, shape: [3], data: Uint16Array.of(0x3c00, 0xc000, 0x7bff) },
    { name: 'bf16', dtype: 'BF16' as const, shape: [2], data: Uint16Array.of(0x3f80, 0xc040) },
    { name: 'u8', dtype: 'U8' as const, shape: [5], data: Uint8Array.of(0, 1, 2, 254, 255) },
    { name: 'i32', dtype: 'I32' as const, shape: [2], data: Int32Array.of(-7, 2147483647) },
    { name: 'i64', dtype: 'I64' as const, shape: [1, 2], data: BigInt64Array.of(-1n, 1n << 40n) },
    { name: 'empty', dtype: 'F32' as const, shape: [0, 4], data: new Float32Array(0) },
  ];
  writeSafetensors(file, tensors, { format: 'pt' });
  const n = fs.readFileSync(file).readBigUInt64LE(0);
  assert.equal(Number(n) % 8, 0);
  const f = new SafetensorsFile(file);
  assert.deepEqual(f.metadata, { format: 'pt' });
  for (const t of tensors) {
    const r = f.read(t.name);
    assert.equal(r.dtype, t.dtype);
    assert.deepEqual(r.shape, t.shape);
    assert.deepEqual(Array.from(r.data as ArrayLike<number | bigint>), Array.from(t.data as ArrayLike<number | bigint>));
  }
  assert.deepEqual(Array.from(f.readF32('f16')), [1, -2, 65504]);
  assert.deepEqual(Array.from(f.readF32('bf16')), [1, -3]);
  assert.ok(!fs.readdirSync(dir).some((e) => e.endsWith('.tmp')), 'no temp files left');
});

test('bad safetensors files get one clear error naming the file', () => {
  const dir = tmpDir('stbad');
  const f = (n: string) => path.join(dir, n);
  fs.writeFileSync(f('short.safetensors'), Buffer.from([1, 2, 3]));
  throwsUser(() => new SafetensorsFile(f('short.safetensors')), f('short.safetensors'), /truncated/);
  rawFile(f('hlen.safetensors'), '{}', new Uint8Array(0), 1000n);
  throwsUser(() => new SafetensorsFile(f('hlen.safetensors')), f('hlen.safetensors'), /header length 1000 is larger than the file/);
  rawFile(f('json.safetensors'), '{not json');
  throwsUser(() => new SafetensorsFile(f('json.safetensors')), f('json.safetensors'), /not JSON/);
  rawFile(f('range.safetensors'), { a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, new Uint8Array(8));
  throwsUser(() => new SafetensorsFile(f('range.safetensors')), f('range.safetensors'), /past its end/);
  rawFile(
    f('overlap.safetensors'),
    { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } },
    new Uint8Array(12),
  );
  throwsUser(() => new SafetensorsFile(f('overlap.safetensors')), f('overlap.safetensors'), /overlap/);
  rawFile(f('dtype.safetensors'), { a: { dtype: 'Q4_K', shape: [2], data_offsets: [0, 2] } }, new Uint8Array(2));
  throwsUser(() => new SafetensorsFile(f('dtype.safetensors')), f('dtype.safetensors'), /unknown dtype "Q4_K"/);
  rawFile(f('size.safetensors'), { a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8));
  throwsUser(() => new SafetensorsFile(f('size.safetensors')), f('size.safetensors'), /needs 12/);
  fs.writeFileSync(f('pytorch_model.bin'), 'PK');
  throwsUser(() => new SafetensorsFile(f('pytorch_model.bin')), f('pytorch_model.bin'), /pickle/);
  const m = path.join(dir, 'model');
  fs.mkdirSync(m);
  fs.writeFileSync(path.join(m, 'pytorch_model.bin'), 'PK');
  throwsUser(() => new TensorStore(m), path.join(m, 'pytorch_model.bin'), /pickle checkpoints are refused/);
});

test('sharded models load through model.safetensors.index.json', () => {
  const dir = path.join(tmpDir('shard'), 'm');
  makeTinyModel(dir, { shards: 3 });
  const s = new TensorStore(dir);
  assert.equal(s.files.length, 3);
  assert.ok(s.has('model.layers.1.mlp.down_proj.weight'));
  assert.equal(s.readF32('model.norm.weight').length, 64);
});

test('f32 ↔ f16/bf16 conversions round to nearest even', () => {
  assert.deepEqual(
    Array.from(f32ToBf16(Float32Array.of(1, 1.00390625, 1.01171875, -0, Infinity))),
    [0x3f80, 0x3f80, 0x3f82, 0x8000, 0x7f80],
  );
  assert.deepEqual(Array.from(bf16ToF32(Uint16Array.of(0x3f80, 0x4049))), [1, 3.140625]);
  assert.deepEqual(
    Array.from(f32ToF16(Float32Array.of(1, 65504, 65520, 1e-8, 5.960464477539063e-8, 0.333251953125))),
    [0x3c00, 0x7bff, 0x7c00, 0, 1, 0x3555],
  );
  assert.deepEqual(Array.from(f16ToF32(Uint16Array.of(0x3555, 0x0001, 0xfc00))), [0.333251953125, 5.960464477539063e-8, -Infinity]);
});

test('config.json: supported architectures, biases, norms, rope scaling; unsupported ones are named', () => {
  const base = { hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, vocab_size: 100 };
  const q2 = parseSpec({ ...base, model_type: 'qwen2' });
  assert.equal(q2.qkvBias, true);
  assert.equal(q2.oBias, false);
  assert.equal(q2.kvHeads, 4);
  const q3 = parseSpec({ ...base, model_type: 'qwen3', head_dim: 32 });
  assert.equal(q3.qkNorm, true);
  assert.equal(q3.headDim, 32);
  const l3 = parseSpec({
    ...base,
    model_type: 'llama',
    tie_word_embeddings: true,
    rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
  });
  assert.equal(l3.tieEmbeddings, true);
  assert.equal(l3.rope.scaling?.type, 'llama3');
  assert.throws(
    () => parseSpec({ ...base, model_type: 'gpt2' }, 'cfg/config.json'),
    /cfg\/config.json: model_type "gpt2" is not supported \(supported: llama, mistral, qwen2, qwen3\)/,
  );
  assert.throws(
    () => parseSpec({ ...base, model_type: 'llama', rope_scaling: { type: 'yarn', factor: 2 } }),
    /rope_scaling type "yarn" is not supported/,
  );
});

test('fixture tokenizers round-trip text, add BOS where configured, and render chat templates', () => {
  const dir = path.join(tmpDir('tok'), 'm');
  makeTinyModel(dir, { modelType: 'llama' });
  const t = TextTokenizer.load(dir);
  const text = 'Low-rank adaptation freezes the weights. 42 ünïcødé!';
  const ids = t.encode(text);
  assert.equal(ids[0], t.bosId);
  assert.equal(t.decode(ids), text);
  assert.deepEqual(t.encode(text, false), ids.slice(1));
  const chat = t.applyChat([{ role: 'user', content: 'hi' }], true);
  assert.equal(chat, '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n');
  assert.ok(t.encode(chat, false).includes(1), 'special tokens in rendered text map to their ids');
  const q = path.join(tmpDir('tok2'), 'q');
  makeTinyModel(q, { modelType: 'qwen2' });
  const tq = TextTokenizer.load(q);
  assert.equal(tq.bosId, undefined);
  assert.notEqual(tq.encode('hello')[0], 3);
});

test('transformers 5 configs: rope_parameters (flat or per attention type) and dtype', () => {
  const base = { hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 4, vocab_size: 100 };
  const flat = parseSpec({ ...base, model_type: 'qwen2', dtype: 'bfloat16', rope_parameters: { rope_type: 'default', rope_theta: 1e6 } });
  assert.equal(flat.rope.theta, 1e6);
  assert.equal(flat.rope.scaling, undefined);
  assert.equal(flat.torchDtype, 'bfloat16');
  const l3 = parseSpec({
    ...base,
    model_type: 'llama',
    rope_parameters: {
      rope_type: 'llama3',
      rope_theta: 5e5,
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 8192,
    },
  });
  assert.equal(l3.rope.theta, 5e5);
  assert.equal(l3.rope.scaling?.type, 'llama3');
  const nested = parseSpec({
    ...base,
    model_type: 'llama',
    rope_parameters: { full_attention: { rope_type: 'default', rope_theta: 123 } },
  });
  assert.equal(nested.rope.theta, 123);
});
