// GGUF writing: the container read back, Q8_0/Q4_0 against ggml's reference rules, llama.cpp's names and q/k row
// order, the tokenizer metadata, the LoRA adapter layout, the Ollama Modelfile, atomic writes and the CLI's errors.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CpuBackend } from '../../src/engine/backend/cpu/cpu';
import { f16ToF32One } from '../../src/engine/core/dtype';
import { Rng } from '../../src/engine/core/rng';
import { makeTinyModel } from '../../src/engine/fixtures/model';
import {
  GgmlType,
  encodeTensor,
  f32,
  str,
  strs,
  u32,
  bool,
  i32s,
  writeGguf,
  quantizeQ4_0,
  quantizeQ8_0,
} from '../../src/engine/formats/gguf';
import { permuteRows } from '../../src/engine/formats/gguf-arch';
import { readGguf, readGgufTensor } from '../../src/engine/formats/gguf-read';
import { defaultLoraConfig } from '../../src/engine/formats/lora-config';
import { SafetensorsFile } from '../../src/engine/formats/safetensors';
import { LoraAdapter } from '../../src/engine/model/lora';
import { saveAdapter } from '../../src/engine/model/peft';
import { exportAdapterGguf, exportModelGguf } from '../../src/engine/tasks/export/gguf';
import { chatTemplateParts, exportForOllama, makeModelfile } from '../../src/engine/tasks/export/ollama';
import { openModel } from '../../src/engine/tasks/session';
import { lorakit, tmpDir, userError } from '../helpers';

const asF32 = (b: Uint8Array) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));

test('a GGUF file reads back: header, every value type, tensor infos in ggml order, data aligned to 32', () => {
  const file = path.join(tmpDir('gguf'), 'x.gguf');
  const a = Float32Array.from({ length: 6 }, (_, i) => i - 2.5);
  const q = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i));
  writeGguf(
    file,
    [
      ['s', str('héllo')],
      ['n', u32(7)],
      ['f', f32(0.5)],
      ['b', bool(true)],
      ['list', strs(['a', 'b c'])],
      ['ints', i32s([3, -1])],
    ],
    [
      { name: 'a', shape: [2, 3], type: GgmlType.F32, data: () => encodeTensor(a, GgmlType.F32) },
      { name: 'q', shape: [2, 32], type: GgmlType.Q8_0, data: () => encodeTensor(q, GgmlType.Q8_0) },
      { name: 'h', shape: [3], type: GgmlType.F16, data: () => encodeTensor(Float32Array.of(1, 2, 3), GgmlType.F16) },
    ],
  );
  const g = readGguf(file);
  assert.equal(g.version, 3);
  assert.deepEqual(Object.fromEntries(g.kv), { s: 'héllo', n: 7, f: 0.5, b: true, list: ['a', 'b c'], ints: [3, -1] });
  assert.deepEqual(
    g.tensors.map((t) => [t.name, t.shape, t.type, t.offset % 32]),
    [
      ['a', [2, 3], GgmlType.F32, 0],
      ['q', [2, 32], GgmlType.Q8_0, 0],
      ['h', [3], GgmlType.F16, 0],
    ],
  );
  assert.deepEqual(asF32(readGgufTensor(file, g.tensors[0])), a);
  assert.equal(g.tensors[1].bytes, 2 * 34);
  // the dimensions are stored innermost first: ne = [3, 2] for a [2, 3] tensor
  const raw = fs.readFileSync(file);
  const at = raw.indexOf(Buffer.from('\x01\x00\x00\x00\x00\x00\x00\x00a', 'latin1'), raw.indexOf('ints')) + 9;
  assert.deepEqual([raw.readUInt32LE(at), Number(raw.readBigUInt64LE(at + 4)), Number(raw.readBigUInt64LE(at + 12))], [2, 3, 2]);
});

