// The memory estimate (from config.json alone) against the tracker's measured peak of a real training step.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { CpuBackend } from '../../src/engine/backend/cpu/cpu';
import { MEM_TAGS } from '../../src/engine/core/backend';
import { estimateMemory } from '../../src/engine/tasks/estimate';
import { makeTinyModel, TinyModelOptions } from '../../src/engine/fixtures/model';
import { LoraAdapter } from '../../src/engine/model/lora';
import { defaultLoraConfig, LoraConfig } from '../../src/engine/formats/lora-config';
import { openModel } from '../../src/engine/tasks/session';
import { Rng } from '../../src/engine/core/rng';
import { tmpDir } from '../helpers';
import { QuantConfig } from '../../src/engine/core/qweight';

const NF4DQ: QuantConfig = { type: 'nf4', blocksize: 64, doubleQuant: true };
const CASES: [string, TinyModelOptions, Partial<LoraConfig>, number, number, boolean?, QuantConfig?][] = [
  ['llama, all-linear, dropout', { modelType: 'llama' }, { r: 8, dropout: 0.1 }, 2, 48],
  ['qwen3, q/v only, no dropout', { modelType: 'qwen3', headDim: 24 }, { r: 4, dropout: 0, targetModules: ['q_proj', 'v_proj'] }, 3, 33],
  ['qwen2 tied, long sequence', { modelType: 'qwen2', tied: true, configVocab: 1024 }, { r: 16, dropout: 0.05 }, 1, 200],
  ['llama bf16 (matrices held as bf16)', { modelType: 'llama', dtype: 'BF16' }, { r: 8, dropout: 0.1 }, 2, 40],
  ['mistral f16 (matrices held as f16)', { modelType: 'mistral', dtype: 'F16' }, { r: 4, dropout: 0 }, 2, 24],
  ['llama, gradient checkpointing, 4 layers', { modelType: 'llama', layers: 4 }, { r: 8, dropout: 0.1 }, 2, 48, true],
  [
    'qwen2, gradient checkpointing, large vocabulary',
    { modelType: 'qwen2', layers: 3, configVocab: 4096 },
    { r: 8, dropout: 0 },
    2,
    64,
    true,
  ],
  [
    'QLoRA: llama bf16 on NF4 + DQ',
    { modelType: 'llama', dtype: 'BF16', hidden: 128, intermediate: 352 },
    { r: 8, dropout: 0.1 },
    2,
    48,
    false,
    NF4DQ,
  ],
  [
    'QLoRA: qwen2 on FP4, blocks of 128, checkpointing',
    { modelType: 'qwen2', layers: 3 },
    { r: 4, dropout: 0 },
    2,
    40,
    true,
    { type: 'fp4', blocksize: 128, doubleQuant: false },
  ],
];

for (const [name, opts, lora, B, T, ckpt, quant] of CASES)
  test(`the estimate is within 5% of the measured peak, by tag and in total: ${name}`, () => {
    const dir = path.join(tmpDir('est'), 'm');
    makeTinyModel(dir, opts);
    const be = new CpuBackend({ threads: 2 }); // a fresh WebAssembly memory, so its growth is this run's
    const { model } = openModel(dir, be, undefined, quant ?? null);
    const cfg = defaultLoraConfig(lora);
    model.adapter = LoraAdapter.create(model.spec, cfg, be, new Rng(0));
    model.adapter.allocGrads(be);
    for (const p of model.adapter.params()) for (let moment = 0; moment < 2; moment++) be.zeros([...p.t.shape], 'optimizer');
    const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 31) % 300);
    const r = model.lossAndGrad(ids, ids, B, T, 1 / (B * T), 1, !!ckpt);
    be.free(r.loss);
    const est = estimateMemory({ spec: model.spec, lora: cfg, seqLen: T, batch: B, gradCheckpoint: !!ckpt, quant });
    if (quant) assert.equal(est.bytes.weights, be.mem.peak.weights, 'held weight bytes are the analytic count');
    const all = [...MEM_TAGS, 'total'] as const;
    const report = all.map((t) => `${t} ${est.bytes[t]}/${be.mem.peak[t]}`).join(', ');
    for (const tag of all) {
      const got = be.mem.peak[tag];
      const want = est.bytes[tag];
      assert.ok(Math.abs(want - got) <= 0.05 * got, `${tag}: estimate ${want}, measured ${got} (estimate/measured: ${report})`);
    }
    be.dispose();
  });

for (const dtype of ['BF16', 'F16'] as const)
  test(`${dtype} checkpoints keep their weight matrices in ${dtype}: half the memory, the same numbers as widening them first`, () => {
    const root = tmpDir('half');
    makeTinyModel(path.join(root, 'b'), { modelType: 'llama', dtype });
    makeTinyModel(path.join(root, 'f'), { modelType: 'llama', dtype: 'F32' });
    const beB = new CpuBackend({ threads: 2 });
    const beF = new CpuBackend({ threads: 2 });
    const b = openModel(path.join(root, 'b'), beB).model;
    openModel(path.join(root, 'f'), beF);
    const norms = b.spec.layers * 2 * b.spec.hidden * 4 + b.spec.hidden * 4; // norm weights stay f32
    assert.equal(beB.mem.live.weights - norms, (beF.mem.live.weights - norms) / 2);
    // the same model with every matrix widened to f32 in memory gives the same logits
    const ids = Int32Array.from({ length: 12 }, (_, i) => (i * 37) % 300);
    const logits = () => beB.read(b.logits(b.forward(ids, 1, 12).acts.nf.y)).slice();
    const before = logits();
    for (const l of b.w.layers) for (const lin of Object.values(l.lin)) lin.w = beB.toF32(lin.w);
    (b.w as { lmHead: unknown }).lmHead = beB.toF32(b.w.lmHead);
    assert.deepEqual(logits(), before);
  });
