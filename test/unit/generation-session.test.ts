// The generation session: one base with adapters chosen per request, a KV prefix cache that changes no token,
// stop sequences, fill-in-the-middle, cancellation and fair turns between concurrent requests.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import fc from 'fast-check';
import { CpuBackend } from '../../src/engine/backend/cpu/cpu';
import { resolveTrainConfig } from '../../src/engine/config';
import { makeTinyModel } from '../../src/engine/fixtures/model';
import { makePatternFolder, PATTERN_PREFIX, PATTERN_TRAINING, PATTERNS } from '../../src/engine/fixtures/pattern';
import { GenerationSession, PREFILL_CHUNK } from '../../src/engine/tasks/serve/session';
import { StopScanner } from '../../src/engine/tasks/serve/stops';
import { openModel } from '../../src/engine/tasks/session';
import { train } from '../../src/engine/tasks/train/trainer';
import { FUZZ_SEED, tmpDir } from '../helpers';
import { TokenHealer } from '../../src/engine/tasks/serve/heal';
import { TextTokenizer, type Tokenizer } from '../../src/engine/formats/tokenizer';
import * as fs from 'node:fs';

const root = tmpDir('session');
const modelDir = path.join(root, 'model');
makeTinyModel(modelDir, { modelType: 'qwen2', fim: true, std: 0.3 });
// the pattern adapters' base: weights of the default scale, as the fixture's training settings expect
const patternBase = path.join(root, 'pattern-base');
makeTinyModel(patternBase, { modelType: 'qwen2', fim: true });
const plainDir = path.join(root, 'plain');
makeTinyModel(plainDir, { modelType: 'qwen2', std: 0.3 });

const adapters = new Map<string, Promise<string>>();
/** a pattern adapter trained once per test file */
function patternAdapter(name: keyof typeof PATTERNS): Promise<string> {
  if (!adapters.has(name)) adapters.set(name, trainPattern(name));
  return adapters.get(name)!;
}
async function trainPattern(name: keyof typeof PATTERNS): Promise<string> {
  const data = makePatternFolder(path.join(root, `data-${name}`), PATTERNS[name]);
  const out = path.join(root, `run-${name}`);
  await train(resolveTrainConfig({ model: patternBase, data, out, ...PATTERN_TRAINING, backend: 'cpu', seed: 1 }));
  return path.join(out, 'adapter');
}

function open(dir = modelDir, prefixCaches = 4): GenerationSession {
  const { model, tokenizer } = openModel(dir, new CpuBackend());
  return new GenerationSession(model, tokenizer, { prefixCaches });
}

const text = 'The quick brown fox jumps over the lazy dog. A small model learns the shape of its data. ';

test('a cached prefix gives the same tokens as a cold run, greedy and sampled, and computes only the new tokens', async () => {
  const warm = open(modelDir, 4);
  const cold = open(modelDir, 0);
  const base = text.repeat(3);
  // a long first prompt (past one prefill chunk), then prompts that differ from it only near the end
  const prompts = [
    text.repeat(12),
    base + 'Low-rank',
    base + 'Low-rank adaptation',
    base + 'Quantized',
    base + 'Low-rank adaptation freezes',
  ];
  assert.ok(warm.tokenizer.encode(prompts[0]).length > PREFILL_CHUNK);
  for (const sampling of [{ temperature: 0 }, { temperature: 0.9, topP: 0.95, seed: 7 }]) {
    for (const prompt of prompts) {
      const a = await warm.complete({ prompt, maxTokens: 12, ...sampling });
      const b = await cold.complete({ prompt, maxTokens: 12, ...sampling });
      assert.deepEqual(a.ids, b.ids, `${JSON.stringify(prompt.slice(-20))} ${JSON.stringify(sampling)}`);
      assert.equal(a.text, b.text);
      assert.equal(b.cachedTokens, 0);
    }
  }
  // the third prompt extends the second: all of the second's prompt (and what it generated, where it matches) is reused
  const p2 = await warm.complete({ prompt: prompts[2], maxTokens: 4 });
  const p4 = await warm.complete({ prompt: prompts[4], maxTokens: 4 });
  assert.ok(p4.cachedTokens >= warm.tokenizer.encode(prompts[2]).length - 1, `${p4.cachedTokens} cached of ${p4.promptTokens}`);
  assert.ok(p2.promptTokens > 0);
  // the same prompt again: everything but the last token comes from the cache
  const again = await warm.complete({ prompt: prompts[4], maxTokens: 4 });
  assert.equal(again.cachedTokens, again.promptTokens - 1);
  assert.deepEqual(again.ids, p4.ids);
});

