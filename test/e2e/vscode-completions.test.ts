// Inline completions, adapter swaps and Compare in a real VS Code (code-server + headless Chromium, as
// vscode-e2e.test.ts). The workspace has a tiny qwen2 model with fill-in-the-middle tokens as its base and two
// runs whose adapters the engine trained on pattern folders (zebra and mango). Through the UI: the completions'
// status item says there is no active adapter; "Activate Adapter for This Project" picks zebra; typing
// PATTERN_PREFIX into a .py file shows ghost text with zebra_quux; activating mango changes the ghost text to
// mango_flux with no keystroke, and the sidecar opened the base model once (its log); the Adapters view marks
// the active adapter; Compare streams the base and the adapter side by side (mango_flux in the adapter's column)
// and runs again at another temperature; the status item toggles completions off and on; "Serve Active
// Adapter…" shows the URL, where the adapter answers an OpenAI completion, and "Stop Serving" closes it; no CSP
// violation.
// Screenshots: test-output/e2e/completions-*.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import { PATTERN_PREFIX } from '../../src/engine/fixtures/pattern';
import { tmpDir } from '../helpers';
import { makePatternModel, trainPatternAdapter } from '../patterns';
import { openVscode, palette, skip, webviewFrame } from './vscode-harness';

if (skip) console.log(`# VS Code completions end-to-end test skipped: ${skip}`);

/** a project whose .lorakit/runs hold the zebra and mango runs (named so), the model as lorakit.baseModel */
async function workspace(): Promise<string> {
  const ws = path.join(tmpDir('e2e-completions'), 'project');
  const model = makePatternModel(path.join(ws, 'model'));
  for (const [i, name] of (['zebra', 'mango'] as const).entries()) {
    const run = path.join(ws, '.lorakit', 'runs', `2026-01-0${i + 1}T10-00-00-000Z`);
    await trainPatternAdapter(model, name, run, path.join(ws, 'data'));
    fs.writeFileSync(path.join(run, 'name.txt'), `${name}\n`);
  }
  fs.writeFileSync(path.join(ws, 'main.py'), '');
  fs.mkdirSync(path.join(ws, '.vscode'));
  // typed text stays as typed: no auto-indent or closing brackets, no suggest widget over the ghost text
  const settings = {
    'lorakit.baseModel': 'model',
    'lorakit.serve.port': 0,
    'editor.autoIndent': 'none',
    'editor.autoClosingBrackets': 'never',
    'editor.quickSuggestions': { other: false, comments: false, strings: false },
    'editor.suggestOnTriggerCharacters': false,
  };
  fs.writeFileSync(path.join(ws, '.vscode', 'settings.json'), JSON.stringify(settings, null, 2));
  return ws;
}

/** the ghost text in the editor, as shown */
const ghost = (page: Page) =>
  page.evaluate(() =>
    Array.from(document.querySelectorAll('.monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text'))
      .map((e) => e.textContent)
      .join('')
      .replace(/\u00a0/g, ' '),
  );

async function ghostHas(page: Page, text: string, ms = 60_000): Promise<string> {
  const t0 = Date.now();
  for (;;) {
    const g = await ghost(page);
    if (g.includes(text)) return g;
    if (Date.now() - t0 > ms) throw new Error(`the ghost text is ${JSON.stringify(g)}, without ${text}`);
    await page.waitForTimeout(200);
  }
}

async function activate(page: Page, name: string): Promise<void> {
  await palette(page, 'LoRA: Activate Adapter for This Project');
  await page.locator('.quick-input-widget .monaco-list-row', { hasText: name }).first().click();
}

