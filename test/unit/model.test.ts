// The model and LoRA: PEFT's own invariants, the WebAssembly path against the reference on whole models, and a
// finite-difference check of the LoRA gradients through the whole network.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { CpuBackend } from '../../src/engine/backend/cpu/cpu';
import { Backend } from '../../src/engine/core/backend';
import { makeTinyModel, TinyModelOptions } from '../../src/engine/fixtures/model';
import { openModel } from '../../src/engine/tasks/session';
import { LoraAdapter, mergeInPlace } from '../../src/engine/model/lora';
import { defaultLoraConfig, LoraConfig } from '../../src/engine/formats/lora-config';
import { loadAdapter, saveAdapter } from '../../src/engine/model/peft';
import { LlamaModel } from '../../src/engine/model/llama';
import { Rng } from '../../src/engine/core/rng';
import { assertClose, tmpDir } from '../helpers';
import { QuantConfig } from '../../src/engine/core/qweight';

function setup(opts: TinyModelOptions, be: Backend, lora: Partial<LoraConfig> = {}, quant: QuantConfig | null = null) {
  const dir = path.join(tmpDir('model'), 'm');
  makeTinyModel(dir, opts);
  const { model } = openModel(dir, be, undefined, quant);
  model.adapter = LoraAdapter.create(model.spec, defaultLoraConfig({ dropout: 0, ...lora }), be, new Rng(3));
  return { dir, model };
}

function ids(n: number, V: number, seed = 1): Int32Array {
  const r = new Rng(seed);
  return Int32Array.from({ length: n }, () => Math.floor(r.next() * V));
}

function logitsOf(m: LlamaModel, x: Int32Array, B: number, T: number): Float32Array {
  const { acts } = m.forward(x, B, T);
  return m.be.read(m.logits(acts.nf.y)).slice();
}

/** make B non-zero so the adapter does something */
function randomizeB(m: LlamaModel, seed = 5, s = 0.05) {
  const r = new Rng(seed);
  for (const mod of m.adapter!.modules.values())
    m.be.write(
      mod.B,
      Float32Array.from({ length: mod.B.shape[0] * mod.B.shape[1] }, () => s * r.normal()),
    );
}

const VARIANTS: [string, TinyModelOptions][] = [
  ['llama untied f32', { modelType: 'llama' }],
  ['llama tied bf16', { modelType: 'llama', tied: true, dtype: 'BF16' }],
  ['qwen2 (q/k/v bias)', { modelType: 'qwen2' }],
  ['qwen3 (q/k norm)', { modelType: 'qwen3', headDim: 24 }],
  ['mistral (sliding window 3)', { modelType: 'mistral', slidingWindow: 3 }],
  [
    'llama3 rope scaling',
    {
      modelType: 'llama',
      ropeScaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 16 },
    },
  ],
];

for (const [name, opts] of VARIANTS) {
  test(`PEFT invariants: ${name}`, () => {
    const be = new CpuBackend();
    const { model: m, dir } = setup(opts, be);
    const V = m.spec.vocabSize;
    const x = ids(2 * 9, V);
    // B = 0 gives exactly the base output
    m.adapterEnabled = false;
    const base = logitsOf(m, x, 2, 9);
    m.adapterEnabled = true;
    assert.deepEqual(logitsOf(m, x, 2, 9), base);
    // a non-zero adapter changes the output
    randomizeB(m);
    const adapted = logitsOf(m, x, 2, 9);
    let diff = 0;
    for (let i = 0; i < base.length; i++) diff = Math.max(diff, Math.abs(adapted[i] - base[i]));
    assert.ok(diff > 1e-3, `adapter changed logits by only ${diff}`);
    // save → load gives identical logits
    const adir = path.join(path.dirname(dir), 'adapter');
    saveAdapter(adir, m.adapter!, be);
    const loaded = loadAdapter(adir, m.spec, be);
    const orig = m.adapter!;
    m.adapter = loaded;
    assert.deepEqual(logitsOf(m, x, 2, 9), adapted);
    // merged equals unmerged; unmerge restores the base
    m.adapterEnabled = false;
    mergeInPlace(loaded, m.w, be, 1);
    assertClose(logitsOf(m, x, 2, 9), adapted, 2e-5, 2e-5, 'merged vs unmerged');
    mergeInPlace(loaded, m.w, be, -1);
    assertClose(logitsOf(m, x, 2, 9), base, 2e-5, 2e-5, 'unmerged vs base');
    m.adapter = orig;
  });
}

