// lorakit serve's Ollama endpoints, as Ollama's clients call them (plain fetch): tags, show, version, generate and
// chat streamed as NDJSON by default (the last line done with the counts and durations) or whole, an adapter by
// name (with or without :latest), system prompts, fill-in-the-middle, and errors as {"error": "…"}.
import { after, before, test } from 'node:test';
import * as assert from 'node:assert/strict';
import { GenerationSession, PATTERN_PREFIX, VERSION } from '../../src/engine';
import { tmpDir } from '../helpers';
import { openSession, patternModel, serve } from '../serve-fixture';

let session: GenerationSession;
let s: Awaited<ReturnType<typeof serve>>;

before(async () => {
  const m = await patternModel(tmpDir('serve-ollama'), ['zebra']);
  session = openSession(m.model, m.adapters);
  s = await serve(session);
});
after(async () => {
  await s?.close();
  session?.close();
});

const post = (route: string, body: unknown) => fetch(`${s.url}${route}`, { method: 'POST', body: JSON.stringify(body) });

/** an NDJSON answer's lines, each parsed */
async function lines(r: Response): Promise<any[]> {
  assert.equal(r.status, 200, await r.clone().text());
  assert.match(r.headers.get('content-type')!, /^application\/x-ndjson/);
  const text = await r.text();
  assert.ok(text.endsWith('\n'));
  return text
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l));
}

test('/api/tags, /api/show and /api/version describe what is served', async () => {
  const tags = await (await fetch(`${s.url}/api/tags`)).json();
  assert.deepEqual(
    tags.models.map((m: any) => m.name),
    ['tiny', 'zebra'],
  );
  assert.equal(tags.models[1].details.parent_model, 'tiny');
  assert.equal(tags.models[0].details.family, 'qwen2');
  const show = await (await post('/api/show', { model: 'zebra:latest' })).json();
  assert.equal(show.model_info['qwen2.context_length'], 2048);
  assert.deepEqual(show.capabilities, ['completion', 'insert']);
  assert.deepEqual(await (await fetch(`${s.url}/api/version`)).json(), { version: VERSION });
  assert.equal(await (await fetch(s.url)).text(), 'lorakit is running');
});

test('/api/generate streams NDJSON by default; the last line is done, with counts and durations; whole is the same text', async () => {
  const body = { model: 'zebra', prompt: PATTERN_PREFIX, options: { num_predict: 12, temperature: 0.5, seed: 3 } };
  const ls = await lines(await post('/api/generate', body));
  const last = ls.pop();
  assert.ok(ls.length > 1 && ls.every((l) => l.done === false && typeof l.response === 'string' && l.model === 'zebra'));
  assert.equal(last.done, true);
  assert.equal(last.done_reason, 'length');
  assert.equal(last.eval_count, 12);
  assert.ok(last.prompt_eval_count > 0);
  for (const k of ['total_duration', 'prompt_eval_duration', 'eval_duration']) assert.ok(Number.isInteger(last[k]) && last[k] > 0, k);
  assert.ok(last.total_duration >= last.eval_duration);
  const streamed = ls.map((l) => l.response).join('');
  assert.ok(streamed.startsWith(' zebra_quux'), streamed);
  const whole = await (await post('/api/generate', { ...body, stream: false })).json();
  assert.equal(whole.response, streamed);
  assert.equal(whole.done, true);
  assert.equal(whole.eval_count, 12);
  // :latest names the same model; stop sequences end the text before them
  const stopped = await (
    await post('/api/generate', { ...body, model: 'zebra:latest', stream: false, options: { temperature: 0, stop: ['(x)'] } })
  ).json();
  assert.equal(stopped.response, ' zebra_quux');
  assert.equal(stopped.done_reason, 'stop');
});

test('/api/generate: system goes through the chat template, suffix is fill-in-the-middle, no prompt just loads', async () => {
  const plain = await (await post('/api/generate', { model: 'tiny', prompt: 'hi', stream: false, options: { num_predict: 2 } })).json();
  const system = await (
    await post('/api/generate', { model: 'tiny', prompt: 'hi', system: 'Be brief.', stream: false, options: { num_predict: 2 } })
  ).json();
  assert.ok(system.prompt_eval_count > plain.prompt_eval_count + 5, JSON.stringify([plain, system]));
  // greedy: a sampled first token may be an end token (EOS, <|fim_pad|>) on this random model, and end at once
  const greedy = { num_predict: 2, temperature: 0 };
  const prefixOnly = await (await post('/api/generate', { model: 'tiny', prompt: 'def f(', stream: false, options: greedy })).json();
  const fim = await (
    await post('/api/generate', { model: 'tiny', prompt: 'def f(', suffix: '\n    return x\n', stream: false, options: greedy })
  ).json();
  // the FIM prompt holds the three FIM tokens and the suffix's tokens besides the prefix
  assert.ok(fim.prompt_eval_count >= prefixOnly.prompt_eval_count + 4, JSON.stringify([prefixOnly, fim]));
  assert.ok(fim.eval_count <= 2);
  const load = await (await post('/api/generate', { model: 'zebra' })).json();
  assert.deepEqual([load.done, load.done_reason, load.response], [true, 'load', '']);
});

test('/api/chat streams message pieces and ends with the counts; whole gives the same message', async () => {
  const body = { model: 'zebra', messages: [{ role: 'user', content: 'hello' }], options: { num_predict: 8, seed: 9 } };
  const ls = await lines(await post('/api/chat', body));
  const last = ls.pop();
  assert.ok(ls.every((l) => l.message.role === 'assistant' && l.done === false));
  assert.deepEqual([last.done, last.message.content, last.eval_count], [true, '', 8]);
  const whole = await (await post('/api/chat', { ...body, stream: false })).json();
  assert.equal(whole.message.content, ls.map((l) => l.message.content).join(''));
  assert.equal(whole.prompt_eval_count, last.prompt_eval_count);
  const load = await (await post('/api/chat', { model: 'tiny', messages: [] })).json();
  assert.equal(load.done_reason, 'load');
});

test('errors on /api are {"error": "…"}: unknown model 404, bad options 400, unknown route 404', async () => {
  const cases: [string, unknown, number, RegExp][] = [
    ['/api/generate', { model: 'llama3', prompt: 'x' }, 404, /"llama3" does not exist/],
    ['/api/generate', { model: 'tiny', prompt: 'x', options: { temperature: 'hot' } }, 400, /options\.temperature/],
    ['/api/generate', { model: 'tiny', prompt: 'x', images: ['aGk='] }, 400, /images/],
    ['/api/chat', { model: 'tiny', messages: [{ role: 'tool', content: 'x' }] }, 400, /messages\.0\.role/],
    ['/api/chat', { messages: [] }, 400, /model is required/],
    ['/api/pull', { model: 'tiny' }, 404, /no route/],
  ];
  for (const [route, body, status, re] of cases) {
    const r = await post(route, body);
    assert.equal(r.status, status, route);
    const e = await r.json();
    assert.equal(typeof e.error, 'string', JSON.stringify(e));
    assert.match(e.error, re);
  }
});
