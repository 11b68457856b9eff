// The whole extension inside a real VS Code (code-server 4.100.3 = VS Code 1.100.3) driven by Playwright through
// headless Chromium, on a generated workspace with a tiny generated model: the command palette opens the panel;
// right-click a folder → "Fine-tune on this folder" → Start; the status bar shows steps; the panel's loss chart
// gets points; an adapter appears in .lorakit/; "Activate Adapter for This Project" records it. Screenshots in
// dark and light themes go to test-output/e2e/. Skipped (saying why) where code-server or Chromium is missing:
// scripts/e2e/install-code-server.sh installs both (CI runs it).
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, FrameLocator, Page } from 'playwright-core';
import { makeTinyModel } from '../../src/engine/fixtures/model';
import { tmpDir } from '../helpers';

const ROOT = path.resolve(process.env.VSCODE_E2E_ROOT ?? '.vscode-test/code-server');
const CS = path.join(ROOT, 'cs/node_modules/.bin/code-server');
const CHROMIUM = process.env.LORAKIT_CHROMIUM ?? '/usr/bin/chromium';
const skip = !fs.existsSync(CS) ? `needs code-server (sh scripts/e2e/install-code-server.sh)` : !fs.existsSync(CHROMIUM) ? `needs ${CHROMIUM}` : false;
if (skip) console.log(`# VS Code end-to-end test skipped: ${skip}`);
const OUT = path.resolve('test-output/e2e');
const EXT_ID = 'lorakit.lorakit';

function workspace(): string {
  const ws = path.join(tmpDir('e2e'), 'project');
  makeTinyModel(path.join(ws, 'model'), { modelType: 'llama' });
  const src = path.join(ws, 'notes');
  fs.mkdirSync(src, { recursive: true });
  for (let i = 0; i < 4; i++)
    fs.writeFileSync(path.join(src, `note-${i}.md`), `# Note ${i}\n\n` + 'The quick brown fox jumps over the lazy dog. '.repeat(20 + i * 5) + '\n');
  fs.writeFileSync(path.join(src, 'logo.bin'), Buffer.from([0, 1, 2, 3, 0, 255, 0, 7]));
  fs.mkdirSync(path.join(ws, '.vscode'));
  fs.writeFileSync(path.join(ws, '.vscode', 'settings.json'), JSON.stringify({ 'lorakit.baseModel': 'model', 'lorakit.seqLen': 32, 'lorakit.batch': 2 }, null, 2));
  return ws;
}

async function palette(page: Page, command: string): Promise<void> {
  await page.keyboard.press('F1');
  const qi = page.locator('.quick-input-widget');
  await qi.waitFor({ state: 'visible' });
  await page.keyboard.type(command);
  const row = qi.locator('.monaco-list-row', { hasText: command }).first();
  await row.waitFor();
  await row.click();
}

function panelFrame(page: Page): FrameLocator {
  return page.frameLocator(`iframe.webview.ready[src*="extensionId=${EXT_ID}"]`).frameLocator('#active-frame');
}

