// Tokenizing on several threads (data/tokenize-pool.ts): the same examples, in the same order, as one thread and
// as @huggingface/tokenizers itself; a worker that is slow or fails changes nothing; errors name the data file;
// inputs that one thread finishes soon stay on one thread.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadExamples } from '../../src/engine/data/dataset';
import { readFolder } from '../../src/engine/data/folder';
import { TokenizePool, encodeAll, poolThreads } from '../../src/engine/data/tokenize-pool';
import { TextTokenizer } from '../../src/engine/formats/tokenizer';
import { makeTokenizer } from '../../src/engine/fixtures/bpe';
import { codeText, writeCodeFolder } from '../../src/engine/fixtures/code';
import { UserError } from '../../src/engine/core/errors';
import { tmpDir } from '../helpers';

const files = makeTokenizer(codeText(20_000, 3), 512, true, 'qwen2');
const tok = new TextTokenizer('/nowhere', files.tokenizerJson, files.tokenizerConfig);
const V = files.vocabSize;
const folder = tmpDir('pool');
writeCodeFolder(folder, 600_000, 5);

/** run fn with LORAKIT_THREADS and the pool's sizes set, then put them back */
function withPool<T>(threads: number, o: Partial<typeof TokenizePool>, fn: () => T): T {
  const keep = { ...TokenizePool };
  const env = process.env.LORAKIT_THREADS;
  process.env.LORAKIT_THREADS = String(threads);
  Object.assign(TokenizePool, { PARALLEL_AFTER_MS: 0, CHUNK: 1 << 14 }, o);
  try {
    return fn();
  } finally {
    Object.assign(TokenizePool, keep);
    if (env === undefined) delete process.env.LORAKIT_THREADS;
    else process.env.LORAKIT_THREADS = env;
  }
}

test('a folder on 3 threads: the same examples in the same order as one thread, and the library ids', () => {
  const one = withPool(1, {}, () => loadExamples(folder, tok, V, { appendEos: true }));
  assert.equal(TokenizePool.lastThreads, 1);
  // the workers start in well under a second, by when this thread has often done everything: here it waits for them
  const three = withPool(3, { MAIN_WORKS: false, PATIENCE_MS: 60_000 }, () => {
    const d = loadExamples(folder, tok, V, { appendEos: true });
    assert.equal(TokenizePool.lastThreads, 3);
    assert.ok(TokenizePool.lastFromWorkers > 10, `the workers encoded ${TokenizePool.lastFromWorkers} files`);
    return d;
  });
  // and shared with this thread, as it runs
  const shared = withPool(2, {}, () => loadExamples(folder, tok, V, { appendEos: true }));
  assert.deepEqual(shared.examples, one.examples);
  assert.ok(one.examples.length > 20, `${one.examples.length} files`);
  assert.deepEqual(
    three.examples.map((e) => e.source),
    one.examples.map((e) => e.source),
  );
  for (let i = 0; i < one.examples.length; i++) assert.deepEqual(three.examples[i].ids, one.examples[i].ids, one.examples[i].source);
  // and both are the library's own ids (the folder example is "path\ntext", then EOS)
  for (const e of one.examples.slice(0, 8)) {
    const text = fs.readFileSync(path.join(folder, e.source), 'utf8');
    assert.deepEqual(e.ids, [...tok.encodeReference(`${e.source}\n${text}`), tok.eosId], e.source);
  }
});

test('a worker that does not answer in time: this thread encodes its chunks, and nothing changes', () => {
  const texts = Array.from({ length: 40 }, (_, i) => ({ text: codeText(3000, 100 + i), addSpecial: i % 2 === 0, source: `t${i}` }));
  const want = texts.map((j) => tok.encode(j.text, j.addSpecial));
  const got = withPool(2, { MAIN_WORKS: false, PATIENCE_MS: 0, CHUNK: 2000 }, () => encodeAll(tok, texts));
  assert.deepEqual(got, want);
});

test('texts that UTF-8 would change (lone surrogates) reach the workers intact', () => {
  const texts = ['a\ud800b', codeText(3000, 1), '\udc00', '', 'x 🙂 \ud83d', '日本語'].map((text, i) => ({
    text,
    addSpecial: i % 2 === 0,
    source: `t${i}`,
  }));
  const got = withPool(3, { MAIN_WORKS: false, PATIENCE_MS: 60_000, CHUNK: 1 }, () => {
    const r = encodeAll(tok, texts);
    assert.equal(TokenizePool.lastFromWorkers, texts.length, 'every text through a worker');
    return r;
  });
  assert.deepEqual(
    got,
    texts.map((j) => tok.encodeReference(j.text, j.addSpecial)),
  );
});

