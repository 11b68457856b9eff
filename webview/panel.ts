/**
 * The training panel (runs in the webview). It speaks only the protocol: it sends FromPanel messages and draws
 * what ToPanel messages say. Its form survives hiding and reloads through the webview state; the run's history
 * is replayed by the extension on `ready`.
 */
import './jitless';
import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-textfield/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import '@vscode-elements/elements/dist/vscode-collapsible/index.js';
import '@vscode-elements/elements/dist/vscode-label/index.js';
import {
  AdapterInfo,
  EstimateResult,
  EvalEvent,
  FromPanel,
  MergedInfo,
  RunStatus,
  StepEvent,
  ToPanel,
  TrainSettings,
} from '../src/protocol';
import { adapterRow, deviceLabel, formatBytes as fmtBytes } from '../src/protocol/format';
import { Chart, MEM_COLORS, css, watchTheme } from './charts';
import { el } from './dom';
import { placeSelects } from './selects';
import { binaryCeil, binaryLabel, binaryTicks } from './ticks';

declare function acquireVsCodeApi(): { postMessage(m: unknown): void; getState(): any; setState(s: unknown): void };
const vscode = acquireVsCodeApi();
const send = (m: FromPanel) => vscode.postMessage(m);

const TAGS = ['weights', 'lora', 'optimizer', 'activations', 'workspace'] as const;
type Field = {
  key: keyof TrainSettings;
  label: string;
  kind: 'text' | 'number' | 'select' | 'check';
  options?: string[];
  optional?: boolean;
};
const FIELDS: { title: string; fields: Field[] }[] = [
  {
    title: 'Model and data',
    fields: [
      { key: 'model', label: 'Base model folder', kind: 'text' },
      { key: 'data', label: 'Data (folder or file)', kind: 'text' },
    ],
  },
  {
    title: 'LoRA',
    fields: [
      { key: 'rank', label: 'Rank', kind: 'number' },
      { key: 'alpha', label: 'Alpha', kind: 'number' },
      { key: 'dropout', label: 'Dropout', kind: 'number' },
      {
        key: 'targets',
        label: 'Target modules',
        kind: 'select',
        options: ['all-linear', 'q_proj,v_proj', 'q_proj,k_proj,v_proj,o_proj', 'gate_proj,up_proj,down_proj'],
      },
    ],
  },
  {
    title: 'Quantization (QLoRA)',
    fields: [
      { key: 'quant', label: 'Base weights', kind: 'select', options: ['none', 'nf4', 'fp4'] },
      { key: 'doubleQuant', label: 'Double quantization', kind: 'check' },
      { key: 'blocksize', label: 'Block size', kind: 'select', options: ['32', '64', '128', '256', '512', '1024', '2048', '4096'] },
    ],
  },
  {
    title: 'Training',
    fields: [
      { key: 'seqLen', label: 'Sequence length', kind: 'number' },
      { key: 'batch', label: 'Batch', kind: 'number' },
      { key: 'gradAccum', label: 'Gradient accumulation', kind: 'number' },
      { key: 'lr', label: 'Learning rate', kind: 'number' },
      { key: 'steps', label: 'Steps (empty: epochs)', kind: 'number', optional: true },
      { key: 'epochs', label: 'Epochs', kind: 'number', optional: true },
      { key: 'backend', label: 'Backend', kind: 'select', options: ['auto', 'cpu', 'cpu-reference', 'webgpu'] },
    ],
  },
];

const saved = vscode.getState() ?? {};
/** the form as the user left it, and the settings the extension last sent (to tell the user's edits from them) */
let form: Record<string, unknown> = saved.form ?? {};
let base: Record<string, unknown> = saved.base ?? {};
let status: RunStatus = { state: 'idle' };
let device: { name: string; bytes: number } | undefined;
let estimate: EstimateResult | null = null;
let confirmNotFit = false;
const steps: StepEvent[] = [];
const evals: EvalEvent[] = [];

const custom = (tag: string, attrs: Record<string, string> = {}, ...kids: (Node | string)[]) => {
  const e = document.createElement(tag) as HTMLElement & { value: string; checked: boolean; disabled: boolean };
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...kids);
  return e;
};
/** an element with inline colours and widths set through CSSOM (the CSP allows no style attributes) */
const styled = <E extends HTMLElement>(e: E, style: Partial<CSSStyleDeclaration>) => (Object.assign(e.style, style), e);

