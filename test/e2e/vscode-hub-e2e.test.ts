// The Hugging Face Hub in a real VS Code (code-server + headless Chromium, as vscode-e2e.test.ts): HF_ENDPOINT
// points at a mock Hub on 127.0.0.1 and HF_HUB_CACHE at a fresh cache holding one model already. "Choose Base
// Model…" lists that cached model and "Download from Hugging Face…"; the id box takes a typed id; the confirmation
// shows the size and the training memory; the progress notification's Cancel stops the download (the partial
// file kept); a second download resumes it with a Range request, and the model becomes lorakit.baseModel.
// Screenshots go to test-output/e2e/hub-*.png. Skipped (saying why) where code-server or Chromium is missing.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeTinyModel } from '../../src/engine/fixtures/model';
import { pullModel } from '../../src/engine/tasks/pull';
import { MockHub } from '../hub-mock';
import { tmpDir } from '../helpers';
import { openVscode, palette, skip, waitFor } from './vscode-harness';

if (skip) console.log(`# VS Code Hub end-to-end test skipped: ${skip}`);

test(
  'in a real VS Code: the HF cache in Choose Base Model…, and a download from the (mock) Hub with Cancel and resume',
  { skip, timeout: 300_000 },
  async () => {
    const root = tmpDir('e2e-hub');
    const hub = new MockHub();
    const endpoint = await hub.start();
    makeTinyModel(path.join(root, 'src', 'cached'), { modelType: 'qwen2' });
    makeTinyModel(path.join(root, 'src', 'tiny'), { modelType: 'llama', hidden: 128, intermediate: 352 }); // ~2 MB
    hub.add('org/cached-model', { dir: path.join(root, 'src', 'cached') });
    const commit = hub.add('org/tiny', { dir: path.join(root, 'src', 'tiny') });
    const cache = path.join(root, 'hf', 'hub');
    await pullModel('org/cached-model', { endpoint, env: { HF_HUB_CACHE: cache } });

    const ws = path.join(root, 'project');
    fs.mkdirSync(path.join(ws, '.vscode'), { recursive: true });
    fs.writeFileSync(path.join(ws, '.vscode', 'settings.json'), JSON.stringify({ 'lorakit.modelsFolder': '.' }, null, 2));
    const settings = () => fs.readFileSync(path.join(ws, '.vscode', 'settings.json'), 'utf8');
    const vs = await openVscode(ws, {
      shotPrefix: 'hub-',
      env: { HF_ENDPOINT: endpoint, HF_HUB_CACHE: cache, HF_HOME: path.join(root, 'hf') },
    });
    const { page, shot } = vs;
    try {
      await page.locator('#workbench\\.parts\\.statusbar .statusbar-item', { hasText: 'LoRA' }).first().waitFor({ timeout: 90_000 });
      const qi = page.locator('.quick-input-widget');

      // the model already in the HF cache is listed, beside "Download from Hugging Face…"
      await palette(page, 'LoRA: Choose Base Model…');
      await qi.locator('.monaco-list-row', { hasText: 'org/cached-model' }).waitFor({ timeout: 30_000 });
      await qi.locator('.monaco-list-row', { hasText: 'Download from Hugging Face…' }).waitFor();
      await shot('1-choose-lists-cache');

      // download through the id box; slow "CDN", so the notification shows and Cancel can be pressed
      hub.throttle = { chunk: 32768, ms: 400 }; // about 25 s for the file: time for the toast, a screenshot and Cancel on 2 busy cores
      const download = async () => {
        await palette(page, 'LoRA: Choose Base Model…');
        await qi.locator('.monaco-list-row', { hasText: 'Download from Hugging Face…' }).click();
        await qi.locator('.monaco-list-row', { hasText: 'Qwen/Qwen2.5-0.5B' }).waitFor(); // the suggestions
        await page.keyboard.type('org/tiny');
        await qi.locator('.monaco-list-row', { hasText: 'download this model' }).waitFor();
        await page.keyboard.press('Enter');
        const dialog = page.locator('.monaco-dialog-box');
        await dialog.waitFor({ timeout: 30_000 });
        const text = await dialog.innerText();
        assert.match(text, /Download org\/tiny\? llama, 4 files, [\d.]+ MiB to download/);
        assert.match(text, /Training it with the default settings needs about [\d.]+ [KMG]iB/);
        await shot('2-confirm');
        await dialog.locator('.monaco-button', { hasText: 'Download' }).click();
      };
      await download();
      const toast = page.locator('.notification-toast', { hasText: 'Downloading org/tiny' });
      await toast.waitFor({ timeout: 30_000 });
      await toast.locator('text=/model\\.safetensors: [\\d.]+ [KM]iB of [\\d.]+ MiB/').waitFor({ timeout: 30_000 });
      await shot('3-progress');
      await toast.locator('.monaco-button', { hasText: 'Cancel' }).click();
      await page.locator('.notification-toast', { hasText: 'download of org/tiny cancelled' }).waitFor({ timeout: 30_000 });
      const blobs = path.join(cache, 'models--org--tiny', 'blobs');
      const partial = fs.readdirSync(blobs).filter((b) => b.endsWith('.incomplete'));
      assert.equal(partial.length, 1, 'the partial file is kept');
      const kept = fs.statSync(path.join(blobs, partial[0])).size;
      assert.ok(!/"lorakit\.baseModel"/.test(settings()), 'no base model from a cancelled download');

      // again: it resumes, and the model becomes the base model
      hub.throttle = null;
      const from = hub.log.length;
      await download();
      await waitFor('lorakit.baseModel in settings.json', () => /"lorakit\.baseModel"/.test(settings()), 60_000);
      const base = JSON.parse(settings())['lorakit.baseModel'];
      assert.equal(base, path.join(cache, 'models--org--tiny', 'snapshots', commit));
      assert.ok(fs.lstatSync(path.join(base, 'model.safetensors')).isSymbolicLink());
      const cdn = hub.log.slice(from).filter((l) => l.url.startsWith('/cdn-lfs/') && l.method === 'GET');
      assert.deepEqual(
        cdn.map((l) => l.range),
        [`bytes=${kept}-`],
        'the second download resumed the first',
      );
      await page.locator('.notification-toast', { hasText: 'org/tiny is in the Hugging Face cache' }).waitFor({ timeout: 30_000 });
      await shot('4-done');
    } catch (e) {
      await shot('failure').catch(() => {});
      throw e;
    } finally {
      await vs.close();
      await hub.stop();
    }
  },
);
