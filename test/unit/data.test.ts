// Data: folder walking (.gitignore, binaries, huge files), the four JSONL forms and their loss masks,
// packing, the deterministic split, and bad input with line numbers.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readFolder } from '../../src/engine/data/folder';
import { loadExamples, pack, prepareData, splitExamples } from '../../src/engine/data/dataset';
import { TextTokenizer } from '../../src/engine/formats/tokenizer';
import { makeDatasets, makeTinyModel } from '../../src/engine/fixtures/model';
import { UserError } from '../../src/engine/core/errors';
import { tmpDir } from '../helpers';

const modelDir = path.join(tmpDir('data'), 'm');
makeTinyModel(modelDir, { modelType: 'qwen2' });
const tok = TextTokenizer.load(modelDir);
const V = 384;

function tree(root: string, files: Record<string, string | Buffer>) {
  for (const [p, c] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    fs.writeFileSync(path.join(root, p), c);
  }
}

test('folders honour .gitignore (nested, negated, dir-only), the usual ignores, and skip binaries and huge files', () => {
  const root = tmpDir('folder');
  tree(root, {
    '.gitignore': '*.log\nbuild-out/\n/secret.txt\n!keep.log\n',
    'a.md': '# Title\nhello',
    'src/x.ts': 'export const x = 1;',
    'src/.gitignore': 'gen.ts\n',
    'src/gen.ts': 'generated',
    'src/deep/secret.txt': 'only the root one is anchored',
    'secret.txt': 'anchored: ignored',
    'run.log': 'ignored',
    'keep.log': 'negated: kept',
    'build-out/y.js': 'ignored dir',
    'node_modules/pkg/index.js': 'never',
    'img.png': Buffer.from([0x89, 0x50, 0x4e, 0x47]),
    'blob.dat': Buffer.from([1, 0, 2, 3]),
    'latin1.txt': Buffer.from([0x63, 0x61, 0x66, 0xe9]),
    'huge.txt': 'x'.repeat((1 << 20) + 1),
    'package-lock.json': '{}',
  });
  fs.symlinkSync(path.join(root, 'a.md'), path.join(root, 'link.md'));
  const r = readFolder(root);
  assert.deepEqual(
    r.files.map((f) => f.path),
    ['a.md', 'keep.log', 'src/deep/secret.txt', 'src/x.ts'],
  );
  const why = Object.fromEntries(r.skipped.map((s) => [s.path, s.reason]));
  assert.equal(why['run.log'], 'matched .gitignore');
  assert.equal(why['secret.txt'], 'matched .gitignore');
  assert.equal(why['build-out/'], 'matched .gitignore');
  assert.equal(why['src/gen.ts'], 'matched .gitignore');
  assert.equal(why['node_modules/'], 'ignored folder');
  assert.equal(why['img.png'], 'binary file type');
  assert.match(why['blob.dat'], /binary/);
  assert.equal(why['latin1.txt'], 'not UTF-8 text');
  assert.match(why['huge.txt'], /too large/);
  assert.match(why['package-lock.json'], /generated/);
  assert.match(why['link.md'], /symbolic link/);
});

test('an empty folder or a folder of binaries is refused with the reasons', () => {
  const empty = tmpDir('empty');
  assert.throws(
    () => loadExamples(empty, tok, V, { appendEos: true }),
    (e: unknown) => e instanceof UserError && /no text files to train on \(none skipped\)/.test(e.message) && e.message.startsWith(empty),
  );
  const bins = tmpDir('bins');
  tree(bins, { 'a.bin': Buffer.from([0, 1]), 'b.png': Buffer.from([1]) });
  assert.throws(() => loadExamples(bins, tok, V, { appendEos: true }), /no text files to train on \(2 skipped: 2 binary file type\)/);
});

test('prompt/completion scores only the completion and EOS', () => {
  const dir = tmpDir('pc');
  const f = path.join(dir, 'd.jsonl');
  fs.writeFileSync(f, JSON.stringify({ prompt: 'Q: why?', completion: ' Because.' }) + '\n');
  const [e] = loadExamples(f, tok, V, { appendEos: true }).examples;
  const p = tok.encode('Q: why?');
  const c = tok.encode(' Because.', false);
  assert.deepEqual(e.ids, [...p, ...c, tok.eosId]);
  assert.deepEqual(e.scored, [...p.map(() => false), ...c.map(() => true), true]);
});

test('messages score the assistant turns (content and end-of-turn), never their headers or other roles', () => {
  const dir = tmpDir('chat');
  const f = path.join(dir, 'd.jsonl');
  const messages = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: 'Hello there' },
  ];
  fs.writeFileSync(f, JSON.stringify({ messages }) + '\n');
  const [e] = loadExamples(f, tok, V, { appendEos: true }).examples;
  const scoredText = tok.decode(
    e.ids.filter((_, i) => e.scored[i]),
    false,
  );
  assert.equal(scoredText, 'Hello there<|im_end|>\n');
  assert.equal(tok.decode(e.ids, false), tok.applyChat(messages));
});

