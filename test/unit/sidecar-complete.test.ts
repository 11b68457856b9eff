// Completions through the real sidecar process (dist/sidecar.js) and the extension's client: the pattern adapters
// give their patterns at PATTERN_PREFIX and the base does not; swapping adapters (by folder) loads each once and
// never reopens the base; a prompt that extends the last one reuses the prefix cache; streamed text adds up to
// the answer; an AbortSignal (a `cancel` notification) ends a long request early with finishReason "cancelled";
// another base replaces the session; a model without a tokenizer, or an adapter folder that is not one, is a
// user error; a cancel for no request, or a malformed one, changes nothing. Serve: the adapter over HTTP from
// the same session (the base not opened again), replaced by a second start, closed by serve/stop and when the
// extension goes away.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTinyModel } from '../../src/engine/fixtures/model';
import { PATTERN_PREFIX } from '../../src/engine/fixtures/pattern';
import { SidecarClient, SidecarError } from '../../src/extension/client';
import type { EventMessage } from '../../src/protocol';
import { tmpDir } from '../helpers';
import { makePatternModel, trainPatternAdapter } from '../patterns';

const root = tmpDir('sidecar-complete');
const model = makePatternModel(path.join(root, 'model'));
let trained: Promise<{ zebra: string; mango: string }> | undefined;
/** the two pattern adapters, trained once for the tests that need them */
const adapters = () =>
  (trained ??= (async () => ({
    zebra: await trainPatternAdapter(model, 'zebra', path.join(root, 'run-zebra'), root),
    mango: await trainPatternAdapter(model, 'mango', path.join(root, 'run-mango'), root),
  }))());

function client() {
  const events: EventMessage[] = [];
  const logs: string[] = [];
  const c = new SidecarClient(path.resolve('dist/sidecar.js'), {
    onEvent: (e) => void events.push(e),
    onExit: () => {},
    log: (l) => void logs.push(l),
  });
  return { c, events, logs };
}

test('complete: adapters by folder give their patterns, swap without reopening the base, prefix cache, streaming', async () => {
  const { zebra, mango } = await adapters();
  const { c, events } = client();
  try {
    assert.deepEqual(await c.request('session/info', {}), { model: null, opens: 0, fim: false, adapters: [] });
    const ask = (adapter?: string, prompt = PATTERN_PREFIX) =>
      c.request('complete', { model, adapter, prompt, suffix: '\n', maxTokens: 24, stop: ['\n'] });
    const z = await ask(zebra);
    assert.equal(z.text, ' zebra_quux(x) + 42');
    assert.equal(z.finishReason, 'stop');
    assert.equal(z.fim, false, 'a suffix of blanks is no fill-in-the-middle');
    const m = await ask(mango);
    assert.equal(m.text, ' mango_flux(x) * 7');
    const b = await ask(undefined);
    assert.doesNotMatch(b.text, /zebra|mango/);
    // back to zebra: loaded already, and the prompt is cached whole but for its last token
    const z2 = await ask(zebra);
    assert.equal(z2.text, z.text);
    assert.ok(z2.cachedTokens > 0 && z2.cachedTokens < z2.promptTokens, `cached ${z2.cachedTokens} of ${z2.promptTokens}`);
    let info = await c.request('session/info', {});
    assert.equal(info.model, model);
    assert.equal(info.opens, 1, 'the base was opened once for every adapter and the base');
    assert.equal(info.fim, true);
    assert.deepEqual(info.adapters, [mango, zebra], 'loaded once each, the most recent last');
    const loads = events.filter((e) => e.event === 'log' && /loaded the adapter/.test(e.params.line));
    assert.equal(loads.length, 2, 'each adapter loaded once');

    // with a suffix that has text, the session fills in the middle
    const f = await c.request('complete', { model, adapter: zebra, prompt: PATTERN_PREFIX, suffix: '\n\ndef more():\n', maxTokens: 4 });
    assert.equal(f.fim, true);

    // streamed: the deltas add up to the answer, and do not reach the event hook
    const deltas: string[] = [];
    const s = await c.request(
      'complete',
      { model, adapter: mango, prompt: PATTERN_PREFIX, maxTokens: 24, stop: ['\n'], stream: true },
      { onDelta: (t) => void deltas.push(t) },
    );
    assert.equal(deltas.join(''), s.text);
    assert.ok(deltas.length > 1, `${deltas.length} deltas`);
    assert.equal(events.filter((e) => e.event === 'complete/delta').length, 0);

    // another base replaces the session (and a later request for the first opens it again)
    const other = path.join(root, 'other');
    makeTinyModel(other, { modelType: 'llama' });
    await c.request('complete', { model: other, prompt: 'The quick', maxTokens: 2 });
    info = await c.request('session/info', {});
    assert.deepEqual([info.model, info.opens, info.adapters, info.fim], [other, 2, [], false]);
  } finally {
    c.stop();
  }
});

