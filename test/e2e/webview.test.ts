// The training panel's bundle (dist/webview/panel.js) in headless Chromium with a fake acquireVsCodeApi: it renders,
// refuses bad values, draws the charts from a stream of metrics messages, and restores its state after a reload.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, Browser, Page } from 'playwright-core';
import { panelHtml } from '../../src/extension/panelHtml';
import { binaryCeil, binaryLabel, binaryTicks } from '../../webview/ticks';
import { tmpDir } from '../helpers';

const CHROMIUM = process.env.LORAKIT_CHROMIUM ?? '/usr/bin/chromium';
const skip = fs.existsSync(CHROMIUM) ? false : `needs Chromium at ${CHROMIUM} (apt-get install chromium)`;
if (skip) console.log(`# webview tests skipped: ${skip}`);

const dir = tmpDir('webview');
// the very page the extension serves (panelHtml: its CSP has no 'unsafe-inline'), plus a fake VS Code API (a script
// with the page's nonce) that records messages, keeps state in localStorage and records CSP violations, and the
// theme's variables from a file (as VS Code sets them: on the html element, with a body class)
const html = panelHtml('panel.js', 'panel.css', 'file:');
const nonce = /nonce="([^"]+)"/.exec(html)![1];
fs.writeFileSync(
  path.join(dir, 'index.html'),
  html
    .replace(
      '<div id="app"></div>',
      `<div id="app"></div>
<script nonce="${nonce}">
window.sent = [];
window.violations = [];
document.addEventListener('securitypolicyviolation', (e) => window.violations.push(e.violatedDirective + ' ' + (e.blockedURI || e.sample || '') + ' @' + e.sourceFile));
document.body.className = 'vscode-dark';
window.acquireVsCodeApi = () => ({
  postMessage: (m) => window.sent.push(JSON.parse(JSON.stringify(m))),
  getState: () => JSON.parse(localStorage.getItem('state') || 'null'),
  setState: (s) => localStorage.setItem('state', JSON.stringify(s)),
});
</script>`,
    )
    .replace(
      '<link rel="stylesheet" href="panel.css">',
      '<link rel="stylesheet" href="theme.css">\n<link rel="stylesheet" href="panel.css">',
    ),
);
fs.writeFileSync(
  path.join(dir, 'theme.css'),
  `html{--vscode-foreground:#cccccc;--vscode-charts-blue:#3794ff;--vscode-charts-orange:#d18616;--vscode-charts-green:#89d185;--vscode-charts-purple:#b180d7;--vscode-charts-yellow:#cca700;--vscode-errorForeground:#f48771;--vscode-editorWidget-border:#454545;--vscode-font-family:sans-serif;--vscode-font-size:13px} body{background:#1e1e1e;width:360px}`,
);
for (const f of ['panel.js', 'panel.css']) fs.copyFileSync(path.resolve('dist/webview', f), path.join(dir, f));
const OUT = path.resolve('test-output/webview');

const SETTINGS = {
  model: '/models/tiny',
  data: '/work/src',
  rank: 8,
  alpha: 16,
  dropout: 0.05,
  targets: 'all-linear',
  quant: 'nf4',
  doubleQuant: true,
  blocksize: 64,
  seqLen: 256,
  batch: 4,
  gradAccum: 1,
  lr: 0.0002,
  epochs: 1,
  backend: 'auto',
};
const mem = (s: number) => ({
  weights: 4e6,
  lora: 1e6,
  optimizer: 1e6,
  activations: 2e7 + s * 1e5,
  workspace: 3e6,
  total: 2.9e7 + s * 1e5,
});
const step = (s: number) => ({
  step: s,
  total_steps: 20,
  loss: 6 - s * 0.1,
  lr: 2e-4,
  grad_norm: 1,
  tokens_per_s: 500 + s,
  step_ms: 900,
  mem: mem(s),
  elapsed_s: s,
});

