// QLoRA as a user meets it: quantize → bnb-4bit folder; train/eval on a 4-bit base (quantized on load or stored);
// the adapter is plain PEFT; merge goes to full precision by default; and every piece of bad input gets one line,
// status 1 and nothing written.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeDatasets, makeTinyModel } from '../../src/engine/fixtures/model';
import { SafetensorsFile, writeSafetensors } from '../../src/engine/formats/safetensors';
import { CpuBackend } from '../../src/engine/backend/cpu/cpu';
import { openModel } from '../../src/engine/tasks/session';
import { readJson } from '../../src/engine/core/fsx';
import { bitsPerParam, quantBytesFor } from '../../src/engine/core/qweight';
import { lorakit, tmpDir, userError } from '../helpers';
import { expectedTensors, isQuantizable } from '../../src/engine/formats/structure';

const root = tmpDir('qlora');
const model = path.join(root, 'model');
const spec = makeTinyModel(model, { modelType: 'llama', dtype: 'BF16', std: 0.15 });
const ds = makeDatasets(path.join(root, 'data'), 384);
const q4 = path.join(root, 'model-nf4');

test('lorakit quantize writes a bnb-4bit folder that loads as stored and holds the analytic bytes', () => {
  const r = lorakit('quantize', '--model', model, '--out', q4, '--double-quant', '--json');
  assert.equal(r.code, 0, r.err);
  const rep = JSON.parse(r.out);
  assert.equal(rep.quantized, spec.layers * 7);
  assert.equal(rep.bitsPerParam.toFixed(3), '4.127');
  const cfg = readJson(path.join(q4, 'config.json'));
  assert.equal(cfg.quantization_config.quant_method, 'bitsandbytes');
  assert.equal(cfg.quantization_config.bnb_4bit_quant_type, 'nf4');
  assert.equal(cfg.quantization_config.bnb_4bit_use_double_quant, true);
  assert.equal(cfg.quantization_config.bnb_4bit_compute_dtype, 'bfloat16');
  const st = new SafetensorsFile(path.join(q4, 'model.safetensors'));
  assert.equal(st.info('model.layers.0.self_attn.q_proj.weight').dtype, 'U8');
  assert.equal(st.info('model.embed_tokens.weight').dtype, 'BF16'); // embeddings, norms, lm_head stay as they were
  assert.equal(st.info('lm_head.weight').dtype, 'BF16');
  // held weight bytes on load = the analytic count: 4-bit linears + everything else as stored
  const be = new CpuBackend();
  const o = openModel(q4, be);
  assert.equal(o.quantSource, 'bnb-4bit');
  let want = 0;
  const qc = { type: 'nf4' as const, blocksize: 64, doubleQuant: true };
  for (const [name, shape] of expectedTensors(spec)) {
    const n = shape.reduce((a, b) => a * b, 1);
    want += isQuantizable(name) ? quantBytesFor(n, qc) : n * (shape.length === 2 ? 2 : 4);
  }
  assert.equal(be.mem.live.weights, want);
  assert.ok(bitsPerParam(qc) < 4.13);
  // quantizing on load gives the same model as the stored folder
  const a = lorakit('eval', '--model', q4, '--data', ds.ids, '--json');
  const b = lorakit('eval', '--model', model, '--data', ds.ids, '--quant', 'nf4', '--double-quant', '--json');
  const c = lorakit('eval', '--model', model, '--data', ds.ids, '--json');
  assert.equal(JSON.parse(a.out).loss, JSON.parse(b.out).loss);
  assert.notEqual(JSON.parse(a.out).loss, JSON.parse(c.out).loss);
});

