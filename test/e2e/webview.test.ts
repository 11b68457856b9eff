// The training panel's bundle (dist/webview/panel.js) in headless Chromium with a fake acquireVsCodeApi: it renders,
// refuses bad values, draws the charts from a stream of metrics messages, and restores its state after a reload.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, Browser, Page } from 'playwright-core';
import { tmpDir } from '../helpers';

const CHROMIUM = process.env.LORAKIT_CHROMIUM ?? '/usr/bin/chromium';
const skip = fs.existsSync(CHROMIUM) ? false : `needs Chromium at ${CHROMIUM} (apt-get install chromium)`;
if (skip) console.log(`# webview tests skipped: ${skip}`);

const dir = tmpDir('webview');
// the page the extension serves, with a fake VS Code API that records messages and keeps state in localStorage
fs.writeFileSync(path.join(dir, 'index.html'), `<!DOCTYPE html><html><head><meta charset="utf-8">
<link rel="stylesheet" href="panel.css">
<style>:root{--vscode-foreground:#ccc;--vscode-charts-blue:#3794ff;--vscode-charts-orange:#d18616;--vscode-charts-green:#89d185;--vscode-charts-purple:#b180d7;--vscode-charts-yellow:#cca700;--vscode-errorForeground:#f48771;--vscode-editorWidget-border:#454545} body{background:#1e1e1e;width:360px}</style>
<script>
window.sent = [];
window.acquireVsCodeApi = () => ({
  postMessage: (m) => window.sent.push(JSON.parse(JSON.stringify(m))),
  getState: () => JSON.parse(localStorage.getItem('state') || 'null'),
  setState: (s) => localStorage.setItem('state', JSON.stringify(s)),
});
</script></head><body><div id="app"></div><script src="panel.js"></script></body></html>`);
for (const f of ['panel.js', 'panel.css']) fs.copyFileSync(path.resolve('dist/webview', f), path.join(dir, f));

const SETTINGS = { model: '/models/tiny', data: '/work/src', rank: 8, alpha: 16, dropout: 0.05, targets: 'all-linear', quant: 'nf4', doubleQuant: true, blocksize: 64, seqLen: 256, batch: 4, gradAccum: 1, lr: 0.0002, epochs: 1, backend: 'auto' };
const mem = (s: number) => ({ weights: 4e6, lora: 1e6, optimizer: 1e6, activations: 2e7 + s * 1e5, workspace: 3e6, total: 2.9e7 + s * 1e5 });
const step = (s: number) => ({ step: s, total_steps: 20, loss: 6 - s * 0.1, lr: 2e-4, grad_norm: 1, tokens_per_s: 500 + s, step_ms: 900, mem: mem(s), elapsed_s: s });

async function open(browser: Browser): Promise<Page> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`file://${dir}/index.html`);
  await page.waitForFunction(() => (window as any).sent.some((m: any) => m.type === 'ready'));
  assert.deepEqual(errors, []);
  return page;
}
const post = (page: Page, m: unknown) => page.evaluate((msg) => window.postMessage(msg, '*'), m);
const sent = (page: Page) => page.evaluate(() => (window as any).sent as any[]);
const setField = (page: Page, key: string, value: string) =>
  page.evaluate(([k, v]) => {
    const e = document.getElementById(`f-${k}`) as any;
    e.value = v;
    e.dispatchEvent(new Event('input'));
  }, [key, value]);

test('the panel renders, validates, estimates, draws metrics and restores its state', { skip }, async () => {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--allow-file-access-from-files'] });
  try {
    const page = await open(browser);
    // init: the form takes the extension's settings
    await post(page, { type: 'init', settings: SETTINGS, status: { state: 'idle' }, steps: [], evals: [], adapters: [], device: { name: 'cpu', bytes: 8 * 2 ** 30 }, trusted: true });
    await page.waitForFunction(() => (document.getElementById('f-rank') as any).value === '8');
    assert.equal(await page.evaluate(() => (document.getElementById('f-quant') as any).value), 'nf4');
    // a valid form asks for an estimate; its result is drawn as a bar by tag
    await page.waitForFunction(() => (window as any).sent.some((m: any) => m.type === 'estimate'));
    await post(page, { type: 'estimate', result: { bytes: mem(0), fits: true, device: { name: 'cpu', bytes: 8 * 2 ** 30 }, params: { base: 1e6, trainable: 1e4, quantized: 8e5 }, bitsPerParam: 4.127 } });
    await page.waitForSelector('#estimate-total');
    assert.match(await page.innerText('#estimate-total'), /Memory estimate: 27\.7 MiB of 8\.0 GiB .* fits · 4\.127 bits/);
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
    for (let s = 1; s <= 12; s++) await post(page, { type: 'step', step: step(s) });
    await post(page, { type: 'eval', eval: { step: 6, eval_loss: 5.5, eval_perplexity: 244, eval_tokens: 100 } });
    await page.waitForFunction(() => document.getElementById('loss-chart')!.dataset.points === '12');
    for (const id of ['loss-chart', 'lr-chart', 'tps-chart', 'mem-chart']) assert.equal(await page.locator(`#${id} canvas`).count(), 1, id);
    assert.match(await page.innerText('#state'), /running · step 12\/20 · loss 4\.800/);
    assert.equal(await page.evaluate(() => (document.getElementById('stop') as any).disabled), false);
    await page.screenshot({ path: path.join(dir, 'panel.png'), fullPage: true });
    // hide/show or reload: the form comes back from the webview state, the history from the extension's init
    await setField(page, 'alpha', '32');
    await page.reload();
    await page.waitForFunction(() => (window as any).sent.some((m: any) => m.type === 'ready'));
    await post(page, { type: 'init', settings: SETTINGS, status: { state: 'running', runDir: '/r' }, steps: [1, 2, 3].map(step), evals: [], adapters: [{ dir: '/p/.lorakit/runs/a/adapter', run: 'a', created: 'x', active: true, finalLoss: 4.2 }], trusted: true });
    await page.waitForFunction(() => document.getElementById('loss-chart')!.dataset.points === '3');
    assert.equal(await page.evaluate(() => (document.getElementById('f-alpha') as any).value), '32', 'an unsent edit survives the reload');
    assert.match(await page.innerText('#adapters'), /✓ a · loss 4\.200/);
    await page.evaluate(() => (document.querySelector('#adapters vscode-button[data-action="activate"]') as any).click());
    assert.deepEqual((await sent(page)).pop(), { type: 'adapter', action: 'activate', dir: '/p/.lorakit/runs/a/adapter' });
  } finally {
    await browser.close();
  }
});