test('trainable parameter count is exact', () => {
  const be = new CpuBackend();
  // hidden 64, heads 4 (D 16), kv 2, FF 176, 2 layers
  const C = 64,
    Q = 64,
    KVd = 32,
    FF = 176,
    L = 2;
  const perLayer = (r: number) => r * (C + Q) + r * (C + KVd) * 2 + r * (Q + C) + r * (C + FF) * 2 + r * (FF + C);
  const { model: m } = setup({}, be, { r: 4 });
  assert.equal(m.adapter!.trainableCount(), L * perLayer(4));
  const { model: m2 } = setup({}, be, { r: 8, targetModules: ['q_proj', 'v_proj'] });
  assert.equal(m2.adapter!.trainableCount(), L * (8 * (C + Q) + 8 * (C + KVd)));
  assert.deepEqual(m2.adapter!.targetNames(), ['q_proj', 'v_proj']);
});

test('rsLoRA scales by alpha/sqrt(r)', () => {
  const be = new CpuBackend();
  const { model: m } = setup({}, be, { r: 16, alpha: 8, useRslora: true });
  for (const mod of m.adapter!.modules.values()) assert.equal(mod.scale, 8 / 4);
  const { model: m2 } = setup({}, be, { r: 16, alpha: 8 });
  for (const mod of m2.adapter!.modules.values()) assert.equal(mod.scale, 0.5);
});

const QUANTS: [string, QuantConfig | null][] = [
  ['', null],
  [' (QLoRA: NF4 + double quant base)', { type: 'nf4', blocksize: 64, doubleQuant: true }],
  [' (QLoRA: FP4 base, blocks of 32)', { type: 'fp4', blocksize: 32, doubleQuant: false }],
];

for (const [qname, quant] of QUANTS)
  test(`the WebAssembly backend matches the reference backend: loss and every LoRA gradient${qname}`, () => {
    const opts: TinyModelOptions = { modelType: 'qwen2', layers: 2 };
    const grads: Float32Array[][] = [];
    const losses: number[] = [];
    for (const be of [new CpuBackend({ wasm: false }), new CpuBackend({ threads: 2 })]) {
      const { model: m } = setup(opts, be, { dropout: 0.1 }, quant);
      randomizeB(m);
      m.adapter!.allocGrads(be);
      const x = ids(3 * 11, m.spec.vocabSize, 2);
      const t = ids(3 * 11, m.spec.vocabSize, 3);
      t[4] = -1;
      const { loss, count } = m.lossAndGrad(x, t, 3, 11, 1 / 32, 42);
      assert.equal(count, 32);
      losses.push(be.read(loss)[0]);
      grads.push(m.adapter!.params().map((p) => be.read(p.g()!).slice()));
    }
    assert.ok(Math.abs(losses[0] - losses[1]) < 1e-4 * Math.abs(losses[0]), `${losses}`);
    grads[0].forEach((g, i) => assertClose(grads[1][i], g, 1e-6, 1e-3, `grad ${i}`));
  });