async function open(browser: Browser, viewport = { width: 380, height: 900 }): Promise<Page> {
  const page = await browser.newPage({ viewport });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => /Content Security Policy|Refused to/.test(m.text()) && errors.push(m.text()));
  (page as any).errors = errors;
  await page.goto(`file://${dir}/index.html`);
  await page.waitForFunction(() => (window as any).sent.some((m: any) => m.type === 'ready'));
  assert.deepEqual(errors, []);
  return page;
}
/** no CSP violation so far: @vscode-elements and uPlot style through CSSOM, which the policy allows */
async function noViolations(page: Page): Promise<void> {
  assert.deepEqual(await page.evaluate(() => (window as any).violations), []);
  assert.deepEqual((page as any).errors, []);
}
const launch = () =>
  chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--allow-file-access-from-files'] });
const post = (page: Page, m: unknown) => page.evaluate((msg) => window.postMessage(msg, '*'), m);
const sent = (page: Page) => page.evaluate(() => (window as any).sent as any[]);
const setField = (page: Page, key: string, value: string) =>
  page.evaluate(
    ([k, v]) => {
      const e = document.getElementById(`f-${k}`) as any;
      e.value = v;
      e.dispatchEvent(new Event('input'));
    },
    [key, value],
  );

test('the panel renders, validates, estimates, draws metrics and restores its state', { skip }, async () => {
  const browser = await launch();
  try {
    const page = await open(browser);
    // init: the form takes the extension's settings
    await post(page, {
      type: 'init',
      settings: SETTINGS,
      status: { state: 'idle' },
      steps: [],
      evals: [],
      adapters: [],
      device: { name: 'cpu', bytes: 8 * 2 ** 30 },
      trusted: true,
    });
    await page.waitForFunction(() => (document.getElementById('f-rank') as any).value === '8');
    assert.equal(await page.evaluate(() => (document.getElementById('f-quant') as any).value), 'nf4');
    // a valid form asks for an estimate; its result is drawn as a bar by tag
    await page.waitForFunction(() => (window as any).sent.some((m: any) => m.type === 'estimate'));
    await post(page, {
      type: 'estimate',
      result: {
        bytes: mem(0),
        fits: true,
        device: { name: 'cpu', bytes: 8 * 2 ** 30 },
        params: { base: 1e6, trainable: 1e4, quantized: 8e5 },
        bitsPerParam: 4.127,
      },
    });
    await page.waitForSelector('#estimate-total');
    assert.match(await page.innerText('#estimate-total'), /Memory estimate: 27\.7 MiB of 8\.0 GiB · cpu · fits · 4\.127 bits/);
    // rank 0: refused beside the field, Start disabled, nothing sent
    await setField(page, 'rank', '0');
    assert.match(await page.innerText('.field-error[data-field="rank"]'), /greater than 0|too small|>0|positive/i);
    assert.equal(await page.evaluate(() => (document.getElementById('start') as any).disabled), true);
    await setField(page, 'rank', '8');
    assert.equal(await page.innerText('.field-error[data-field="rank"]').catch(() => ''), '');
    // an empty model
    await setField(page, 'model', '');
    assert.equal(await page.innerText('.field-error[data-field="model"]'), 'choose a base model');
    await page.evaluate(() => (document.getElementById('start') as any).click());
    assert.ok(!(await sent(page)).some((m) => m.type === 'start'));
    await setField(page, 'model', '/models/tiny');
    // Start sends the validated settings
    await page.evaluate(() => (document.getElementById('start') as any).click());
    const start = (await sent(page)).find((m) => m.type === 'start');
    assert.equal(start.settings.rank, 8);
    assert.equal(start.settings.quant, 'nf4');
    // a stream of metrics draws the charts
    await post(page, { type: 'status', status: { state: 'running', runDir: '/r' } });
    for (let s = 1; s <= 12; s += 4) await post(page, { type: 'steps', steps: [s, s + 1, s + 2, s + 3].map(step) });
    await post(page, { type: 'eval', eval: { step: 6, eval_loss: 5.5, eval_perplexity: 244, eval_tokens: 100 } });
    await page.waitForFunction(() => document.getElementById('loss-chart')!.dataset.points === '12');
    for (const id of ['loss-chart', 'lr-chart', 'tps-chart', 'mem-chart']) assert.equal(await page.locator(`#${id} canvas`).count(), 1, id);
    assert.match(await page.innerText('#state'), /running · step 12\/20 · loss 4\.800/);
    assert.equal(await page.evaluate(() => (document.getElementById('stop') as any).disabled), false);
    await noViolations(page);
    fs.mkdirSync(OUT, { recursive: true });
    await page.screenshot({ path: path.join(OUT, 'panel.png'), fullPage: true });
    // hide/show or reload: the form comes back from the webview state, the history from the extension's init
    await setField(page, 'alpha', '32');
    await page.reload();
    await page.waitForFunction(() => (window as any).sent.some((m: any) => m.type === 'ready'));
    const adapter = {
      dir: '/p/.lorakit/runs/a/adapter',
      run: 'a',
      name: 'notes · 2025-03-04 17:05',
      created: 'x',
      active: true,
      rank: 8,
      steps: 20,
      trainLoss: 4.21234,
      evalLoss: 4.3,
      finalLoss: 4.3,
    };
    await post(page, {
      type: 'init',
      settings: SETTINGS,
      status: { state: 'running', runDir: '/r' },
      steps: [1, 2, 3].map(step),
      evals: [],
      adapters: [adapter],
      merged: [{ dir: '/p/.lorakit/merged/a', name: 'a', created: 'x' }],
      trusted: true,
    });
    await page.waitForFunction(() => document.getElementById('loss-chart')!.dataset.points === '3');
    assert.equal(await page.evaluate(() => (document.getElementById('f-alpha') as any).value), '32', 'an unsent edit survives the reload');
    assert.match(await page.innerText('#adapters'), /✓ notes · 2025-03-04 17:05\s+active · r8 · 20 steps · train 4\.212 · eval 4\.3/);
    assert.match(await page.innerText('#adapters'), /Merged models\s+a\s+\/p\/\.lorakit\/merged\/a/);
    await page.evaluate(() => (document.querySelector('#adapters vscode-button[data-action="activate"]') as any).click());
    assert.deepEqual((await sent(page)).pop(), { type: 'adapter', action: 'activate', dir: '/p/.lorakit/runs/a/adapter' });
    // paused: the extension's wording shows as is
    await post(page, {
      type: 'status',
      status: { state: 'paused', runDir: '/r', message: 'paused at step 3; Resume continues from its checkpoint' },
    });
    assert.match(await page.innerText('#state'), /^paused · step 3\/20 · .* — paused at step 3;/);
    await noViolations(page);
  } finally {
    await browser.close();
  }
});