// ---- layout ----
const app = document.getElementById('app')!;
const stateLine = el('div', { id: 'state', class: 'state' });
const buttons = el('div', { class: 'buttons' });
const startBtn = custom('vscode-button', { id: 'start' }, 'Start');
const pauseBtn = custom('vscode-button', { id: 'pause', secondary: '' }, 'Pause');
const stopBtn = custom('vscode-button', { id: 'stop', secondary: '' }, 'Stop');
const resumeBtn = custom('vscode-button', { id: 'resume', secondary: '' }, 'Resume');
buttons.append(startBtn, pauseBtn, stopBtn, resumeBtn);
const errorBox = el('div', { id: 'error', class: 'error', role: 'alert' });
const estBox = el('div', { id: 'estimate', class: 'estimate' });
const inputs = new Map<string, ReturnType<typeof custom>>();
const fieldErrors = new Map<string, HTMLElement>();
const sections = FIELDS.map(({ title, fields }) => {
  const sec = custom('vscode-collapsible', { title, open: '' });
  for (const f of fields) {
    const id = `f-${f.key}`;
    let input: ReturnType<typeof custom>;
    if (f.kind === 'select')
      input = custom('vscode-single-select', { id, position: 'below' }, ...f.options!.map((o) => custom('vscode-option', { value: o }, o)));
    else if (f.kind === 'check') input = custom('vscode-checkbox', { id, label: f.label });
    else input = custom('vscode-textfield', { id, ...(f.kind === 'number' ? { inputmode: 'decimal' } : {}) }); // text: the number type flags decimals as invalid
    input.addEventListener(f.kind === 'text' || f.kind === 'number' ? 'input' : 'change', () => onEdit());
    inputs.set(f.key, input);
    const err = el('div', { class: 'field-error', 'data-field': f.key });
    fieldErrors.set(f.key, err);
    const row = el('div', { class: 'row' });
    if (f.kind !== 'check') row.append(custom('vscode-label', { for: id }, f.label));
    row.append(input);
    if (f.key === 'model' || f.key === 'data') {
      const b = custom('vscode-button', { secondary: '', id: `pick-${f.key}` }, 'Browse…');
      b.addEventListener('click', () => send({ type: 'pick', field: f.key as 'model' | 'data' }));
      row.append(b);
    }
    row.append(err);
    sec.append(row);
  }
  return sec;
});
const charts = el('div', { class: 'charts' });
const lossChart = new Chart('loss-chart', 'Loss', [
  { label: 'train', color: 'var(--vscode-charts-blue)' },
  { label: 'eval', color: 'var(--vscode-charts-orange)', points: true },
]);
const lrChart = new Chart('lr-chart', 'Learning rate', [{ label: 'lr', color: 'var(--vscode-charts-purple)' }], {
  format: (v) => (v === 0 ? '0' : v.toExponential(0)),
});
const tpsChart = new Chart('tps-chart', 'Tokens/s', [{ label: 'tok/s', color: 'var(--vscode-charts-green)' }]);
const memChart = new Chart(
  'mem-chart',
  'Memory by tag (stacked)',
  TAGS.map((t, i) => ({ label: t, color: MEM_COLORS[i], fill: true })),
  {
    format: binaryLabel,
    ticks: (max) => ({ top: binaryCeil(max), ticks: binaryTicks(binaryCeil(max)) }),
  },
);
const allCharts = [lossChart, lrChart, tpsChart, memChart];
charts.append(...allCharts.map((c) => c.root));
// a theme switch: the charts and the estimate bar take the new colours
watchTheme(() => {
  for (const c of allCharts) c.recolor();
  showEstimate();
});
placeSelects();
const adaptersBox = el('div', { id: 'adapters', class: 'adapters' });
// live things first (state, estimate, charts), then the settings, then the adapters
app.append(
  stateLine,
  buttons,
  errorBox,
  estBox,
  charts,
  ...sections,
  custom('vscode-collapsible', { title: 'Adapters', open: '' }, adaptersBox),
);

startBtn.addEventListener('click', () => {
  const s = validate();
  if (!s) return;
  if (estimate && !estimate.fits && !confirmNotFit) {
    confirmNotFit = true;
    showError(
      `The estimate (${fmtBytes(estimate.bytes.total)}) does not fit in ${fmtBytes(estimate.device.bytes)}. Click Start again to try anyway.`,
    );
    return;
  }
  confirmNotFit = false;
  send({ type: 'start', settings: s });
});
pauseBtn.addEventListener('click', () => send({ type: 'pause' }));
stopBtn.addEventListener('click', () => send({ type: 'stop' }));
resumeBtn.addEventListener('click', () => send({ type: 'resume' }));

