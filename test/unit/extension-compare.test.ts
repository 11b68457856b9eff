// Compare's runs without VS Code (src/extension/compareRuns.ts) against a fake sidecar: a run streams the base's
// and the adapter's text into their columns with one seed for both; Stop cancels both (each says so); a new run
// silences the one before it; a reopened panel gets the last run again; an error stays on its side; malformed
// messages from the webview are refused.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { CompareRuns, CompleteRequest } from '../../src/extension/compareRuns';
import type { Params, ToCompare } from '../../src/protocol';

const target = { model: '/m', adapter: '/runs/a/adapter', name: 'zebra' };

/** a fake sidecar: streams "<side> 1 2 3 …" a word per tick until maxTokens or the signal */
function fake(fail?: (p: Params<'complete'>) => string | null) {
  const asked: Params<'complete'>[] = [];
  const request: CompleteRequest = async (p, o) => {
    asked.push(p);
    const why = fail?.(p);
    if (why) throw new Error(why);
    let text = '';
    let n = 0;
    for (; n < p.maxTokens; n++) {
      if (o.signal?.aborted) break;
      const d = `${n ? ' ' : p.adapter ? 'adapter' : 'base'}${n ? n : ''}`;
      text += d;
      o.onDelta?.(d);
      await new Promise((r) => setTimeout(r, 2));
    }
    const finishReason = o.signal?.aborted ? 'cancelled' : 'length';
    return { text, finishReason, promptTokens: 1, completionTokens: n, cachedTokens: 0, fim: false, firstTokenMs: 1, tokensPerS: 50 };
  };
  const posted: ToCompare[] = [];
  const logs: string[] = [];
  const runs = new CompareRuns(
    target,
    request,
    (m) => void posted.push(m),
    (l) => void logs.push(l),
  );
  /** a column's text as the webview would show it */
  const column = (side: 'base' | 'adapter') =>
    posted.reduce((s, m) => (m.type === 'start' ? '' : m.type === 'delta' && m.side === side ? s + m.text : s), '');
  return { asked, posted, logs, runs, column };
}

test('a run streams both sides into their columns, with one seed, and ends with idle', async () => {
  const f = fake();
  await f.runs.receive({ type: 'run', prompt: 'def ', temperature: 0.7, maxTokens: 4 });
  assert.equal(f.asked.length, 2);
  const [b, a] = [f.asked.find((p) => !p.adapter)!, f.asked.find((p) => p.adapter)!];
  assert.equal(a.adapter, target.adapter);
  assert.equal(b.model, '/m');
  assert.equal(a.seed, b.seed, 'one seed for both sides');
  assert.ok(a.stream && b.stream);
  assert.deepEqual([a.temperature, a.maxTokens, a.prompt], [0.7, 4, 'def ']);
  assert.equal(f.column('base'), 'base 1 2 3');
  assert.equal(f.column('adapter'), 'adapter 1 2 3');
  assert.deepEqual(f.posted[0], { type: 'start', prompt: 'def ', temperature: 0.7 });
  const done = f.posted.filter((m) => m.type === 'done');
  assert.deepEqual(done.map((m) => m.type === 'done' && [m.finishReason, m.tokens]).sort(), [
    ['length', 4],
    ['length', 4],
  ]);
  assert.deepEqual(f.posted.at(-1), { type: 'idle' });
  assert.equal(f.runs.running, false);
  // the panel shown again: the last run's settings and text
  await f.runs.receive({ type: 'ready' });
  assert.deepEqual(f.posted.at(-1), {
    type: 'init',
    adapter: 'zebra',
    model: '/m',
    prompt: 'def ',
    temperature: 0.7,
    maxTokens: 4,
    text: { base: 'base 1 2 3', adapter: 'adapter 1 2 3' },
    running: false,
  });
});

test('Stop cancels both sides (each says so); a new run silences the one before', async () => {
  const f = fake();
  const first = f.runs.receive({ type: 'run', prompt: 'x', temperature: 0, maxTokens: 1000 });
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(f.runs.running, true);
  await f.runs.receive({ type: 'stop' });
  await first;
  const done = f.posted.filter((m) => m.type === 'done');
  assert.deepEqual(
    done.map((m) => m.type === 'done' && m.finishReason),
    ['cancelled', 'cancelled'],
  );
  assert.deepEqual(f.posted.at(-1), { type: 'idle' });

  const g = fake();
  const one = g.runs.receive({ type: 'run', prompt: 'one', temperature: 0, maxTokens: 1000 });
  await new Promise((r) => setTimeout(r, 10));
  const two = g.runs.receive({ type: 'run', prompt: 'two', temperature: 0, maxTokens: 3 });
  await Promise.all([one, two]);
  const afterSecondStart = g.posted.slice(g.posted.findIndex((m) => m.type === 'start' && m.prompt === 'two'));
  assert.equal(afterSecondStart.filter((m) => m.type === 'done').length, 2, 'only the second run reports');
  assert.ok(afterSecondStart.every((m) => m.type !== 'done' || m.finishReason === 'length'));
  assert.equal(g.column('base'), 'base 1 2');
  assert.equal(g.posted.filter((m) => m.type === 'idle').length, 1);
});

test('an error stays on its side; another adapter retargets the panel; malformed messages are refused', async () => {
  const f = fake((p) => (p.adapter ? 'the adapter does not fit this base' : null));
  await f.runs.receive({ type: 'run', prompt: 'x', temperature: 0, maxTokens: 2 });
  assert.deepEqual(
    f.posted.find((m) => m.type === 'error'),
    { type: 'error', side: 'adapter', message: 'the adapter does not fit this base' },
  );
  assert.equal(f.column('base'), 'base 1');
  f.runs.retarget({ model: '/m', adapter: '/runs/b/adapter', name: 'mango' });
  const init = f.posted.at(-1);
  assert.ok(init?.type === 'init' && init.adapter === 'mango' && init.text.base === '' && init.prompt === 'x');
  for (const bad of [
    { type: 'run', prompt: '', temperature: 0, maxTokens: 2 },
    { type: 'run', prompt: 'x', temperature: 9, maxTokens: 2 },
    { type: 'eval' },
    null,
  ])
    await f.runs.receive(bad);
  assert.equal(f.asked.length, 2, 'nothing more was asked');
  assert.equal(f.logs.length, 4);
  assert.ok(f.posted.slice(-4).every((m) => m.type === 'error' && m.message.startsWith('rejected: ')));
});