test('adapters are chosen per request: each gives its own pattern, the base neither, and unloading ends one', async () => {
  const [zebra, mango] = await Promise.all([patternAdapter('zebra'), patternAdapter('mango')]);
  const s = open(patternBase);
  s.loadAdapter('zebra', zebra);
  s.loadAdapter('mango', mango);
  assert.deepEqual(s.adapterNames(), ['zebra', 'mango']);
  assert.equal(s.info('zebra')?.rank, PATTERN_TRAINING.rank);
  const run = (adapter: string | null) => s.complete({ prompt: PATTERN_PREFIX, adapter, maxTokens: 12, stop: ['\n'] });
  const weights = s.model.w.layers[0].lin.q_proj.w;
  for (let round = 0; round < 2; round++) {
    assert.match((await run('zebra')).text, /zebra_quux/);
    assert.match((await run('mango')).text, /mango_flux/);
    const b = (await run(null)).text;
    assert.doesNotMatch(b, /zebra|mango/);
  }
  // switching never reloaded or changed the base weights
  assert.equal(s.model.w.layers[0].lin.q_proj.w, weights);
  // unloading while a request runs: the request finishes with its adapter, the next one is refused
  const running = s.complete({ prompt: PATTERN_PREFIX, adapter: 'mango', maxTokens: 12, stop: ['\n'] });
  assert.equal(s.unloadAdapter('mango'), true);
  assert.match((await running).text, /mango_flux/);
  await assert.rejects(run('mango'), /no adapter named "mango" is loaded/);
  assert.equal(s.unloadAdapter('mango'), false);
  s.close();
});

test('fill-in-the-middle uses the FIM tokens where the tokenizer has them, and the prefix alone otherwise', async () => {
  const s = open();
  assert.ok(s.fim);
  const c = await s.complete({ prompt: 'def f(x):\n    return ', suffix: '\n\nprint(f(1))\n', maxTokens: 1 });
  assert.equal(c.fim, true);
  const want = [s.fim.prefix, ...s.tokenizer.encode('def f(x):\n    return ', false), s.fim.suffix];
  want.push(...s.tokenizer.encode('\n\nprint(f(1))\n', false), s.fim.middle);
  assert.equal(c.promptTokens, want.length);
  // a suffix of blanks (the end of a file) is no reason for fill-in-the-middle
  assert.equal((await s.complete({ prompt: 'def f(x):', suffix: '\n  \n', maxTokens: 1 })).fim, false);
  const plain = open(plainDir);
  assert.equal(plain.fim, null);
  const p = await plain.complete({ prompt: 'def f(x):\n    return ', suffix: '\n\nprint(f(1))\n', maxTokens: 1 });
  assert.equal(p.fim, false);
  assert.equal(p.promptTokens, plain.tokenizer.encode('def f(x):\n    return ').length);
  // a prompt longer than the context keeps the text nearest the cursor
  const long = await s.complete({ prompt: 'x = 1\n'.repeat(3000), suffix: 'y = 2\n'.repeat(3000), maxTokens: 8 });
  assert.ok(long.promptCut && long.promptTokens <= s.model.spec.maxPositions - 8);
});