// ---- the form ----
function readForm(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const group of FIELDS)
    for (const f of group.fields) {
      const input = inputs.get(f.key)!;
      if (f.kind === 'check') out[f.key] = input.checked;
      else if (f.kind === 'number') out[f.key] = input.value === '' ? undefined : Number(input.value);
      else if (f.key === 'blocksize') out[f.key] = Number(input.value);
      else out[f.key] = input.value;
    }
  return out;
}
function writeForm(v: Record<string, unknown>): void {
  for (const [k, val] of Object.entries(v)) {
    const input = inputs.get(k);
    if (!input || val === undefined || val === null) continue;
    if (typeof val === 'boolean') input.checked = val;
    else input.value = String(val);
  }
}
/**
 * The extension's settings with the user's own edits kept: a field the user changed from what the extension last
 * sent keeps the user's value; the others (and empty ones) take the extension's.
 */
function mergeSettings(from: Partial<TrainSettings>): Record<string, unknown> {
  const next: Record<string, unknown> = { ...from };
  for (const [k, v] of Object.entries(form)) if (v !== undefined && v !== '' && v !== base[k]) next[k] = v;
  return next;
}
/** the settings, or null with each problem shown beside its field */
function validate(): TrainSettings | null {
  const v = readForm();
  for (const e of fieldErrors.values()) e.textContent = '';
  const p = TrainSettings.safeParse(v);
  if (p.success) return p.data;
  for (const i of p.error.issues) {
    const key = String(i.path[0] ?? '');
    const box = fieldErrors.get(key);
    const msg = key === 'model' && !v.model ? 'choose a base model' : key === 'data' && !v.data ? 'choose the data to train on' : i.message;
    if (box) box.textContent = msg;
  }
  return null;
}
let estTimer: ReturnType<typeof setTimeout> | undefined;
function onEdit(): void {
  form = readForm();
  persist();
  confirmNotFit = false;
  const s = validate();
  startBtn.disabled = !s || busy();
  clearTimeout(estTimer);
  if (s) estTimer = setTimeout(() => send({ type: 'estimate', settings: s }), 250);
}
const persist = () => vscode.setState({ form, base });
const busy = () => ['preparing', 'running', 'pausing', 'stopping'].includes(status.state);

