// lorakit's GGUF exports checked by llama.cpp itself (node-llama-cpp): on the llama, qwen2 and qwen3 fixtures,
// the exported base loads with and without the exported LoRA adapter, tokenizes prompts as lorakit does, and its
// greedy tokens equal lorakit's generate() (temperature 0) for the F32 and F16 exports; for Q8_0 its logits along
// lorakit's tokens stay close.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { CpuBackend } from '../../src/engine/backend/cpu/cpu';
import { Rng } from '../../src/engine/core/rng';
import { makeTinyModel } from '../../src/engine/fixtures/model';
import { eosIds } from '../../src/engine/formats/config';
import { defaultLoraConfig } from '../../src/engine/formats/lora-config';
import { LoraAdapter } from '../../src/engine/model/lora';
import { LlamaModel } from '../../src/engine/model/llama';
import { saveAdapter } from '../../src/engine/model/peft';
import { exportAdapterGguf, exportModelGguf } from '../../src/engine/tasks/export/gguf';
import { generate } from '../../src/engine/tasks/generate';
import { openModel } from '../../src/engine/tasks/session';
import { tmpDir } from '../helpers';
import { LlamaCpp, nodeLlamaCpp } from '../llama-cpp';

const PROMPTS = ['The quick brown fox', 'In 1984, three cats sat on a mat.'];
const MAX_NEW = 12;

let cpp: LlamaCpp | string;
before(async () => {
  cpp = await nodeLlamaCpp();
});
after(async () => {
  if (typeof cpp !== 'string') await cpp.dispose();
});

/** lorakit's logits before each of `ids` and after the last (teacher forcing) */
function lorakitLogits(model: LlamaModel, prompt: number[], ids: number[], n: number): Float32Array[] {
  const cache = model.newCache();
  const out: Float32Array[] = [];
  try {
    let feed = Int32Array.from(prompt);
    for (let i = 0; i <= ids.length; i++) {
      const t = model.step(feed, cache);
      out.push(model.be.read(t).slice(0, n));
      model.be.free(t);
      feed = Int32Array.of(ids[i]);
    }
  } finally {
    model.freeCache(cache);
  }
  return out;
}

const maxDiff = (a: Float32Array[], b: Float32Array[]) => {
  let m = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++) for (let j = 0; j < a[i].length; j++) m = Math.max(m, Math.abs(a[i][j] - b[i][j]));
  return m;
};

const argmax = (l: Float32Array) => l.reduce((b, x, i) => (x > l[b] ? i : b), 0);
const firstDiff = (a: number[], b: number[]) => {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (a[i] !== b[i]) return i;
  return -1;
};

const CASES = [
  { modelType: 'llama', lora: {} },
  { modelType: 'qwen2', lora: { useRslora: true } },
  { modelType: 'qwen3', lora: { alphaPattern: { q_proj: 32 } } },
] as const;