test(
  'the CSP has no unsafe-inline, and it is enforced: a <style> element or a style attribute in markup is refused',
  { skip },
  async () => {
    assert.ok(!html.includes('unsafe-inline'));
    assert.match(html, /style-src file:;/);
    const browser = await launch();
    try {
      const page = await open(browser);
      await post(page, { type: 'init', settings: SETTINGS, status: { state: 'idle' }, steps: [], evals: [], adapters: [], trusted: true });
      await noViolations(page);
      const n = await page.evaluate(() => {
        const s = document.createElement('style');
        s.textContent = 'body{color:red}';
        document.head.append(s);
        document.body.insertAdjacentHTML('beforeend', '<div id="x" style="color:red">x</div>');
        return getComputedStyle(document.getElementById('x')!).color;
      });
      assert.notEqual(n, 'rgb(255, 0, 0)', 'inline styles are blocked');
      await page.waitForFunction(() => (window as any).violations.length >= 2);
    } finally {
      await browser.close();
    }
  },
);

test('settings changed in VS Code replace the form; a reopened panel takes the new model unless the user edited it', { skip }, async () => {
  const browser = await launch();
  try {
    const page = await open(browser);
    await post(page, {
      type: 'init',
      settings: { ...SETTINGS, model: undefined },
      status: { state: 'idle' },
      steps: [],
      evals: [],
      adapters: [],
      trusted: true,
    });
    await page.waitForFunction(() => (document.getElementById('f-rank') as any).value === '8');
    assert.equal(await page.innerText('.field-error[data-field="model"]'), 'choose a base model');
    await setField(page, 'rank', '32'); // the user's edit
    // LoRA: Choose Base Model… saved lorakit.baseModel
    await post(page, { type: 'settings', settings: { model: '/models/chosen' } });
    await page.waitForFunction(() => (document.getElementById('f-model') as any).value === '/models/chosen');
    await page.waitForFunction(() =>
      (window as any).sent.some((m: any) => m.type === 'estimate' && m.settings.model === '/models/chosen' && m.settings.rank === 32),
    );
    // hidden and shown again (a new page from the saved state): init carries another model, the user's rank stays
    await page.reload();
    await page.waitForFunction(() => (window as any).sent.some((m: any) => m.type === 'ready'));
    await post(page, {
      type: 'init',
      settings: { ...SETTINGS, model: '/models/newer' },
      status: { state: 'idle' },
      steps: [],
      evals: [],
      adapters: [],
      trusted: true,
    });
    await page.waitForFunction(() => (document.getElementById('f-model') as any).value === '/models/newer');
    assert.equal(await page.evaluate(() => (document.getElementById('f-rank') as any).value), '32');
    // lorakit.steps back to 0: the steps field empties (one epoch)
    await post(page, { type: 'settings', settings: { steps: 50 } });
    await page.waitForFunction(() => (document.getElementById('f-steps') as any).value === '50');
    await post(page, { type: 'settings', settings: { epochs: 1 } });
    await page.waitForFunction(() => (document.getElementById('f-steps') as any).value === '');
    await noViolations(page);
  } finally {
    await browser.close();
  }
});

