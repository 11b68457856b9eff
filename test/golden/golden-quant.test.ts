// QLoRA against an independent implementation (test/golden/bnb_reference.py: bitsandbytes' rules written with torch
// ops): `lorakit quantize` on tensors built to be awkward writes the same codes, scales and quant_state, and
// `lorakit eval --quant` matches transformers on the weights round-tripped through 4 bits. Skipped without torch.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeDatasets, makeTinyModel } from '../../src/engine/fixtures/model';
import { SafetensorsFile, writeSafetensors } from '../../src/engine/formats/safetensors';
import { fromF32, toF32 } from '../../src/engine/core/dtype';
import { NF4, FP4, DYNAMIC_MAP } from '../../src/engine/core/blockwise';
import { quantizeModel } from '../../src/engine/tasks/quantize';
import { QuantType } from '../../src/engine/core/blockwise';
import { CpuBackend } from '../../src/engine/backend/cpu/cpu';
import { openModel } from '../../src/engine/tasks/session';
import { evaluateFile } from '../../src/engine/tasks/evaluate';
import { tmpDir } from '../helpers';
import { isQuantizable } from '../../src/engine/formats/structure';

const PY = process.env.LORAKIT_PYTHON ?? 'python3';
const probe = spawnSync(PY, ['-c', 'import torch, safetensors'], { encoding: 'utf8' });
const skip =
  probe.status === 0
    ? false
    : `needs python3 with torch and safetensors (${(probe.stderr || probe.error?.message || '').trim().split('\n').pop()})`;
if (skip) console.log(`# golden quantization tests skipped: ${skip}`);
const hfProbe = skip ? probe : spawnSync(PY, ['-c', 'import transformers'], { encoding: 'utf8' });
const skipHf = skip || (hfProbe.status === 0 ? false : 'needs transformers');