test('Q8_0 and Q4_0 follow ggml: scale max/127 and round half away; scale m/−8 and trunc(x/d + 8.5) in nibbles', () => {
  const x = Float32Array.from({ length: 32 }, (_, i) => (i - 12) / 4); // −3 … 4.75
  const b8 = quantizeQ8_0(x);
  const d8 = f16ToF32One(b8[0] | (b8[1] << 8));
  assert.ok(Math.abs(d8 / (4.75 / 127) - 1) < 1e-3); // stored as f16
  const codes = Array.from(new Int8Array(b8.buffer, 2, 32));
  assert.equal(codes[31], 127);
  assert.equal(codes[0], Math.round((-3 * 127) / 4.75));
  for (let i = 0; i < 32; i++) assert.ok(Math.abs(codes[i] * d8 - x[i]) <= 0.6 * d8, `q8 element ${i}`);
  const b4 = quantizeQ4_0(x);
  const d4 = f16ToF32One(b4[0] | (b4[1] << 8));
  assert.ok(Math.abs(d4 / (4.75 / -8) - 1) < 1e-3);
  for (let j = 0; j < 16; j++) {
    const lo = b4[2 + j] & 15;
    const hi = b4[2 + j] >> 4;
    assert.ok(Math.abs((lo - 8) * d4 - x[j]) <= 0.51 * Math.abs(d4), `q4 element ${j}`);
    assert.ok(Math.abs((hi - 8) * d4 - x[j + 16]) <= 0.51 * Math.abs(d4), `q4 element ${j + 16}`);
  }
  assert.deepEqual(Array.from(quantizeQ8_0(new Float32Array(32))), new Array(34).fill(0)); // an all-zero block: d = 0
});

test('llama q/k rows go from halves to pairs within each head', () => {
  // one head of D = 4, two columns: rows [r0 r1 | r2 r3] → [r0 r2 r1 r3]
  assert.deepEqual(Array.from(permuteRows(Float32Array.of(0, 0, 1, 1, 2, 2, 3, 3), 1, 2)), [0, 0, 2, 2, 1, 1, 3, 3]);
  assert.deepEqual(Array.from(permuteRows(Float32Array.of(0, 1, 2, 3, 4, 5, 6, 7), 2, 1)), [0, 2, 1, 3, 4, 6, 5, 7]);
});

test('a model GGUF: llama.cpp names and keys, the tokenizer with padding ids, q permuted for llama only', () => {
  const root = tmpDir('gguf-model');
  for (const modelType of ['llama', 'qwen2'] as const) {
    const dir = path.join(root, modelType);
    const spec = makeTinyModel(dir, { modelType, vocab: 300 });
    const r = exportModelGguf({ model: dir, type: 'f32', out: path.join(root, `${modelType}.gguf`) });
    const g = readGguf(r.out);
    const kv = g.kv;
    assert.equal(kv.get('general.architecture'), modelType);
    assert.equal(kv.get('general.type'), 'model');
    assert.equal(kv.get(`${modelType}.block_count`), spec.layers);
    assert.equal(kv.get(`${modelType}.attention.head_count_kv`), spec.kvHeads);
    assert.equal(kv.get('tokenizer.ggml.model'), 'gpt2');
    assert.equal(kv.get('tokenizer.ggml.pre'), 'gpt-2');
    const tokens = kv.get('tokenizer.ggml.tokens') as string[];
    const types = kv.get('tokenizer.ggml.token_type') as number[];
    assert.equal(tokens.length, spec.vocabSize);
    assert.equal(tokens[0], '<|endoftext|>');
    assert.equal(types[0], 3); // control
    assert.equal(tokens.at(-1), `[PAD${spec.vocabSize - 1}]`);
    assert.equal(types.at(-1), 5); // unused
    assert.equal(kv.get('tokenizer.ggml.eos_token_id'), 0);
    assert.equal(kv.get('tokenizer.ggml.add_bos_token'), modelType === 'llama');
    assert.match(kv.get('tokenizer.chat_template') as string, /im_start/);
    assert.ok((kv.get('tokenizer.ggml.merges') as string[]).every((m) => m.split(' ').length === 2));
    const names = g.tensors.map((t) => t.name);
    assert.ok(names.includes('token_embd.weight') && names.includes('output.weight') && names.includes('blk.1.ffn_down.weight'));
    assert.equal(names.includes('blk.0.attn_q.bias'), modelType === 'qwen2');
    const st = new SafetensorsFile(path.join(dir, 'model.safetensors'));
    const q = st.readF32('model.layers.0.self_attn.q_proj.weight');
    const gq = asF32(
      readGgufTensor(
        r.out,
        g.tensors.find((t) => t.name === 'blk.0.attn_q.weight')!,
      ),
    );
    assert.deepEqual(gq, modelType === 'llama' ? permuteRows(q, spec.heads, spec.hidden) : q);
  }
});