const FD_CASES: [string, TinyModelOptions, QuantConfig | null, boolean][] = [
  ...VARIANTS.map(([n, o]): [string, TinyModelOptions, QuantConfig | null, boolean] => [n, o, null, false]),
  ['llama on an NF4 + DQ base (reference ops)', { modelType: 'llama' }, { type: 'nf4', blocksize: 32, doubleQuant: true }, false],
  [
    'qwen3 on an NF4 base (fused WebAssembly kernel)',
    { modelType: 'qwen3', headDim: 24 },
    { type: 'nf4', blocksize: 64, doubleQuant: false },
    true,
  ],
];
for (const [name, opts, quant, wasm] of FD_CASES)
  test(`LoRA gradients match finite differences through the whole model: ${name}`, () => {
    const be = new CpuBackend(wasm ? { threads: 2 } : { wasm: false });
    const { model: m } = setup(
      { ...opts, layers: 2, hidden: 32, intermediate: 48, heads: 4, kvHeads: 2, headDim: opts.headDim ? 12 : 8, vocab: 300 },
      be,
      {
        r: 2,
      },
      quant,
    );
    randomizeB(m, 9, 0.2);
    m.adapter!.allocGrads(be);
    const B = 2,
      T = 7;
    const x = ids(B * T, m.spec.vocabSize, 4);
    const t = ids(B * T, m.spec.vocabSize, 5);
    const { count } = m.lossAndGrad(x, t, B, T, 1, 0);
    const params = m.adapter!.params();
    const g = params.map((p) => be.read(p.g()!).slice());
    const lossAt = () => {
      const r = m.loss(x, t, B, T);
      return be.read(r.loss)[0] / count;
    };
    // directional derivatives along random directions over all LoRA parameters at once
    const rng = new Rng(11);
    for (let trial = 0; trial < 3; trial++) {
      const dirs = params.map((p) => Float32Array.from({ length: be.read(p.t).length }, () => rng.normal()));
      let norm = 0;
      dirs.forEach((d) => d.forEach((v) => (norm += v * v)));
      dirs.forEach((d) => d.forEach((v, j) => (d[j] = v / Math.sqrt(norm)))); // a unit direction
      let analytic = 0;
      dirs.forEach((d, i) => d.forEach((v, j) => (analytic += (v * g[i][j]) / count)));
      const h = 1e-3;
      const orig = params.map((p) => be.read(p.t).slice());
      const shift = (s: number) =>
        params.forEach((p, i) =>
          be.write(
            p.t,
            orig[i].map((v, j) => v + s * dirs[i][j]),
          ),
        );
      shift(h);
      const lp = lossAt();
      shift(-h);
      const lm = lossAt();
      shift(0);
      const numeric = (lp - lm) / (2 * h);
      assert.ok(
        Math.abs(numeric - analytic) < 2e-2 * Math.abs(analytic) + 1e-4,
        `trial ${trial}: numeric ${numeric} vs analytic ${analytic}`,
      );
    }
  });

for (const [name, opts] of VARIANTS)
  test(`a training step frees every activation it allocates: ${name}`, () => {
    const be = new CpuBackend();
    const { model: m } = setup(opts, be, { dropout: 0.1 });
    m.adapter!.allocGrads(be);
    const x = ids(2 * 8, m.spec.vocabSize);
    for (let i = 0; i < 2; i++) {
      const r = m.lossAndGrad(x, x, 2, 8, 1, i);
      be.free(r.loss);
      assert.equal(be.mem.live.activations, 0);
    }
    assert.ok(be.mem.peak.activations > 0);
  });

test('KV-cached decoding gives the same logits as a full forward pass', () => {
  const be = new CpuBackend();
  const { model: m } = setup({ modelType: 'qwen3' }, be);
  randomizeB(m);
  const x = ids(12, m.spec.vocabSize, 8);
  const full = logitsOf(m, x, 1, 12);
  const V = m.spec.vocabSize;
  const cache = m.newCache();
  const first = be.read(m.step(x.subarray(0, 5), cache)).slice();
  assertClose(first, full.subarray(4 * V, 5 * V), 1e-5, 1e-4, 'prefill');
  for (let t = 5; t < 12; t++) {
    const l = be.read(m.step(x.subarray(t, t + 1), cache)).slice();
    assertClose(l, full.subarray(t * V, (t + 1) * V), 1e-5, 1e-4, `position ${t}`);
  }
  m.freeCache(cache);
});