test('stop sequences end the text before them, also when they arrive split over tokens', async () => {
  const s = open();
  const free = await s.complete({ prompt: text, maxTokens: 24 });
  assert.ok(free.text.length > 6, free.text);
  const stop = free.text.slice(3, 6);
  let streamed = '';
  const c = await s.complete({ prompt: text, maxTokens: 24, stop: ['@@never', stop], onText: (d) => (streamed += d) });
  assert.equal(c.finishReason, 'stop');
  assert.equal(c.text, free.text.slice(0, free.text.indexOf(stop)));
  assert.equal(streamed, c.text);
});

test('a stop scanner releases exactly the text before the first stop, whatever the chunking', () => {
  fc.assert(
    fc.property(
      fc.string({ unit: fc.constantFrom('a', 'b', 'c', '\n', 'é'), maxLength: 40 }),
      fc.array(fc.string({ unit: fc.constantFrom('a', 'b', '\n'), minLength: 1, maxLength: 3 }), { maxLength: 3 }),
      fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 10 }),
      (full, stops, steps) => {
        const scan = new StopScanner(stops);
        let shown = '';
        let end = 0;
        let last = { text: '', stopped: false, delta: '' };
        for (let i = 0; end < full.length && !last.stopped; i++) {
          end = Math.min(full.length, end + steps[i % steps.length]);
          last = scan.push(full.slice(0, end));
          shown += last.delta;
        }
        if (!last.stopped) {
          last = scan.push(full, true);
          shown += last.delta;
        }
        // the text ends at the first stop seen in the first chunk that holds one (a stop that would only be
        // completed later does not count, even if it would start earlier: generation has ended by then)
        let want = full;
        for (let i = 0, e = 0; e < full.length; i++) {
          e = Math.min(full.length, e + steps[i % steps.length]);
          const cuts = stops.map((s) => full.slice(0, e).indexOf(s)).filter((j) => j >= 0);
          if (cuts.length) {
            want = full.slice(0, Math.min(...cuts));
            break;
          }
        }
        assert.equal(last.text, want);
        assert.equal(shown, want);
      },
    ),
    { seed: FUZZ_SEED, numRuns: 2000 },
  );
});

test('cancelling ends a generation with what it has; concurrent requests take turns token by token', async () => {
  const s = open(modelDir, 0);
  const ac = new AbortController();
  let n = 0;
  const c = await s.complete({ prompt: text, maxTokens: 200, signal: ac.signal, onText: () => ++n === 3 && ac.abort() });
  assert.equal(c.finishReason, 'cancelled');
  assert.ok(c.completionTokens >= 3 && c.completionTokens < 200);
  const order: string[] = [];
  const [a, b] = await Promise.all(
    ['A', 'B'].map((who) => s.complete({ prompt: text + who, maxTokens: 10, onText: () => order.push(who) })),
  );
  assert.equal(a.completionTokens + b.completionTokens > 0, true);
  // both made progress before either finished
  const firstB = order.indexOf('B'),
    lastA = order.lastIndexOf('A');
  assert.ok(firstB >= 0 && lastA >= 0 && firstB < lastA, order.join(''));
  // an aborted signal before the first turn gives nothing
  const pre = new AbortController();
  pre.abort();
  assert.equal((await s.complete({ prompt: text, maxTokens: 10, signal: pre.signal })).completionTokens, 0);
});

test('token healing: a prompt cut after a lone space completes as the prompt without it, and only when asked', async () => {
  const s = open(patternBase);
  s.loadAdapter('zebra', await patternAdapter('zebra'));
  const ask = (prompt: string, heal?: boolean) => s.complete({ prompt, adapter: 'zebra', maxTokens: 12, stop: ['\n'], heal });
  const plain = await ask(PATTERN_PREFIX);
  assert.match(plain.text, /^ zebra_quux/);
  // the trailing space is one token the model never saw there: taken back, and the first token must start with it
  const healed = await ask(PATTERN_PREFIX + ' ', true);
  assert.equal(healed.healed, ' ');
  assert.equal(healed.promptTokens, s.tokenizer.encode(PATTERN_PREFIX + ' ').length - 1);
  assert.deepEqual(healed.ids, plain.ids, 'the same tokens as the prompt without the space');
  assert.equal(healed.text, plain.text.slice(1), 'the text after the space the prompt already has');
  // off by default (the HTTP APIs), and never for a chat
  const off = await ask(PATTERN_PREFIX + ' ');
  assert.equal(off.healed, null);
  assert.equal(off.promptTokens, s.tokenizer.encode(PATTERN_PREFIX + ' ').length);
  // with FIM, the prefix's last token is the one healed
  const f = await s.complete({ prompt: PATTERN_PREFIX + ' ', suffix: '\n\nprint(1)\n', adapter: 'zebra', maxTokens: 4, heal: true });
  assert.equal(f.fim, true);
  assert.equal(f.healed, ' ');
  const pre = s.tokenizer.encode(PATTERN_PREFIX + ' ', false).length;
  assert.equal(f.promptTokens, 3 + pre - 1 + s.tokenizer.encode('\n\nprint(1)\n', false).length);
  s.close();
});