for (const c of CASES)
  test(`llama.cpp runs the ${c.modelType} GGUF export with and without its LoRA adapter and agrees with lorakit`, async (t) => {
    if (typeof cpp === 'string') return t.skip(cpp);
    const root = tmpDir(`gguf-${c.modelType}`);
    const dir = path.join(root, 'model');
    // F16 weights: the F32 and F16 exports hold exactly the values lorakit computes with; 192 = 6 blocks of 32,
    // so every linear weight is Q8_0 in the Q8_0 export
    makeTinyModel(dir, { modelType: c.modelType, dtype: 'F16', std: 0.25, intermediate: 192, seed: 3 });
    const be = new CpuBackend();
    const { model, tokenizer } = openModel(dir, be);
    const adapter = LoraAdapter.create(model.spec, defaultLoraConfig({ r: 4, alpha: 8, ...c.lora }), be, new Rng(7));
    const rng = new Rng(11);
    for (const m of adapter.modules.values())
      be.write(
        m.B,
        Float32Array.from({ length: m.B.shape[0] * m.B.shape[1] }, () => 0.3 * rng.normal()),
      );
    const adapterDir = path.join(root, 'adapter');
    saveAdapter(adapterDir, adapter, be);
    const ggufs = Object.fromEntries(
      (['f32', 'f16', 'q8_0'] as const).map((type) => [
        type,
        exportModelGguf({ model: dir, type, out: path.join(root, `m-${type}.gguf`) }).out,
      ]),
    );
    const lora = exportAdapterGguf({ adapter: adapterDir, model: dir, out: path.join(root, 'a.gguf') });
    assert.equal(lora.tensors, 2 * 7 * model.spec.layers);

    const n = Math.min(model.spec.vocabSize, tokenizer.vocabSize);
    const stops = new Set([...eosIds(model.spec), ...(tokenizer.eosId !== undefined ? [tokenizer.eosId] : [])]);
    const report: string[] = [];
    for (const withAdapter of [false, true]) {
      model.adapter = adapter;
      model.adapterEnabled = withAdapter;
      for (const prompt of PROMPTS) {
        const ours = await generate(model, tokenizer, prompt, { maxNewTokens: MAX_NEW, temperature: 0 });
        const promptIds = tokenizer.encode(prompt);
        const ourLogits = lorakitLogits(model, promptIds, ours.ids, n);
        const what = `${c.modelType}${withAdapter ? ' + LoRA' : ''} "${prompt}"`;
        for (const type of ['f32', 'f16', 'q8_0'] as const) {
          const o = { prompt, n, maxNew: MAX_NEW, stops, adapter: withAdapter ? lora.out : undefined };
          if (type !== 'q8_0') {
            const theirs = await cpp.greedy(ggufs[type], o);
            assert.deepEqual(theirs.prompt, promptIds, `${what}: llama.cpp tokenizes the prompt differently`);
            const k = firstDiff(theirs.ids, ours.ids);
            const diff = maxDiff(theirs.logits.slice(0, k < 0 ? undefined : k + 1), ourLogits);
            if (k < 0)
              report.push(
                `${type} ${withAdapter ? '+lora' : 'base '}: ${ours.ids.length} tokens equal, max logit diff ${diff.toExponential(2)}`,
              );
            else {
              // llama.cpp rounds activations to f16 for f16 weights: where lorakit's top two logits are closer
              // than that rounding moves them, either token is right, and the two runs part there
              const top = [...ourLogits[k]].sort((x, y) => y - x);
              const margin = top[0] - top[1];
              report.push(
                `${type} ${withAdapter ? '+lora' : 'base '}: ${k} tokens equal, then a near-tie (margin ${margin.toExponential(2)}, logit diff ${diff.toExponential(2)})`,
              );
              if (type === 'f32' || !(margin < diff)) assert.deepEqual(theirs.ids, ours.ids, `${what} ${type}: greedy tokens`);
            }
          } else {
            const theirs = await cpp.greedy(ggufs[type], { ...o, force: ours.ids, maxNew: ours.ids.length + 1 });
            const d = maxDiff(theirs.logits, ourLogits);
            const span = Math.max(...ourLogits.map((l) => Math.max(...l) - Math.min(...l)));
            const agree = theirs.logits.filter((l, i) => argmax(l) === argmax(ourLogits[i])).length / theirs.logits.length;
            report.push(
              `q8_0 ${withAdapter ? '+lora' : 'base '}: max logit diff ${d.toExponential(2)} (logit range ${span.toFixed(2)}), same argmax at ${(100 * agree).toFixed(0)}% of ${theirs.logits.length} steps`,
            );
            assert.ok(d < 0.1 * span, `${what} q8_0: logits differ by ${d} (range ${span})`);
            assert.ok(agree >= 0.6, `${what} q8_0: the argmax agrees at only ${(100 * agree).toFixed(0)}% of the steps`);
          }
        }
      }
    }
    t.diagnostic(report.join('\n'));
  });