test(
  'charts: 1000 batched steps all drawn; memory labels whole and round in binary units; colours follow the theme',
  { skip },
  async () => {
    const browser = await launch();
    try {
      const page = await open(browser);
      await post(page, {
        type: 'init',
        settings: SETTINGS,
        status: { state: 'running', runDir: '/r' },
        steps: [],
        evals: [],
        adapters: [],
        trusted: true,
      });
      // a memory total just under 1 MiB: "976.6 KiB" was cut to "6.6 KiB"
      const small = (s: number) => ({
        ...step(s),
        mem: { weights: 4e5, lora: 1e5, optimizer: 2e5, activations: 2.5e5, workspace: 5e4, total: 1e6 },
      });
      for (let s = 1; s <= 1000; s += 100) await post(page, { type: 'steps', steps: Array.from({ length: 100 }, (_, i) => small(s + i)) });
      await page.waitForFunction(() => document.getElementById('loss-chart')!.dataset.points === '1000');
      await page.waitForFunction(() => !!document.getElementById('mem-chart')!.dataset.yLabels);
      const mem = await page.evaluate(() => ({ ...document.getElementById('mem-chart')!.dataset }));
      assert.equal(mem.yLabels, '0 B|256 KiB|512 KiB|768 KiB|1 MiB');
      assert.ok(Number(mem.ySize) >= Number(mem.yLabelWidth) + 8, `axis ${mem.ySize}px for labels ${mem.yLabelWidth}px wide`);
      const dark = await page.evaluate(() => document.getElementById('loss-chart')!.dataset.axisColor);
      assert.equal(dark, '#cccccc');
      fs.mkdirSync(OUT, { recursive: true });
      await page.locator('#mem-chart').screenshot({ path: path.join(OUT, 'mem-chart-dark.png') });
      // VS Code switches to a light theme: new variables on html, a new body class
      await page.evaluate(() => {
        const h = document.documentElement.style;
        h.setProperty('--vscode-foreground', '#3b3b3b');
        h.setProperty('--vscode-charts-blue', '#005fb8');
        document.body.className = 'vscode-light';
        document.body.style.background = '#ffffff';
      });
      await page.waitForFunction(() => document.getElementById('loss-chart')!.dataset.axisColor === '#3b3b3b');
      for (const id of ['loss-chart', 'lr-chart', 'tps-chart', 'mem-chart']) {
        assert.equal(await page.evaluate((i) => document.getElementById(i)!.dataset.axisColor, id), '#3b3b3b', id);
        assert.equal(await page.locator(`#${id} canvas`).count(), 1, id);
      }
      assert.match(await page.evaluate(() => document.getElementById('loss-chart')!.dataset.seriesColors!), /^#005fb8 /);
      assert.equal(await page.evaluate(() => document.getElementById('loss-chart')!.dataset.points), '1000');
      await page.locator('#mem-chart').screenshot({ path: path.join(OUT, 'mem-chart-light.png') });
      await noViolations(page);
    } finally {
      await browser.close();
    }
  },
);

test('the block-size dropdown opens upward near the bottom of a short sidebar, and within it', { skip }, async () => {
  const browser = await launch();
  try {
    const page = await open(browser, { width: 380, height: 420 });
    await post(page, { type: 'init', settings: SETTINGS, status: { state: 'idle' }, steps: [], evals: [], adapters: [], trusted: true });
    await page.waitForFunction(() => (document.getElementById('f-blocksize') as any).value === '64');
    // scroll so that the select sits near the bottom of the view
    await page.evaluate(() => {
      const r = document.getElementById('f-blocksize')!.getBoundingClientRect();
      window.scrollBy(0, r.bottom - window.innerHeight + 30);
    });
    const sel = page.locator('#f-blocksize');
    await sel.click();
    await page.waitForFunction(() => (document.getElementById('f-blocksize') as any).open === true);
    await page.waitForTimeout(100);
    const r = await page.evaluate(() => {
      const s = document.getElementById('f-blocksize') as any;
      const d = s.shadowRoot.querySelector('.dropdown').getBoundingClientRect();
      return { position: s.position, top: d.top, bottom: d.bottom, h: window.innerHeight };
    });
    assert.equal(r.position, 'above');
    assert.ok(r.top >= 0 && r.bottom <= r.h, JSON.stringify(r));
    fs.mkdirSync(OUT, { recursive: true });
    await page.screenshot({ path: path.join(OUT, 'blocksize-open.png') });
    // and near the top it opens downward
    await page.keyboard.press('Escape');
    await page.evaluate(() =>
      window.scrollTo(0, document.getElementById('f-blocksize')!.getBoundingClientRect().top + window.scrollY - 20),
    );
    await sel.click();
    await page.waitForFunction(() => (document.getElementById('f-blocksize') as any).open === true);
    assert.equal(await page.evaluate(() => (document.getElementById('f-blocksize') as any).position), 'below');
    await noViolations(page);
  } finally {
    await browser.close();
  }
});

test('binary ticks: round steps in KiB/MiB/GiB, labels with the decimals they need', () => {
  assert.deepEqual(binaryTicks(binaryCeil(1e6)), [0, 262144, 524288, 786432, 1048576]);
  assert.equal(binaryCeil(1e6), 2 ** 20);
  assert.deepEqual(binaryTicks(binaryCeil(3 * 2 ** 30)).map(binaryLabel), ['0 B', '1 GiB', '2 GiB', '3 GiB']);
  assert.deepEqual(binaryTicks(binaryCeil(1.2 * 2 ** 20)).map(binaryLabel), ['0 B', '512 KiB', '1 MiB', '1.5 MiB']);
  assert.equal(binaryLabel(1.25 * 2 ** 20), '1.25 MiB');
  assert.deepEqual(binaryTicks(0), [0]);
});