test('cancel: an aborted signal ends a long request early with what it has; stray cancels change nothing', async () => {
  const { c } = client();
  try {
    const ac = new AbortController();
    let first = '';
    const t0 = Date.now();
    const r = await c.request(
      'complete',
      { model, prompt: 'def f(x):\n', maxTokens: 2000, stream: true }, // greedy: the text ends after 489 tokens
      { signal: ac.signal, onDelta: (t) => ((first ||= t), ac.abort()) },
    );
    assert.equal(r.finishReason, 'cancelled');
    assert.ok(r.completionTokens >= 1 && r.completionTokens < 100, `${r.completionTokens} tokens`);
    assert.ok(r.text.startsWith(first));
    assert.ok(Date.now() - t0 < 20_000);
    // a signal aborted before the request is sent: the cancel follows it at once (a token or two may come first)
    const pre = new AbortController();
    pre.abort();
    const r2 = await c.request('complete', { model, prompt: 'def f(x):\n', maxTokens: 2000 }, { signal: pre.signal });
    assert.equal(r2.finishReason, 'cancelled');
    assert.ok(r2.completionTokens < 10, `${r2.completionTokens} tokens`);
    // a cancel for no request, and a malformed notification: ignored, the sidecar answers the next request
    (c as any).child.send({ method: 'cancel', params: { id: 99999 } });
    (c as any).child.send({ method: 'cancel', params: { id: 'x' } });
    (c as any).child.send({ method: 'nonsense' });
    assert.equal((await c.request('hello', {})).protocol, 1);
  } finally {
    c.stop();
  }
});

test('complete: a model without a tokenizer, a missing adapter and bad params are errors the extension can show', async () => {
  const { c } = client();
  try {
    const bare = path.join(root, 'bare');
    makeTinyModel(bare, { modelType: 'qwen2' });
    fs.rmSync(path.join(bare, 'tokenizer.json'));
    const err = (p: Promise<unknown>) =>
      p.then(
        () => assert.fail('no error'),
        (e: SidecarError) => e,
      );
    const e1 = await err(c.request('complete', { model: bare, prompt: 'x', maxTokens: 2 }));
    assert.equal(e1.code, 'user_error');
    assert.match(e1.message, /no tokenizer\.json: completions need the model's tokenizer/);
    const e2 = await err(c.request('complete', { model, adapter: path.join(root, 'nowhere'), prompt: 'x', maxTokens: 2 }));
    assert.equal(e2.code, 'user_error', e2.message);
    const e3 = await err(c.request('complete', { model, prompt: 'x', maxTokens: 0 }));
    assert.equal(e3.code, 'bad_request');
    const e4 = await err(c.request('complete', { model, prompt: 'x', maxTokens: 2, heal: 'yes' as unknown as boolean }));
    assert.equal(e4.code, 'bad_request');
    assert.match(e4.message, /heal/);
    assert.equal((await c.request('session/info', {})).opens, 1, 'the failed requests for the model opened it once');
  } finally {
    c.stop();
  }
});

test('serve: the active adapter over HTTP from the session completions use; stop closes it', async () => {
  const { zebra } = await adapters();
  const { c } = client();
  try {
    await c.request('complete', { model, adapter: zebra, prompt: PATTERN_PREFIX, maxTokens: 2 });
    const s = await c.request('serve/start', { model, adapter: zebra, name: 'Zebra · 2026-01-01', port: 0 });
    assert.equal(s.modelId, 'model');
    assert.equal(s.adapter, 'zebra-2026-01-01');
    assert.match(s.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const models = (await (await fetch(`${s.url}/v1/models`)).json()) as { data: { id: string }[] };
    assert.ok(models.data.some((m) => m.id === 'model') && models.data.some((m) => m.id === s.adapter), JSON.stringify(models));
    const r = await fetch(`${s.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: s.adapter, prompt: PATTERN_PREFIX, max_tokens: 24, temperature: 0, stop: ['\n'] }),
    });
    assert.equal(((await r.json()) as { choices: { text: string }[] }).choices[0].text, ' zebra_quux(x) + 42');
    assert.equal((await c.request('session/info', {})).opens, 1, 'the server uses the base completions opened');
    // a second start replaces the first; stop closes the port
    const s2 = await c.request('serve/start', { model, port: 0 });
    assert.equal(s2.adapter, null);
    await assert.rejects(fetch(`${s.url}/v1/models`));
    assert.deepEqual(await c.request('serve/stop', {}), { stopped: true });
    await assert.rejects(fetch(`${s2.url}/v1/models`));
    assert.deepEqual(await c.request('serve/stop', {}), { stopped: false });
    // completions go on with the session
    const z = await c.request('complete', { model, adapter: zebra, prompt: PATTERN_PREFIX, maxTokens: 24, stop: ['\n'] });
    assert.equal(z.text, ' zebra_quux(x) + 42');
    // the extension goes away (the IPC channel closes): the sidecar stops serving and exits
    const s3 = await c.request('serve/start', { model, adapter: zebra, port: 0 });
    const child = (c as any).child as import('node:child_process').ChildProcess;
    const exited = new Promise((r) => child.once('exit', r));
    child.disconnect();
    await exited;
    await assert.rejects(fetch(`${s3.url}/v1/models`));
  } finally {
    c.stop();
  }
});