test(
  'in a real VS Code: ghost text from the active adapter, a swap to another at once, the base opened once',
  { skip, timeout: 300_000 },
  async () => {
    const t0 = Date.now();
    const log = (what: string) => console.log(`# ${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);
    const ws = await workspace();
    log('adapters trained');
    const vs = await openVscode(ws, { shotPrefix: 'completions-' });
    log('workbench DOM');
    const { page, shot } = vs;
    try {
      const item = page.locator('#workbench\\.parts\\.statusbar .statusbar-item', { hasText: /· (on|off)$/ });
      await item.filter({ hasText: 'base · on' }).waitFor({ timeout: 90_000 });
      log('workbench up');

      await activate(page, 'zebra');
      await item.filter({ hasText: 'zebra · on' }).waitFor({ timeout: 30_000 });
      await page.keyboard.press('Control+P');
      await page.keyboard.type('main.py');
      await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'main.py' }).first().waitFor();
      await page.keyboard.press('Enter');
      const editor = page.locator('.monaco-editor .view-lines').first();
      await editor.waitFor();
      await editor.click();
      await page.keyboard.type(PATTERN_PREFIX, { delay: 20 });
      const z = await ghostHas(page, 'zebra_quux');
      assert.match(z, /zebra_quux\(x\) \+ 42/);
      log('zebra ghost text');
      await shot('01-zebra');

      // the swap: the ghost text follows at once, from the base the sidecar has open
      await activate(page, 'mango');
      await item.filter({ hasText: 'mango · on' }).waitFor({ timeout: 30_000 });
      const m = await ghostHas(page, 'mango_flux');
      assert.doesNotMatch(m, /zebra/);
      log('mango ghost text');
      await shot('02-mango');
      const logs = fs
        .readdirSync(vs.state, { recursive: true, encoding: 'utf8' })
        .filter((f) => f.endsWith('lorakit.log'))
        .map((f) => fs.readFileSync(path.join(vs.state, f), 'utf8'))
        .join('\n');
      assert.equal(logs.match(/completions: opened /g)?.length, 1, `the sidecar opened the base once:\n${logs}`);
      assert.equal(logs.match(/completions: loaded the adapter /g)?.length, 2, 'each adapter loaded once');

      // Compare: the prompt streams from the base and from the active adapter side by side; a temperature, Run again
      await palette(page, 'LoRA: Compare Base vs Adapter');
      const compare = webviewFrame(page); // the one webview open (the LoRA sidebar stays closed until after)
      await compare.locator('#title-adapter', { hasText: 'With mango' }).waitFor({ timeout: 60_000 });
      await compare.locator('#prompt').fill(PATTERN_PREFIX);
      await compare.locator('#run').click();
      await compare.locator('#gen-adapter', { hasText: 'mango_flux(x) * 7' }).waitFor({ timeout: 60_000 });
      await compare.locator('#meta-base', { hasText: /\d+ tokens · \d+ tok\/s · .* · temperature 0$/ }).waitFor({ timeout: 60_000 });
      await compare.locator('#run', { hasText: 'Run' }).waitFor();
      assert.doesNotMatch(await compare.locator('#gen-base').innerText(), /mango_flux/);
      assert.equal(await compare.locator('#out-base .prompt').innerText(), PATTERN_PREFIX);
      await shot('03-compare');
      await compare.locator('#temperature').fill('0.8');
      await compare.locator('#max-tokens').fill('12');
      await compare.locator('#run').click();
      for (const side of ['base', 'adapter'])
        await compare.locator(`#meta-${side}`, { hasText: /^(\d|1[0-2]) tokens · .* · temperature 0\.8$/ }).waitFor({ timeout: 60_000 });
      log('compare');

      // the Adapters view marks the active adapter
      await page.locator('.activitybar .action-item a[aria-label^="LoRA"]').click();
      const tree = page.locator('.pane', { has: page.locator('.pane-header', { hasText: 'Adapters' }) });
      await tree.locator('.monaco-list-row', { hasText: 'mango' }).filter({ hasText: 'active' }).waitFor({ timeout: 30_000 });
      assert.equal(await tree.locator('.monaco-list-row', { hasText: 'zebra' }).filter({ hasText: 'active' }).count(), 0);
      await shot('04-adapters-view');

      // the status item toggles completions
      await item.first().click();
      await item.filter({ hasText: 'mango · off' }).waitFor({ timeout: 30_000 });
      await item.first().click();
      await item.filter({ hasText: 'mango · on' }).waitFor({ timeout: 30_000 });

      // Serve Active Adapter: the URL in a notification, the adapter answering over HTTP; Stop Serving closes it
      await palette(page, 'LoRA: Serve Active Adapter…');
      const toast = page.locator('.notification-toast', { hasText: 'lorakit: serving “mango” at http://127.0.0.1:' });
      await toast.waitFor({ timeout: 60_000 });
      await toast.locator('.monaco-button', { hasText: 'Copy URL' }).waitFor();
      const url = /at (http:\/\/127\.0\.0\.1:\d+)/.exec(await toast.innerText())![1];
      await page.locator('#workbench\\.parts\\.statusbar .statusbar-item', { hasText: 'serving mango' }).waitFor();
      const r = await fetch(`${url}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'mango', prompt: PATTERN_PREFIX, max_tokens: 24, temperature: 0, stop: ['\n'] }),
      });
      assert.equal(((await r.json()) as { choices: { text: string }[] }).choices[0].text, ' mango_flux(x) * 7');
      await shot('05-serving');
      await palette(page, 'LoRA: Stop Serving');
      await page.locator('.notification-toast', { hasText: 'lorakit: stopped serving' }).waitFor({ timeout: 30_000 });
      await assert.rejects(fetch(`${url}/v1/models`));
      log('served');
      assert.deepEqual(vs.csp, [], 'no CSP violations');
    } catch (e) {
      await shot('failure').catch(() => {});
      throw e;
    } finally {
      await vs.close();
    }
  },
);
