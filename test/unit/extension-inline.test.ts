// Inline completions' logic without VS Code (src/extension/inlineLogic.ts): the bounded text around the cursor,
// where a completion ends (the line, or the block: a blank line or a dedent) and how it is trimmed to that, the
// languages setting, the debounce (a newer keystroke aborts the wait: only the last of a burst asks the sidecar),
// cancellation (an abort during the request shows nothing), and the status-bar text.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  PREFIX_CHARS,
  around,
  completeAt,
  completionStatus,
  languageOn,
  settle,
  shapeAt,
  stopsFor,
  trimCompletion,
  type Complete,
} from '../../src/extension/inlineLogic';
import type { Params, Result } from '../../src/protocol';

const answer = (text: string, finishReason: Result<'complete'>['finishReason'] = 'stop'): Result<'complete'> => ({
  text,
  finishReason,
  promptTokens: 10,
  completionTokens: 3,
  cachedTokens: 0,
  fim: false,
  firstTokenMs: 1,
  tokensPerS: 100,
});

test('around: the prefix and suffix at the cursor, bounded, in whole lines where cut', () => {
  assert.deepEqual(around('abc\ndef', 5), { prefix: 'abc\nd', suffix: 'ef' });
  assert.deepEqual(around('', 0), { prefix: '', suffix: '' });
  const text = 'line one\nline two\nline three\nline four\n';
  const at = text.indexOf('three');
  // 16 characters before the cursor reach into "line one": that partial line is dropped
  assert.deepEqual(around(text, at, 16, 100), { prefix: 'line two\nline ', suffix: 'three\nline four\n' });
  // 8 after: "three\nli" loses the partial "li"
  assert.deepEqual(around(text, at, 100, 8), { prefix: 'line one\nline two\nline ', suffix: 'three\n' });
  // a bound shorter than the cursor's line keeps what fits
  assert.deepEqual(around('x'.repeat(50), 50, 10, 10), { prefix: 'x'.repeat(10), suffix: '' });
  const big = 'y = 1\n'.repeat(5000);
  const w = around(big, big.length / 2);
  assert.ok(w.prefix.length <= PREFIX_CHARS && w.prefix.startsWith('y = 1\n') && w.suffix.endsWith('\n'));
});

test('the shape at the cursor: mid-line or text after it ends at the line; an empty line ends at the block', () => {
  assert.deepEqual(shapeAt('    return', ''), { kind: 'line' });
  assert.deepEqual(shapeAt('    ', 'x)'), { kind: 'line' });
  assert.deepEqual(shapeAt('    ', ''), { kind: 'block', indent: 4 });
  assert.deepEqual(shapeAt('', '   '), { kind: 'block', indent: 0 });
  assert.deepEqual(stopsFor({ kind: 'line' }), ['\n']);
  assert.deepEqual(stopsFor({ kind: 'block', indent: 0 }), ['\n\n']);
});

test('trimming: the line, without trailing blanks or the rest of the line; the block, up to a blank line or a dedent', () => {
  const line = { kind: 'line' } as const;
  assert.equal(trimCompletion(' zebra_quux(x) + 42  \nmore', line), ' zebra_quux(x) + 42');
  assert.equal(trimCompletion('x, y)', line, ')'), 'x, y', 'the closing bracket after the cursor is not repeated');
  assert.equal(trimCompletion('x, y', line, ')'), 'x, y');
  assert.equal(trimCompletion('   \n', line), '');
  const block = { kind: 'block', indent: 4 } as const;
  // the first line is kept whatever its indent (it starts at the cursor); then lines indented at least as much
  assert.equal(trimCompletion('x = 1\n    y = 2\n        z = 3\n    w = 4', block), 'x = 1\n    y = 2\n        z = 3\n    w = 4');
  assert.equal(trimCompletion('x = 1\n    y = 2\nreturn x\n    q', block), 'x = 1\n    y = 2', 'a dedent ends the block');
  assert.equal(trimCompletion('x = 1\n    y = 2\n   \n    z', block), 'x = 1\n    y = 2', 'a blank line ends the block');
  assert.equal(trimCompletion('x = 1\n  y = 2', block), 'x = 1', 'two spaces is less than the cursor line’s four');
  assert.equal(trimCompletion('pass\n\n', { kind: 'block', indent: 0 }), 'pass');
  assert.equal(trimCompletion('a()\nb()\n', { kind: 'block', indent: 0 }), 'a()\nb()');
});

test('languages: empty or "*" is every language, else the ids listed', () => {
  assert.ok(languageOn([], 'python'));
  assert.ok(languageOn(['*'], 'rust'));
  assert.ok(languageOn(['python', 'typescript'], 'python'));
  assert.ok(!languageOn(['python'], 'markdown'));
});

test('settle: true when the wait runs out, false when aborted before or during it', async () => {
  assert.equal(await settle(5, new AbortController().signal), true);
  assert.equal(await settle(0, new AbortController().signal), true);
  const before = new AbortController();
  before.abort();
  assert.equal(await settle(5, before.signal), false);
  const during = new AbortController();
  const t0 = Date.now();
  setTimeout(() => during.abort(), 10);
  assert.equal(await settle(10_000, during.signal), false);
  assert.ok(Date.now() - t0 < 1000, 'the abort ends the wait at once');
});