test('the KV cache grows by doubling, not by a copy per token, and a reserved one gives the same logits bit for bit', () => {
  const be = new CpuBackend();
  const { model: m } = setup({ modelType: 'qwen2' }, be);
  randomizeB(m);
  const x = ids(20, m.spec.vocabSize, 3);
  const decode = (reserve: number) => {
    const cache = m.newCache(reserve);
    const out: Float32Array[] = [];
    const caps: number[] = [];
    const step = (ids: Int32Array) => {
      const l = m.step(ids, cache);
      out.push(be.read(l).slice());
      be.free(l);
    };
    step(x.subarray(0, 3));
    for (let t = 3; t < 20; t++) {
      step(x.subarray(t, t + 1));
      caps.push(cache.k[0]!.shape[0]);
    }
    m.freeCache(cache);
    return { out, caps };
  };
  const grown = decode(0);
  assert.deepEqual([...new Set(grown.caps)], [6, 12, 24], 'the capacity doubles from the prompt');
  const reserved = decode(64);
  assert.deepEqual([...new Set(reserved.caps)], [64]);
  assert.deepEqual(reserved.out, grown.out);
  assert.equal(be.mem.live.activations, 0, 'freeCache frees the cache');
});

test('the LM head scored in row chunks gives the same loss and gradients as all rows at once', async () => {
  const { setLogitsChunkFloats, LOGITS_CHUNK_FLOATS } = await import('../../src/engine/model/llama');
  const be = new CpuBackend();
  const { model: m } = setup({ modelType: 'llama' }, be);
  randomizeB(m);
  m.adapter!.allocGrads(be);
  const x = ids(3 * 7, m.spec.vocabSize, 12);
  const run = () => {
    m.adapter!.zeroGrads(be);
    const r = m.lossAndGrad(x, x, 3, 7, 0.1, 0);
    return {
      loss: be.read(r.loss)[0],
      count: r.count,
      grads: m.adapter!.params().map((p) => be.read(p.g()!).slice()),
      eval: be.read(m.loss(x, x, 3, 7).loss)[0],
    };
  };
  const whole = run();
  const keep = LOGITS_CHUNK_FLOATS;
  setLogitsChunkFloats(m.spec.vocabSize * 4); // four rows at a time: 21 rows in 6 chunks
  try {
    const chunked = run();
    assert.equal(chunked.count, whole.count);
    assert.ok(Math.abs(chunked.loss - whole.loss) < 1e-4 * whole.loss);
    assert.ok(Math.abs(chunked.eval - whole.eval) < 1e-4 * whole.eval);
    chunked.grads.forEach((g, i) => assertClose(g, whole.grads[i], 1e-7, 1e-4, `grad ${i}`));
  } finally {
    setLogitsChunkFloats(keep);
  }
});

test('gradient checkpointing gives bit-identical loss and gradients with less activation memory', () => {
  const be = new CpuBackend();
  const { model: m } = setup({ modelType: 'qwen3', layers: 4 }, be, { dropout: 0.1 });
  randomizeB(m);
  m.adapter!.allocGrads(be);
  const x = ids(2 * 16, m.spec.vocabSize, 21);
  const run = (ckpt: boolean) => {
    m.adapter!.zeroGrads(be);
    be.mem.resetPeak();
    const r = m.lossAndGrad(x, x, 2, 16, 1 / 32, 7, ckpt);
    const out = { loss: be.read(r.loss)[0], grads: m.adapter!.params().map((p) => be.read(p.g()!).slice()), peak: be.mem.peak.activations };
    be.free(r.loss);
    assert.equal(be.mem.live.activations, 0);
    return out;
  };
  const plain = run(false);
  const ckpt = run(true);
  assert.equal(ckpt.loss, plain.loss);
  ckpt.grads.forEach((g, i) => assert.deepEqual(g, plain.grads[i]));
  assert.ok(ckpt.peak < 0.7 * plain.peak, `activation peak ${ckpt.peak} vs ${plain.peak}`);
});