test('Q8_0 keeps 1-D tensors in F32 and stores rows that do not fill 32-blocks in F16, as llama.cpp converts', () => {
  const root = tmpDir('gguf-q8');
  const dir = path.join(root, 'm');
  makeTinyModel(dir, { intermediate: 176 }); // down_proj rows of 176 are not whole blocks
  const r = exportModelGguf({ model: dir, type: 'q8_0', out: path.join(root, 'q.gguf') });
  const types = Object.fromEntries(readGguf(r.out).tensors.map((t) => [t.name, t.type]));
  assert.equal(types['blk.0.attn_norm.weight'], GgmlType.F32);
  assert.equal(types['blk.0.attn_q.weight'], GgmlType.Q8_0);
  assert.equal(types['blk.0.ffn_down.weight'], GgmlType.F16);
  assert.deepEqual(Object.keys(r.fallbacks), ['blk.0.ffn_down.weight', 'blk.1.ffn_down.weight']);
  assert.equal(readGguf(r.out).kv.get('general.file_type'), 7);
});

test('a LoRA GGUF: convert_lora_to_gguf names and shapes, alpha, and rsLoRA/alpha_pattern scales folded into B', () => {
  const root = tmpDir('gguf-lora');
  const dir = path.join(root, 'm');
  const spec = makeTinyModel(dir, { modelType: 'qwen3' });
  const be = new CpuBackend();
  const { model } = openModel(dir, be);
  const cfg = defaultLoraConfig({ r: 4, alpha: 8, useRslora: true, targetModules: ['q_proj', 'v_proj'], alphaPattern: { v_proj: 2 } });
  const ad = LoraAdapter.create(model.spec, cfg, be, new Rng(1));
  for (const m of ad.modules.values())
    be.write(
      m.B,
      Float32Array.from({ length: m.B.shape[0] * m.B.shape[1] }, (_, i) => i / 100),
    );
  saveAdapter(path.join(root, 'a'), ad, be);
  const r = exportAdapterGguf({ adapter: path.join(root, 'a'), model: dir, out: path.join(root, 'a.gguf') });
  const g = readGguf(r.out);
  assert.equal(g.kv.get('general.type'), 'adapter');
  assert.equal(g.kv.get('adapter.type'), 'lora');
  assert.equal(g.kv.get('adapter.lora.alpha'), 8);
  assert.equal(g.kv.get('general.architecture'), 'qwen3');
  const t = Object.fromEntries(g.tensors.map((x) => [x.name, x]));
  assert.deepEqual(Object.keys(t).sort().slice(0, 4), [
    'blk.0.attn_q.weight.lora_a',
    'blk.0.attn_q.weight.lora_b',
    'blk.0.attn_v.weight.lora_a',
    'blk.0.attn_v.weight.lora_b',
  ]);
  assert.deepEqual(t['blk.0.attn_q.weight.lora_a'].shape, [4, spec.hidden]);
  assert.deepEqual(t['blk.0.attn_q.weight.lora_b'].shape, [spec.heads * spec.headDim, 4]);
  // llama.cpp scales by alpha/r = 2; lorakit by alpha/√r = 4 for q (rsLoRA) and 2/√r = 1 for v: B × 2 and × 0.5
  const bq = asF32(readGgufTensor(r.out, t['blk.0.attn_q.weight.lora_b']));
  const bv = asF32(readGgufTensor(r.out, t['blk.0.attn_v.weight.lora_b']));
  assert.ok(Math.abs(bq[7] - 2 * 0.07) < 1e-6 && Math.abs(bv[7] - 0.5 * 0.07) < 1e-6);
});

