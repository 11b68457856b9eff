// Sampling: greedy is the argmax, top-p keeps the nucleus, a seed repeats a run, temperature 1 follows softmax.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { sample, generate } from '../../src/engine/tasks/generate';
import { Rng } from '../../src/engine/core/rng';
import { CpuBackend } from '../../src/engine/backend/cpu/cpu';
import { makeTinyModel } from '../../src/engine/fixtures/model';
import { openModel } from '../../src/engine/tasks/session';
import { LoraAdapter } from '../../src/engine/model/lora';
import { defaultLoraConfig } from '../../src/engine/formats/lora-config';
import { tmpDir } from '../helpers';

const logits = Float32Array.of(1, 3, 2, 0.5, 2.9, -1);

test('greedy picks the argmax among the first n entries only', () => {
  assert.equal(sample(logits, 6, 0, 1, new Rng(0)), 1);
  assert.equal(sample(logits, 1, 0, 1, new Rng(0)), 0);
});

test('top-p keeps the smallest set of tokens whose mass reaches p', () => {
  const rng = new Rng(3);
  for (let i = 0; i < 200; i++) assert.equal(sample(logits, 6, 1, 1e-6, rng), 1);
  const seen = new Set<number>();
  for (let i = 0; i < 500; i++) seen.add(sample(logits, 6, 1, 0.6, rng));
  assert.deepEqual([...seen].sort(), [1, 4]); // p(1) ≈ 0.40, p(4) ≈ 0.36: together past 0.6
});

test('temperature 1 sampling follows the softmax, and a seed repeats it', () => {
  const rng = new Rng(5);
  const counts = new Array(6).fill(0);
  const n = 20000;
  for (let i = 0; i < n; i++) counts[sample(logits, 6, 1, 1, rng)]++;
  const z = Array.from(logits).reduce((s, x) => s + Math.exp(x), 0);
  logits.forEach((x, i) =>
    assert.ok(Math.abs(counts[i] / n - Math.exp(x) / z) < 0.015, `token ${i}: ${counts[i] / n} vs ${Math.exp(x) / z}`),
  );
  const a = Array.from(
    { length: 20 },
    (
      (r) => () =>
        sample(logits, 6, 0.9, 0.95, r)
    )(new Rng(9)),
  );
  const b = Array.from(
    { length: 20 },
    (
      (r) => () =>
        sample(logits, 6, 0.9, 0.95, r)
    )(new Rng(9)),
  );
  assert.deepEqual(a, b);
});

test('generate: the same seed gives the same text, the adapter changes it, it can be cancelled, and bad settings are refused', async () => {
  const dir = path.join(tmpDir('gen'), 'm');
  makeTinyModel(dir, { modelType: 'qwen2', std: 0.3 });
  const be = new CpuBackend();
  const { model, tokenizer } = openModel(dir, be);
  const opts = { maxNewTokens: 12, temperature: 0.9, topP: 0.9, seed: 4 };
  const g1 = await generate(model, tokenizer, 'The quick', opts);
  assert.equal((await generate(model, tokenizer, 'The quick', opts)).text, g1.text);
  assert.ok(g1.newTokens <= 12);
  model.adapter = LoraAdapter.create(model.spec, defaultLoraConfig({ r: 4 }), be, new Rng(1));
  for (const m of model.adapter.modules.values())
    be.write(
      m.B,
      Float32Array.from({ length: m.B.shape[0] * m.B.shape[1] }, () => 0.5),
    );
  const greedy = { maxNewTokens: 12 };
  const withA = (await generate(model, tokenizer, 'The quick', greedy)).ids;
  model.adapterEnabled = false;
  assert.notDeepEqual((await generate(model, tokenizer, 'The quick', greedy)).ids, withA);
  const ac = new AbortController();
  let seen = 0;
  const cut = await generate(model, tokenizer, 'The quick', {
    maxNewTokens: 50,
    signal: ac.signal,
    onText: () => ++seen === 3 && ac.abort(),
  });
  assert.ok(cut.newTokens < 50 && cut.newTokens >= 3, `${cut.newTokens} tokens`);
  // --chat: the prompt goes through the chat template as a user turn, ending with the assistant's header
  const chat = await generate(model, tokenizer, 'Hi', { maxNewTokens: 1, chat: true });
  assert.equal(chat.promptTokens, tokenizer.encode('<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n', false).length);
  await assert.rejects(generate(model, tokenizer, 'x', { topP: 0 }), /--top-p must be in \(0, 1\]/);
  await assert.rejects(generate(model, tokenizer, 'x', { temperature: -1 }), /--temperature must be ≥ 0/);
});