async function waitFor(what: string, f: () => boolean, ms = 120_000): Promise<void> {
  const t0 = Date.now();
  while (!f()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('in a real VS Code: palette → panel, right-click → fine-tune, status bar, loss chart, adapter, activate', { skip, timeout: 600_000 }, async () => {
  fs.mkdirSync(OUT, { recursive: true });
  const ws = workspace();
  const state = tmpDir('e2e-state');
  const port = String(20000 + (process.pid % 20000));
  const pid = execFileSync('sh', [path.resolve('scripts/e2e/start-vscode.sh'), state, port, ws, path.resolve('.')], {
    encoding: 'utf8', env: { ...process.env, VSCODE_E2E_ROOT: ROOT },
  }).trim();
  const browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const shot = (name: string) => page.screenshot({ path: path.join(OUT, `${name}.png`) });
  try {
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.locator('.monaco-workbench').waitFor({ timeout: 90_000 });
    const status = page.locator('#workbench\\.parts\\.statusbar .statusbar-item', { hasText: 'LoRA' });
    await status.first().waitFor({ timeout: 90_000 });

    // 1) the command palette opens the training panel
    await palette(page, 'LoRA: Open Training Panel');
    const panel = panelFrame(page);
    await panel.locator('#f-rank').waitFor({ timeout: 60_000 });
    await panel.locator('#estimate-total').waitFor({ timeout: 60_000 }); // the estimate for the configured model
    await shot('01-panel-light');

    // 2) right-click a folder → Fine-tune on this folder → Start Training
    await page.keyboard.press('Control+Shift+E');
    const row = page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'notes' });
    await row.waitFor();
    await row.click({ button: 'right' });
    const item = page.getByRole('menuitem', { name: 'Fine-tune on this folder' });
    await item.waitFor();
    await shot('02-context-menu');
    await item.click();
    const dialog = page.locator('.monaco-dialog-box');
    await dialog.waitFor({ timeout: 60_000 });
    const text = await dialog.innerText();
    assert.match(text, /Fine-tune on notes\?/);
    assert.match(text, /4 files .* skipped 1 binary/);
    assert.match(text, /Memory estimate: .* of /);
    await shot('03-confirm');
    await dialog.locator('.monaco-button', { hasText: 'Start Training' }).click();

    // 3) the status bar shows steps, 4) the loss chart gets points
    await status.filter({ hasText: /LoRA step \d+\/\d+ · loss/ }).first().waitFor({ timeout: 120_000 });
    await page.waitForFunction(() => true);
    await panel.locator('#loss-chart[data-points]:not([data-points="0"])').waitFor({ timeout: 120_000 });
    await shot('04-training');

    // 5) an adapter appears in .lorakit/
    const runs = path.join(ws, '.lorakit', 'runs');
    const adapterOf = () => (fs.existsSync(runs) ? fs.readdirSync(runs).map((r) => path.join(runs, r, 'adapter')).find((a) => fs.existsSync(path.join(a, 'adapter_model.safetensors'))) : undefined);
    await waitFor('the adapter', () => !!adapterOf());
    await status.filter({ hasText: 'LoRA done' }).first().waitFor({ timeout: 60_000 });
    await panel.locator('#adapters .adapter').first().waitFor({ timeout: 30_000 });
    // a tall window with the adapters view folded, so the screenshots hold the whole panel: settings, estimate, charts
    await page.setViewportSize({ width: 1400, height: 2000 });
    await page.locator('.pane-header', { hasText: 'Adapters' }).click();
    await panel.locator('#mem-chart canvas').waitFor();
    await page.waitForTimeout(500);
    await shot('05-done-light');

    // 6) Activate Adapter for This Project records it
    await palette(page, 'LoRA: Activate Adapter for This Project');
    await page.locator('.quick-input-widget .monaco-list-row').first().waitFor();
    await page.keyboard.press('Enter');
    const active = path.join(ws, '.lorakit', 'active.json');
    await waitFor('active.json', () => fs.existsSync(active), 30_000);
    assert.equal(path.resolve(ws, JSON.parse(fs.readFileSync(active, 'utf8')).adapter), adapterOf());

    // the same panel in the dark theme
    await palette(page, 'Preferences: Color Theme');
    const themes = page.locator('.quick-input-widget');
    await themes.locator('.monaco-list-row', { hasText: 'Dark Modern' }).first().click();
    await page.waitForFunction(() => {
      const bg = getComputedStyle(document.querySelector('.monaco-workbench')!).getPropertyValue('--vscode-editor-background').trim();
      const n = parseInt(bg.slice(1, 3), 16);
      return bg.startsWith('#') && n < 0x60; // a dark editor background
    }, undefined, { timeout: 30_000 });
    await page.waitForTimeout(1000);
    await shot('06-done-dark');
  } catch (e) {
    await shot('failure').catch(() => {});
    throw e;
  } finally {
    await browser.close();
    try {
      process.kill(Number(pid));
    } catch {
      /* already gone */
    }
  }
});