test('input_ids are used as given, with labels −100 unscored; text scores everything', () => {
  const dir = tmpDir('ids');
  const f = path.join(dir, 'd.jsonl');
  fs.writeFileSync(
    f,
    [
      JSON.stringify({ input_ids: [5, 6, 7] }),
      JSON.stringify({ input_ids: [1, 2, 3], labels: [-100, 2, 3] }),
      JSON.stringify({ text: 'abc' }),
    ].join('\n'),
  );
  const ex = loadExamples(f, tok, V, { appendEos: true }).examples;
  assert.deepEqual(ex[0].ids, [5, 6, 7]);
  assert.deepEqual(ex[1].scored, [false, true, true]);
  assert.ok(ex[2].scored.every(Boolean));
});

test('bad JSONL lines are reported with their line numbers', () => {
  const dir = tmpDir('badjsonl');
  const cases: [string, RegExp][] = [
    ['{"text": "ok"}\n{"text": "x"\n', /d\.jsonl: line 2: not valid JSON/],
    ['{"text": "ok"}\n\n{"foo": 1}\n', /line 3: expected one of the fields "text", "prompt"\+"completion", "messages" or "input_ids"/],
    ['{"prompt": "p"}\n', /line 1: "prompt" and "completion" must both be strings/],
    ['{"messages": [{"role": "user"}]}\n', /line 1: each message needs string "role" and "content"/],
    ['{"input_ids": [1, 99999]}\n', /line 1: token id 99999 is out of range \[0, 384\)/],
    ['[1, 2]\n', /line 1: expected a JSON object/],
    ['\n\n', /no examples/],
  ];
  for (const [content, re] of cases) {
    const f = path.join(dir, 'd.jsonl');
    fs.writeFileSync(f, content);
    assert.throws(
      () => loadExamples(f, tok, V, { appendEos: true }),
      (e: unknown) => e instanceof UserError && re.test(e.message) && !e.message.includes('\n'),
      `${content} → ${re}`,
    );
  }
  const latin = path.join(dir, 'latin.txt');
  fs.writeFileSync(latin, Buffer.from([0x63, 0xe9, 0x0a]));
  assert.throws(() => loadExamples(latin, tok, V, { appendEos: true }), /latin\.txt: not UTF-8 text; training data must be UTF-8 text/);
});

test('packing makes every scored token a target exactly once, with a padded, unscored tail', () => {
  const ex = [
    { ids: [1, 2, 3, 4, 5], scored: [true, true, false, true, true], source: 'a' },
    { ids: [6, 7], scored: [true, true], source: 'b' },
  ];
  const w = pack(ex, 3, 0);
  assert.equal(w.count, 2);
  assert.deepEqual(Array.from(w.inputs), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(Array.from(w.targets), [2, -1, 4, 5, 6, 7]);
  const w2 = pack([{ ids: [1, 2, 3, 4], scored: [true, true, true, true], source: 'c' }], 2, 9);
  assert.deepEqual(Array.from(w2.inputs), [1, 2, 3, 9]);
  assert.deepEqual(Array.from(w2.targets), [2, 3, 4, -1]);
});

test('the train/eval split is deterministic for a seed and holds out at least one example', () => {
  const ex = Array.from({ length: 20 }, (_, i) => ({ ids: [i], scored: [true], source: String(i) }));
  const a = splitExamples(ex, 0.1, 3);
  const b = splitExamples(ex, 0.1, 3);
  assert.deepEqual(
    a.eval.map((e) => e.source),
    b.eval.map((e) => e.source),
  );
  assert.equal(a.eval.length, 2);
  assert.equal(a.train.length, 18);
  assert.notDeepEqual(
    splitExamples(ex, 0.1, 4).eval.map((e) => e.source),
    a.eval.map((e) => e.source),
  );
  assert.equal(splitExamples(ex.slice(0, 2), 0.01, 0).eval.length, 1);
});

test('every fixture dataset form prepares into windows; a single text file splits by windows', () => {
  const d = makeDatasets(tmpDir('forms'), V);
  for (const f of Object.values(d)) {
    const p = prepareData(f, tok, V, 32, 0.1, 0);
    assert.ok(p.train.count > 0 && p.eval.count > 0, f);
  }
  const one = path.join(tmpDir('one'), 'a.txt');
  fs.writeFileSync(one, 'The quick brown fox jumps over the lazy dog. '.repeat(20));
  const p = prepareData(one, tok, V, 16, 0.2, 0);
  assert.ok(p.eval.count >= 1 && p.train.count >= 1);
});

test('eval reads data as the tokenizer gives it; training appends EOS to documents and completions', () => {
  const dir = tmpDir('eos');
  const f = path.join(dir, 'd.jsonl');
  fs.writeFileSync(f, [JSON.stringify({ text: 'Hello there.' }), JSON.stringify({ prompt: 'Q', completion: ' A' })].join('\n'));
  const asIs = loadExamples(f, tok, V, { appendEos: false }).examples;
  const withEos = loadExamples(f, tok, V, { appendEos: true }).examples;
  assert.deepEqual(asIs[0].ids, tok.encode('Hello there.'));
  assert.deepEqual(withEos[0].ids, [...tok.encode('Hello there.'), tok.eosId]);
  assert.deepEqual(withEos[1].ids, [...asIs[1].ids, tok.eosId]);
});
