/**
 * The Compare panel (runs in the webview): a prompt, a temperature, a token limit and Run; the base model's and
 * the adapter's completions stream into two columns. It speaks only the protocol (FromCompare / ToCompare); the
 * extension keeps the last run and sends it again when the panel is shown again.
 */
import type { CompareSide, FromCompare, ToCompare } from '../src/protocol';
import { el } from './dom';

declare function acquireVsCodeApi(): { postMessage(m: unknown): void };
const vscode = acquireVsCodeApi();
const send = (m: FromCompare) => vscode.postMessage(m);

const prompt = el('textarea', { id: 'prompt', rows: '5', spellcheck: 'false', 'aria-label': 'Prompt' });
const temperature = el('input', { id: 'temperature', type: 'number', min: '0', max: '2', step: '0.1', value: '0' });
const maxTokens = el('input', { id: 'max-tokens', type: 'number', min: '1', max: '1024', step: '1', value: '64' });
const run = el('button', { id: 'run', type: 'button' }, 'Run');
const error = el('div', { id: 'error', class: 'error', role: 'alert' });
const adapterTitle = el('h2', { id: 'title-adapter' }, 'With the adapter');
const model = el('div', { id: 'model', class: 'meta' });

type Column = { out: HTMLElement; gen: HTMLElement; promptText: HTMLElement; meta: HTMLElement };
const column = (side: CompareSide, title: HTMLElement): [HTMLElement, Column] => {
  const promptText = el('span', { class: 'prompt' });
  const gen = el('span', { class: 'gen', id: `gen-${side}` });
  const out = el('pre', { id: `out-${side}`, class: 'out' }, promptText, gen);
  const meta = el('div', { id: `meta-${side}`, class: 'meta' });
  return [el('section', { class: 'column' }, title, out, meta), { out, gen, promptText, meta }];
};
const [baseSection, base] = column('base', el('h2', {}, 'Base model'));
const [adapterSection, adapter] = column('adapter', adapterTitle);
const columns: Record<CompareSide, Column> = { base, adapter };

document
  .getElementById('app')!
  .append(
    el(
      'div',
      { class: 'controls' },
      prompt,
      el(
        'div',
        { class: 'row' },
        el('label', { for: 'temperature' }, 'Temperature'),
        temperature,
        el('label', { for: 'max-tokens' }, 'Max tokens'),
        maxTokens,
        run,
      ),
      model,
      error,
    ),
    el('div', { class: 'columns' }, baseSection, adapterSection),
  );

let running = false;
/** the temperature of the run shown (said under each column when it is done) */
let shownTemperature = 0;
const setRunning = (r: boolean) => {
  running = r;
  run.textContent = r ? 'Stop' : 'Run';
  run.classList.toggle('stop', r);
};

/** Run: the fields checked here too (the extension checks them again) */
function onRun(): void {
  if (running) return send({ type: 'stop' });
  const t = Number(temperature.value);
  const n = Number(maxTokens.value);
  if (!prompt.value) return void (error.textContent = 'Type a prompt to complete.');
  if (!(t >= 0 && t <= 2)) return void (error.textContent = 'Temperature must be from 0 to 2.');
  if (!(Number.isInteger(n) && n >= 1 && n <= 1024)) return void (error.textContent = 'Max tokens must be a whole number from 1 to 1024.');
  error.textContent = '';
  send({ type: 'run', prompt: prompt.value, temperature: t, maxTokens: n });
}
run.addEventListener('click', onRun);
prompt.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    onRun();
  }
});

function clear(p: string): void {
  for (const c of Object.values(columns)) {
    c.promptText.textContent = p;
    c.gen.textContent = '';
    c.meta.textContent = '';
    c.out.dataset.state = 'running';
  }
}

window.addEventListener('message', (ev: MessageEvent<ToCompare>) => {
  const m = ev.data;
  switch (m.type) {
    case 'init':
      prompt.value = m.prompt;
      temperature.value = String(m.temperature);
      maxTokens.value = String(m.maxTokens);
      shownTemperature = m.temperature;
      adapterTitle.textContent = `With ${m.adapter}`;
      model.textContent = `Base model: ${m.model}`;
      clear(m.text.base || m.text.adapter ? m.prompt : '');
      for (const s of ['base', 'adapter'] as const) {
        columns[s].gen.textContent = m.text[s];
        columns[s].out.dataset.state = m.running ? 'running' : 'done';
      }
      return setRunning(m.running);
    case 'start':
      shownTemperature = m.temperature;
      error.textContent = '';
      clear(m.prompt);
      return setRunning(true);
    case 'delta':
      return void columns[m.side].gen.append(m.text);
    case 'done': {
      const c = columns[m.side];
      c.out.dataset.state = 'done';
      const why = { stop: 'ended', length: 'token limit', cancelled: 'stopped' }[m.finishReason];
      c.meta.textContent = `${m.tokens} tokens · ${m.tokensPerS.toFixed(0)} tok/s · ${why} · temperature ${shownTemperature}`;
      return;
    }
    case 'error':
      if (m.side) {
        columns[m.side].out.dataset.state = 'failed';
        columns[m.side].meta.textContent = m.message;
      } else error.textContent = m.message;
      return;
    case 'idle':
      return setRunning(false);
  }
});

send({ type: 'ready' });
prompt.focus();