test('JSONL rows of every form on 2 threads: the same examples, masks and order as one thread', () => {
  const dir = tmpDir('pool-jsonl');
  const f = path.join(dir, 'd.jsonl');
  const rows: object[] = [];
  for (let i = 0; i < 60; i++) {
    const t = codeText(800 + 37 * i, 200 + i);
    if (i % 4 === 0) rows.push({ text: t });
    else if (i % 4 === 1) rows.push({ prompt: t.slice(0, 100), completion: t.slice(100) });
    else if (i % 4 === 2)
      rows.push({
        messages: [
          { role: 'user', content: t.slice(0, 50) },
          { role: 'assistant', content: t.slice(50, 300) },
        ],
      });
    else rows.push({ input_ids: [5, 6, 7, 8], labels: [-100, 6, 7, 8] });
  }
  fs.writeFileSync(f, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const one = withPool(1, {}, () => loadExamples(f, tok, V, { appendEos: true }));
  const two = withPool(2, { CHUNK: 4000, MAIN_WORKS: false, PATIENCE_MS: 60_000 }, () => {
    const d = loadExamples(f, tok, V, { appendEos: true });
    assert.equal(TokenizePool.lastFromWorkers, 15 + 2 * 15, 'every text row, prompt and completion through the worker');
    return d;
  });
  assert.deepEqual(two.examples, one.examples);
  assert.deepEqual(
    one.examples.map((e) => e.source),
    rows.map((_, i) => `d.jsonl:${i + 1}`),
  );
});

test('a tokenizer that fails: the error names the first data file in order, on any number of threads', () => {
  const json = structuredClone(files.tokenizerJson) as Record<string, unknown>;
  json.post_processor = { type: 'TemplateProcessing', single: null }; // loads, then fails on every encode
  const broken = new TextTokenizer('/nowhere', json, files.tokenizerConfig);
  const first = readFolder(folder).files[0].path;
  for (const [threads, mainWorks] of [
    [1, true],
    [3, true],
    [2, false],
  ] as const) {
    const e = withPool(threads, { MAIN_WORKS: mainWorks }, () => {
      try {
        loadExamples(folder, broken, V, { appendEos: true });
      } catch (caught) {
        return caught;
      }
      assert.fail('should throw');
    });
    assert.ok(e instanceof UserError, String(e));
    assert.match(e.message, /the tokenizer failed .*tokenizer\.json \(tokenizing .*\)$/);
    assert.ok(e.message.includes(path.join(folder, first)), `${threads} threads: ${e.message} names ${first}`);
    assert.equal(e.file, path.join('/nowhere', 'tokenizer.json'));
  }
});

test('inputs that this thread finishes soon stay on one thread', () => {
  const keep = process.env.LORAKIT_THREADS;
  process.env.LORAKIT_THREADS = '4';
  const chunk = TokenizePool.CHUNK;
  TokenizePool.CHUNK = 1 << 14;
  try {
    assert.deepEqual(encodeAll(tok, [{ text: 'const x = 1;', addSpecial: true, source: 'a' }]), [tok.encode('const x = 1;')]);
    assert.equal(TokenizePool.lastThreads, 1);
    // three chunks: after the first, the other two would take this thread far less than PARALLEL_AFTER_MS
    const texts = Array.from({ length: 12 }, (_, i) => ({ text: codeText(4000, 300 + i), addSpecial: true, source: `t${i}` }));
    assert.deepEqual(
      encodeAll(tok, texts),
      texts.map((j) => tok.encode(j.text)),
    );
    assert.equal(TokenizePool.lastThreads, 1);
  } finally {
    TokenizePool.CHUNK = chunk;
    if (keep === undefined) delete process.env.LORAKIT_THREADS;
    else process.env.LORAKIT_THREADS = keep;
  }
});

test('the pool takes LORAKIT_THREADS as given, else the idle cores (at least this thread)', () => {
  const keep = process.env.LORAKIT_THREADS;
  try {
    process.env.LORAKIT_THREADS = '5';
    assert.equal(poolThreads(), 5);
    delete process.env.LORAKIT_THREADS;
    const n = poolThreads();
    assert.ok(n >= 1 && n <= os.availableParallelism(), `${n}`);
  } finally {
    if (keep === undefined) delete process.env.LORAKIT_THREADS;
    else process.env.LORAKIT_THREADS = keep;
  }
});