function py(script: string, ...args: string[]): string {
  const r = spawnSync(PY, [path.resolve('test/golden', script), ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

const f32mid = (a: number, b: number) => Math.fround(Math.fround(a + b) / 2);

/**
 * A one-layer model with odd sizes (the MLP weights have odd element counts, every weight a partial last block), whose q_proj
 * also holds an all-zero block and, in a block with absmax 2, every NF4 and FP4 midpoint exactly (scaled by 2).
 */
function awkwardModel(dir: string, dtype: 'F32' | 'BF16'): string[] {
  makeTinyModel(dir, { modelType: 'llama', hidden: 33, heads: 3, kvHeads: 1, headDim: 10, intermediate: 35, layers: 1, dtype, std: 0.2 });
  const file = path.join(dir, 'model.safetensors');
  const f = new SafetensorsFile(file);
  const names = f.names();
  const tensors = names.map((name) => {
    const t = f.read(name);
    if (name !== 'model.layers.0.self_attn.q_proj.weight') return { name, dtype: t.dtype, shape: t.shape, data: t.data };
    const x = toF32(t.dtype, t.data).slice();
    x.fill(0, 0, 64); // an all-zero block (at block 64)
    const special = [2, -2];
    for (const table of [NF4, FP4]) {
      const sorted = [...table].sort((a, b) => a - b);
      for (let i = 0; i + 1 < sorted.length; i++) special.push(2 * f32mid(sorted[i], sorted[i + 1]));
    }
    x.fill(0.5, 64, 128); // keep the block's absmax 2
    x.set(special.slice(0, 64), 64);
    x.set(special.slice(64), 128);
    return { name, dtype: t.dtype, shape: t.shape, data: fromF32(t.dtype, x) };
  });
  writeSafetensors(file, tensors, { format: 'pt' });
  return names.filter(isQuantizable);
}

/** compare lorakit's quantized tensors with the reference file's: codes byte for byte, floats within 1 ulp, JSON as text */
function compareWithReference(got: SafetensorsFile, ref: SafetensorsFile, tag: string): number {
  let n = 0;
  for (const refName of ref.names()) {
    const a = got.read(refName),
      b = ref.read(refName);
    assert.deepEqual(a.shape, b.shape, `${tag} ${refName}: shape`);
    assert.equal(a.dtype, b.dtype, `${tag} ${refName}: dtype`);
    if (refName.includes('quant_state')) {
      assert.equal(Buffer.from(a.data as Uint8Array).toString(), Buffer.from(b.data as Uint8Array).toString(), `${tag} ${refName}`);
    } else if (a.dtype === 'U8') {
      const da = a.data as Uint8Array,
        db = b.data as Uint8Array;
      const bad = da.findIndex((v, i) => v !== db[i]);
      assert.equal(bad, -1, `${tag} ${refName}: byte ${bad} is ${da[bad]}, bitsandbytes' rules give ${db[bad]}`);
    } else {
      const da = new Int32Array((a.data as Float32Array).slice().buffer),
        db = new Int32Array((b.data as Float32Array).slice().buffer);
      const bad = da.findIndex((v, i) => Math.abs(v - db[i]) > 1); // within 1 ulp
      assert.equal(bad, -1, `${tag} ${refName}: value ${bad}`);
    }
    n++;
  }
  return n;
}

const CONFIGS: [QuantType, number, boolean][] = [
  ['nf4', 64, true],
  ['nf4', 32, false],
  ['fp4', 64, false],
  ['fp4', 128, true],
  ['nf4', 256, true],
];
const FIXTURES = path.resolve('test/golden/fixtures');
/** reference outputs kept in the repository, so CI (without torch) checks exactness too */
const KEPT = new Set(['F32-nf4-64-true', 'BF16-nf4-64-true', 'F32-fp4-64-false']);

test('lorakit quantize writes the codes, scales and quant_state of bitsandbytes, on awkward tensors', { skip }, () => {
  const root = tmpDir('golden-quant');
  let cases = 0;
  for (const dtype of ['F32', 'BF16'] as const) {
    const model = path.join(root, `awkward-${dtype}`);
    const names = awkwardModel(model, dtype);
    for (const [type, blocksize, doubleQuant] of CONFIGS) {
      const key = `${dtype}-${type}-${blocksize}-${doubleQuant}`;
      const out = path.join(root, `q-${key}`);
      quantizeModel(model, out, { type, blocksize, doubleQuant });
      const refFile = path.join(root, `ref-${key}.safetensors`);
      py('bnb_reference.py', 'quantize', model, refFile, type, String(blocksize), doubleQuant ? '1' : '0', ...names);
      cases += compareWithReference(new SafetensorsFile(path.join(out, 'model.safetensors')), new SafetensorsFile(refFile), key);
      if (process.env.LORAKIT_WRITE_FIXTURES && KEPT.has(key)) fs.copyFileSync(refFile, path.join(FIXTURES, `bnb-${key}.safetensors`));
    }
  }
  assert.ok(cases > 100);
  // the dynamic map lorakit carries is the one torch builds
  assert.equal(
    py('bnb_reference.py', 'dynamic_map').trim(),
    [...new Uint32Array(DYNAMIC_MAP.buffer)].map((v) => v.toString(16).padStart(8, '0')).join(''),
  );
});

test('lorakit quantize matches the kept reference outputs (no torch needed)', () => {
  const root = tmpDir('golden-quant-kept');
  for (const key of KEPT) {
    const [dtype, type, bs, dq] = key.split('-');
    const model = path.join(root, `awkward-${dtype}`);
    if (!fs.existsSync(model)) awkwardModel(model, dtype as 'F32');
    const out = path.join(root, `q-${key}`);
    quantizeModel(model, out, { type: type as QuantType, blocksize: Number(bs), doubleQuant: dq === 'true' });
    const n = compareWithReference(
      new SafetensorsFile(path.join(out, 'model.safetensors')),
      new SafetensorsFile(path.join(FIXTURES, `bnb-${key}.safetensors`)),
      key,
    );
    assert.ok(n >= 7 * 4, `${key}: ${n} tensors compared`);
  }
});

test('lorakit eval --quant matches transformers on the base round-tripped through 4 bits, to 1e-4 relative', { skip: skipHf }, () => {
  const root = tmpDir('golden-qeval');
  const be = new CpuBackend();
  for (const [name, opts, type, bs, dq] of [
    ['llama', { modelType: 'llama' }, 'nf4', 64, true],
    ['qwen3-bf16', { modelType: 'qwen3', dtype: 'BF16' }, 'nf4', 64, false],
    ['qwen2', { modelType: 'qwen2' }, 'fp4', 128, true],
  ] as [string, object, QuantType, number, boolean][]) {
    const model = path.join(root, name);
    makeTinyModel(model, { ...opts, std: 0.15 });
    const ds = makeDatasets(path.join(root, `${name}-data`), 384);
    const rt = path.join(root, `${name}-roundtrip`);
    py('bnb_reference.py', 'roundtrip', model, rt, type, String(bs), dq ? '1' : '0');
    const want = JSON.parse(py('hf_reference.py', 'eval', rt, ds.ids).trim().split('\n').pop()!);
    const o = openModel(model, be, undefined, { type, blocksize: bs, doubleQuant: dq });
    const got = evaluateFile(o.model, o.tokenizer, ds.ids, 4096);
    assert.equal(got.tokens, want.tokens);
    const rel = Math.abs(got.loss - want.loss) / want.loss;
    assert.ok(rel < 1e-4, `${name} ${type}: lorakit ${got.loss} vs reference ${want.loss} (rel ${rel})`);
    // and quantizing changed the model (the test would pass vacuously otherwise)
    const plain = openModel(model, be);
    assert.notEqual(evaluateFile(plain.model, plain.tokenizer, ds.ids, 4096).loss, got.loss);
  }
});