test('the token healer allows exactly the tokens that extend the one taken back, never a special token, by bytes or by text', () => {
  const { tokenizer } = openModel(modelDir, new CpuBackend({ wasm: false }));
  const n = tokenizer.vocabSize;
  const pieces = tokenizer.vocabPieces();
  assert.ok(pieces, 'the fixture tokenizer is byte-level BPE');
  // the same tokenizer seen as one that is not byte-level: the healer compares decoded texts instead
  const byText: Tokenizer = Object.assign(Object.create(tokenizer), { vocabPieces: () => null });
  const specials = new Set(tokenizer.addedIds());
  const got: number[][] = [];
  for (const [tok, mode] of [
    [tokenizer, 'bytes'],
    [byText, 'text'],
  ] as const) {
    const h = new TokenHealer(tok, n);
    const last = tokenizer.encode('def f(x):\n    return ', false).pop()!;
    const r = h.heal(last);
    assert.ok(r && r.text === ' ' && r.allowed.length > 1, mode);
    const want: number[] = [];
    for (let id = 0; id < n; id++) {
      if (specials.has(id)) continue;
      const t = mode === 'bytes' ? pieces[id] : h.textOf([id]);
      const of = mode === 'bytes' ? pieces[last]! : r.text;
      if (t?.startsWith(of) && !(mode === 'text' && t.includes('\uFFFD'))) want.push(id);
    }
    assert.deepEqual(
      [...r.allowed].sort((a, b) => a - b),
      want,
      mode,
    );
    got.push(want);
    assert.ok(r.allowed.includes(last));
    for (const id of specials) {
      assert.equal(h.heal(id), null, `special ${id} is not healed (${mode})`);
      assert.ok(!r.allowed.includes(id));
    }
    // a token no other token's key starts with ("x" here: the fixture's vocabulary is small) is left as it is
    assert.equal(h.heal(tokenizer.encode('x', false)[0]), null, mode);
  }
  assert.deepEqual(got[0], got[1], 'bytes and texts agree where every token is whole characters');
});

test("token healing never writes a control token out, even one its tokenizer does not mark special (Qwen2.5's FIM markers)", () => {
  // the fixture's tokenizer with its added tokens marked "special": false, as Qwen2.5-Coder ships its FIM markers
  const dir = path.join(root, 'unmarked');
  fs.mkdirSync(dir, { recursive: true });
  const json = JSON.parse(fs.readFileSync(path.join(modelDir, 'tokenizer.json'), 'utf8'));
  for (const t of json.added_tokens) t.special = false;
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(json));
  fs.copyFileSync(path.join(modelDir, 'tokenizer_config.json'), path.join(dir, 'tokenizer_config.json'));
  const tok = TextTokenizer.load(dir);
  const added = tok.addedIds();
  assert.ok(added.includes(tok.tokenId('<|fim_middle|>')!));
  const last = tok.encode('List<', false).pop()!;
  assert.equal(tok.decode([last]), '<');
  const r = new TokenHealer(tok, tok.vocabSize).heal(last);
  for (const id of added) assert.ok(!r?.allowed.includes(id), `added token ${tok.decode([id], false)} is never allowed`);
});