test('the Modelfile: ChatML becomes a Go template with a stop; a template that adds a default system prompt gets a note', () => {
  const chatml =
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
  const parts = chatTemplateParts(chatml);
  assert.ok(typeof parts !== 'string');
  assert.deepEqual(parts.around.user, ['<|im_start|>user\n', '<|im_end|>\n']);
  assert.equal(parts.generation, '<|im_start|>assistant\n');
  const mf = makeModelfile({ dir: '/o', base: '/o/b.gguf', adapter: '/o/a.gguf', chatTemplate: chatml });
  assert.match(mf.text, /^FROM \.\/b\.gguf\nADAPTER \.\/a\.gguf\nTEMPLATE """\{\{ range \$i, \$m := \.Messages \}\}/);
  assert.match(mf.text, /PARAMETER stop "<\|im_end\|>"/);
  const dflt = `{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nBe nice.<|im_end|>\\n' }}{% endif %}${chatml}`;
  const noted = makeModelfile({ dir: '/o', base: '/o/b.gguf', chatTemplate: dflt });
  assert.ok(noted.note && !noted.text.includes('TEMPLATE """'));
  assert.match(noted.text, /# No TEMPLATE: /);
});

test('export for Ollama writes both GGUF files and the Modelfile; the CLI reports bad input in one line', () => {
  const root = tmpDir('gguf-cli');
  const dir = path.join(root, 'm');
  makeTinyModel(dir, { modelType: 'qwen2' });
  const be = new CpuBackend();
  const ad = LoraAdapter.create(openModel(dir, be).model.spec, defaultLoraConfig({ r: 2, baseModel: dir }), be, new Rng(2));
  saveAdapter(path.join(root, 'a'), ad, be);
  const r = exportForOllama({ adapter: path.join(root, 'a'), type: 'q8_0' });
  assert.deepEqual(fs.readdirSync(r.outDir).sort(), ['Modelfile', 'a-lora.gguf', 'm-q8_0.gguf']);
  assert.match(r.ollamaCreate, /^ollama create a -f /);
  assert.match(fs.readFileSync(r.modelfile, 'utf8'), /^FROM \.\/m-q8_0\.gguf\nADAPTER \.\/a-lora\.gguf\n/);

  const cli = lorakit('export', 'gguf', '--adapter', path.join(root, 'a'), '--out', path.join(root, 'x.gguf'), '--json');
  assert.equal(cli.code, 0, cli.err);
  assert.equal(JSON.parse(cli.out).kind, 'adapter');
  assert.equal(lorakit('export', 'gguf', '--model', dir, '--type', 'q5_k').code, 2);
  assert.equal(lorakit('export', 'gguf').code, 2);
  // a tokenizer llama.cpp would split differently
  const tj = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
  tj.pre_tokenizer = { type: 'Whitespace' };
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tj));
  const out = path.join(root, 'bad.gguf');
  userError(lorakit('export', 'gguf', '--model', dir, '--out', out), path.join(dir, 'tokenizer.json'), /pre_tokenizer/);
  assert.deepEqual(
    fs.readdirSync(root).filter((f) => f.startsWith('bad')),
    [],
  );
  userError(lorakit('export', 'gguf', '--model', path.join(root, 'a')), path.join(root, 'a'), /PEFT adapter folder/);
});

test('a failure while writing leaves neither the file nor a temporary behind', () => {
  const root = tmpDir('gguf-atomic');
  const file = path.join(root, 'x.gguf');
  assert.throws(() =>
    writeGguf(
      file,
      [],
      [
        {
          name: 't',
          shape: [4],
          type: GgmlType.F32,
          data: () => {
            throw new Error('boom');
          },
        },
      ],
    ),
  );
  assert.deepEqual(fs.readdirSync(root), []);
});