/** a fake sidecar: records the requests; `reply` decides each answer */
function fakeSidecar(reply: (p: Params<'complete'>, signal: AbortSignal) => Promise<Result<'complete'>>) {
  const asked: Params<'complete'>[] = [];
  const complete: Complete = (p, signal) => (asked.push(p), reply(p, signal));
  return { asked, complete };
}
const target = { model: '/m', adapter: '/a' };
const settings = { maxTokens: 32, debounceMs: 20 };

test('completeAt: one request with the prefix, the suffix, the stops of the shape and token healing; the answer trimmed', async () => {
  const f = fakeSidecar(async () => answer(' zebra_quux(x) + 42\n'));
  const text = 'def new_thing(y):\n    return\n\nprint(1)\n';
  const offset = text.indexOf('\n\nprint');
  const got = await completeAt({ text, offset }, settings, target, f.complete, new AbortController().signal);
  assert.equal(got, ' zebra_quux(x) + 42');
  assert.deepEqual(f.asked, [
    {
      model: '/m',
      adapter: '/a',
      prompt: 'def new_thing(y):\n    return',
      suffix: '\n\nprint(1)\n',
      maxTokens: 32,
      temperature: 0,
      stop: ['\n'],
      heal: true,
    },
  ]);
  // at an empty indented line: the block's stops, and the block trimmed at the dedent
  const g = fakeSidecar(async () => answer('a = 1\n    b = 2\nc = 3'));
  const t2 = 'def f():\n    \n';
  assert.equal(
    await completeAt({ text: t2, offset: t2.length - 1 }, settings, target, g.complete, new AbortController().signal),
    'a = 1\n    b = 2',
  );
  assert.deepEqual(g.asked[0].stop, ['\n\n']);
  // nothing before the cursor, or an answer of blanks: no request, no completion
  const h = fakeSidecar(async () => answer('  \n'));
  assert.equal(await completeAt({ text: '\n\nx', offset: 1 }, settings, target, h.complete, new AbortController().signal), null);
  assert.equal(h.asked.length, 0);
  assert.equal(await completeAt({ text: 'x = ', offset: 4 }, settings, target, h.complete, new AbortController().signal), null);
});

test('debounce: a burst of keystrokes (each aborting the one before) asks once, for the last', async () => {
  const f = fakeSidecar(async (p) => answer(` after ${p.prompt.length}`));
  const results: Promise<string | null>[] = [];
  let ac: AbortController | null = null;
  const text = 'hello world';
  for (let n = 1; n <= text.length; n++) {
    ac?.abort(); // VS Code cancels the previous call's token when the next keystroke comes
    ac = new AbortController();
    results.push(completeAt({ text: text.slice(0, n), offset: n }, settings, target, f.complete, ac.signal));
    await new Promise((r) => setTimeout(r, 2));
  }
  const got = await Promise.all(results);
  assert.equal(f.asked.length, 1);
  assert.equal(f.asked[0].prompt, text);
  assert.deepEqual(got.slice(0, -1), Array(text.length - 1).fill(null));
  assert.equal(got.at(-1), ` after ${text.length}`);
});

test('cancel: an abort during the request reaches the sidecar’s signal, and its partial text is not shown', async () => {
  let seen: AbortSignal | null = null;
  const f = fakeSidecar(
    (_p, signal) =>
      new Promise((resolve) => {
        seen = signal;
        signal.addEventListener('abort', () => resolve(answer(' partial', 'cancelled')));
      }),
  );
  const ac = new AbortController();
  const pending = completeAt({ text: 'x = ', offset: 3 }, { maxTokens: 8, debounceMs: 0 }, target, f.complete, ac.signal);
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(f.asked.length, 1);
  ac.abort();
  assert.equal(await pending, null);
  assert.equal(seen!.aborted, true);
  // an answer that comes after the abort (the sidecar had finished) is not shown either
  const late = new AbortController();
  const g = fakeSidecar(async () => (late.abort(), answer(' done')));
  assert.equal(await completeAt({ text: 'x =', offset: 3 }, { maxTokens: 8, debounceMs: 0 }, target, g.complete, late.signal), null);
});

test('the status bar: adapter or base, on or off, and the hint when something is missing', () => {
  assert.deepEqual(completionStatus({ adapter: 'zebra', enabled: true, hint: null }).text, '$(sparkle) zebra · on');
  assert.deepEqual(completionStatus({ adapter: 'zebra', enabled: false, hint: 'x' }).text, '$(circle-slash) zebra · off');
  const base = completionStatus({ adapter: null, enabled: true, hint: 'No active adapter: activate one.' });
  assert.equal(base.text, '$(warning) base · on');
  assert.match(base.tooltip, /no active adapter\nNo active adapter: activate one\.\nclick to turn completions off/);
  const long = completionStatus({ adapter: 'a'.repeat(40), enabled: true, hint: null });
  assert.equal(long.text, `$(sparkle) ${'a'.repeat(27)}… · on`);
  assert.match(long.tooltip, new RegExp(`“${'a'.repeat(40)}”`));
});