test('QLoRA training lowers the eval loss; its adapter is plain PEFT; merge defaults to full precision', () => {
  const run = path.join(root, 'run');
  const r = lorakit(
    'train',
    '--model',
    q4,
    '--data',
    ds.text,
    '--out',
    run,
    '--steps',
    '24',
    '--seq-len',
    '64',
    '--batch',
    '4',
    '--lr',
    '3e-3',
    '--warmup',
    '0',
    '--json',
  );
  assert.equal(r.code, 0, r.err);
  const res = JSON.parse(r.out);
  assert.ok(res.finalEvalLoss < res.firstEvalLoss - 0.05, `eval loss ${res.firstEvalLoss} → ${res.finalEvalLoss}`);
  const cfg = readJson(path.join(res.adapterDir, 'adapter_config.json'));
  assert.equal(cfg.peft_type, 'LORA');
  const ad = new SafetensorsFile(path.join(res.adapterDir, 'adapter_model.safetensors'));
  assert.ok(ad.names().every((n) => /lora_[AB]\.weight$/.test(n) && ad.info(n).dtype === 'F32'));
  // per-step memory by tag in metrics.jsonl, with 4-bit weights
  const rows = fs
    .readFileSync(path.join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((m) => m.mem);
  assert.ok(rows.length === 24 && rows.every((m) => m.mem.weights > 0 && m.mem.lora > 0 && m.mem.optimizer > 0 && m.mem.activations > 0));
  assert.deepEqual(readJson(path.join(run, 'run.json')).config.quant, null, 'a stored bnb base needs no --quant');

  // default merge: into the full-precision original recorded by quantize
  const m1 = path.join(root, 'merged');
  const m = lorakit('merge', '--model', q4, '--adapter', res.adapterDir, '--out', m1, '--json');
  assert.equal(m.code, 0, m.err);
  const mr = JSON.parse(m.out);
  assert.equal(mr.mergedInto.dir, model);
  assert.match(mr.mergedInto.kind, /full-precision original/);
  assert.equal(readJson(path.join(m1, 'config.json')).quantization_config, undefined);
  assert.equal(new SafetensorsFile(path.join(m1, 'model.safetensors')).info('model.layers.0.self_attn.q_proj.weight').dtype, 'BF16');
  // --requantize: a bnb-4bit merged model and the loss of both merges on the run's eval split
  const m2 = path.join(root, 'merged-4bit');
  const rq = lorakit('merge', '--model', q4, '--adapter', res.adapterDir, '--out', m2, '--requantize', '--json');
  assert.equal(rq.code, 0, rq.err);
  const rr = JSON.parse(rq.out);
  assert.equal(readJson(path.join(m2, 'config.json')).quantization_config.bnb_4bit_quant_type, 'nf4');
  assert.ok(Number.isFinite(rr.requantized.evalLoss.difference) && rr.requantized.evalLoss.difference !== 0);
  assert.ok(Math.abs(rr.requantized.evalLoss.difference) < 0.2);
  assert.ok(!fs.readdirSync(root).some((f) => f.includes('.tmp')), 'no temporary folder left');
  const e2 = JSON.parse(lorakit('eval', '--model', m2, '--data', ds.ids, '--json').out);
  assert.equal(e2.quant.type, 'nf4');
});

test('bad QLoRA input: one line naming the file, status 1, nothing written', () => {
  const never = path.join(root, 'never');
  // block sizes
  for (const bs of ['48', '16', '8192']) {
    const r = lorakit('quantize', '--model', model, '--out', never, '--blocksize', bs);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /--blocksize must be a power of two from 32 to 4096, got \d+/);
  }
  assert.equal(lorakit('train', '--model', model, '--data', ds.text, '--quant', 'int3').code, 2);
  // quantizing an already-quantized model
  userError(lorakit('quantize', '--model', q4, '--out', never), q4, /already 4-bit quantized/);
  // --quant naming another type than the stored one
  userError(lorakit('eval', '--model', q4, '--data', ds.ids, '--quant', 'fp4'), q4, /stored quantized as nf4/);
  // merge onto a 4-bit base whose original is unknown: explained, not guessed
  const orphan = path.join(root, 'orphan');
  fs.cpSync(q4, orphan, { recursive: true });
  fs.rmSync(path.join(orphan, 'lorakit_quantize.json'));
  const adapter = path.join(root, 'run', 'adapter');
  userError(
    lorakit('merge', '--model', orphan, '--adapter', adapter, '--out', never),
    orphan,
    /full-precision original is unknown.*--requantize/,
  );
  // broken bnb layouts
  const broken = (name: string, edit: (t: Map<string, { dtype: any; shape: number[]; data: any }>) => void, re: RegExp) => {
    const dir = path.join(root, `broken-${name}`);
    fs.cpSync(orphan, dir, { recursive: true });
    const file = path.join(dir, 'model.safetensors');
    const f = new SafetensorsFile(file);
    const t = new Map(f.names().map((n) => [n, { ...f.read(n) }]));
    edit(t);
    writeSafetensors(
      file,
      [...t].map(([n, v]) => ({ name: n, ...v })),
    );
    userError(lorakit('eval', '--model', dir, '--data', ds.ids), file, re);
  };
  const P = 'model.layers.1.mlp.up_proj.weight';
  broken('no-absmax', (t) => t.delete(`${P}.absmax`), /up_proj\.weight: no absmax/);
  broken(
    'shape',
    (t) => {
      const k = `${P}.quant_state.bitsandbytes__nf4`;
      const js = JSON.parse(Buffer.from(t.get(k)!.data).toString());
      js.shape = [js.shape[0] + 1, js.shape[1]];
      const b = new Uint8Array(Buffer.from(JSON.stringify(js)));
      t.set(k, { dtype: 'U8', shape: [b.length], data: b });
    },
    /quant_state shape \[.*\] needs \d+ packed bytes, the tensor has \d+/,
  );
  broken(
    'type',
    (t) => {
      const k = `${P}.quant_state.bitsandbytes__nf4`;
      const v = t.get(k)!;
      t.delete(k);
      t.set(`${P}.quant_state.bitsandbytes__int4`, v);
    },
    /unknown quant_type "int4"/,
  );
  broken(
    'nested',
    (t) => {
      const v = t.get(`${P}.nested_absmax`)!;
      t.set(`${P}.nested_absmax`, { dtype: 'F32', shape: [v.shape[0] + 2], data: new Float32Array(v.shape[0] + 2) });
    },
    /nested_absmax has \d+ values, \d+ expected/,
  );
  assert.ok(!fs.existsSync(never));
});