// ---- what the extension says ----
function showError(m: string): void {
  errorBox.textContent = m;
}
function showStatus(): void {
  const last = steps[steps.length - 1];
  const progress = last
    ? ` · step ${last.step}/${last.total_steps} · loss ${last.loss.toFixed(3)} · ${last.tokens_per_s.toFixed(0)} tok/s`
    : '';
  stateLine.textContent = `${status.state}${progress}${status.message ? ` — ${status.message}` : ''}`;
  stateLine.dataset.state = status.state;
  startBtn.disabled = busy() || !validate();
  pauseBtn.disabled = stopBtn.disabled = !busy();
  resumeBtn.disabled = !(status.state === 'paused' || status.state === 'stopped' || status.state === 'failed') || !status.runDir;
}
function showEstimate(): void {
  estBox.replaceChildren();
  if (!estimate) return;
  const cap = device?.bytes ?? estimate.device.bytes;
  const bar = el('div', { class: 'membar', title: `of ${fmtBytes(cap)}` });
  TAGS.forEach((t, i) => {
    const w = (100 * estimate!.bytes[t]) / cap;
    bar.append(
      styled(el('span', { class: 'seg', title: `${t} ${fmtBytes(estimate!.bytes[t])}` }), {
        width: `${Math.max(0, Math.min(100, w))}%`,
        background: css(MEM_COLORS[i]),
      }),
    );
  });
  const legend = el(
    'div',
    { class: 'legend' },
    ...TAGS.map((t, i) => el('span', {}, styled(el('i'), { background: css(MEM_COLORS[i]) }), ` ${t} ${fmtBytes(estimate!.bytes[t])}`)),
  );
  const head = el(
    'div',
    { class: estimate.fits ? 'fits' : 'nofit', id: 'estimate-total' },
    `Memory estimate: ${fmtBytes(estimate.bytes.total)} of ${fmtBytes(cap)} · ${deviceLabel(estimate.device.name)} · ${estimate.fits ? 'fits' : 'does NOT fit'}` +
      (estimate.bitsPerParam ? ` · ${estimate.bitsPerParam.toFixed(3)} bits per quantized parameter` : ''),
  );
  estBox.append(head, bar, legend);
}
function redraw(): void {
  charts.hidden = steps.length === 0;
  lossChart.set([
    steps.map((s) => s.step),
    steps.map((s) => s.loss),
    steps.map((s) => evals.find((e) => e.step === s.step)?.eval_loss ?? null),
  ]);
  lrChart.set([steps.map((s) => s.step), steps.map((s) => s.lr)]);
  tpsChart.set([steps.map((s) => s.step), steps.map((s) => s.tokens_per_s)]);
  const cum = TAGS.map((_, i) => steps.map((s) => TAGS.slice(0, i + 1).reduce((a, t) => a + s.mem[t], 0)));
  memChart.set([steps.map((s) => s.step), ...cum]);
  memChart.title(
    `Memory by tag (stacked)${device ? ` · capacity ${fmtBytes(device.bytes)}` : ''}${steps.length ? ` · now ${fmtBytes(steps[steps.length - 1].mem.total)}` : ''}`,
  );
}
function showAdapters(list: AdapterInfo[], merged: MergedInfo[] = []): void {
  adaptersBox.replaceChildren(
    ...(list.length ? [] : [el('div', { class: 'muted' }, 'No adapters yet: they appear here when a run finishes.')]),
    ...list.map((a) => {
      const r = adapterRow(a);
      const row = el(
        'div',
        { class: 'adapter', 'data-dir': a.dir, title: r.tooltip },
        el('span', { class: 'name' }, `${a.active ? '✓ ' : ''}${r.label}`),
        el('span', { class: 'facts' }, r.description),
      );
      for (const action of ['merge', 'activate', 'compare', 'reveal'] as const) {
        const b = custom('vscode-button', { secondary: '', 'data-action': action }, action[0].toUpperCase() + action.slice(1));
        b.addEventListener('click', () => send({ type: 'adapter', action, dir: a.dir }));
        row.append(b);
      }
      return row;
    }),
    ...(merged.length ? [el('div', { class: 'merged-title' }, 'Merged models')] : []),
    ...merged.map((m) =>
      el(
        'div',
        { class: 'merged', 'data-dir': m.dir, title: m.dir },
        el('span', { class: 'name' }, m.name),
        el('span', { class: 'facts' }, m.dir),
      ),
    ),
  );
}

window.addEventListener('message', (ev: MessageEvent<ToPanel>) => {
  const m = ev.data;
  switch (m?.type) {
    case 'init':
      form = mergeSettings(m.settings);
      base = { ...m.settings };
      writeForm(form);
      status = m.status;
      steps.splice(0, steps.length, ...m.steps);
      evals.splice(0, evals.length, ...m.evals);
      device = m.device;
      if (!m.trusted) showError('This workspace is not trusted: training and merging are disabled.');
      showAdapters(m.adapters, m.merged);
      redraw();
      showStatus();
      onEdit();
      return;
    case 'estimate':
      estimate = m.result;
      if (m.error) showError(m.error);
      else if (errorBox.textContent?.startsWith('estimate')) showError('');
      return showEstimate();
    case 'status':
      status = m.status;
      if (m.status.state === 'preparing') showError('');
      if (m.status.state === 'preparing' && !m.status.message) {
        steps.length = 0;
        evals.length = 0;
        redraw();
      }
      return showStatus();
    case 'steps':
      steps.push(...m.steps);
      redraw();
      return showStatus();
    case 'eval':
      evals.push(m.eval);
      return redraw();
    case 'adapters':
      return showAdapters(m.adapters, m.merged);
    case 'settings':
      // changed in the settings (e.g. Choose Base Model): these fields replace the form's
      form = { ...form, ...m.settings };
      base = { ...base, ...m.settings };
      if (m.settings.epochs && !m.settings.steps) form.steps = undefined;
      writeForm(form);
      if (form.steps === undefined) inputs.get('steps')!.value = '';
      persist();
      return onEdit();
    case 'picked':
      inputs.get(m.field)!.value = m.value;
      return onEdit();
    case 'error':
      return showError(m.message);
  }
});

send({ type: 'ready' });
