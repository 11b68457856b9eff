// What the VS Code end-to-end tests share: where code-server and Chromium are (and the reason to skip without
// them), a throw-away code-server on a workspace with this checkout as its extension, a headless Chromium page on
// it that records CSP violations, the command palette, and waiting for a condition on disk.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Browser, FrameLocator, Page, chromium } from 'playwright-core';
import { tmpDir } from '../helpers';

export const ROOT = path.resolve(process.env.VSCODE_E2E_ROOT ?? '.vscode-test/code-server');
const CS = path.join(ROOT, 'cs/node_modules/.bin/code-server');
const CHROMIUM = process.env.LORAKIT_CHROMIUM ?? '/usr/bin/chromium';
export const skip = !fs.existsSync(CS)
  ? `needs code-server (sh scripts/e2e/install-code-server.sh)`
  : !fs.existsSync(CHROMIUM)
    ? `needs ${CHROMIUM}`
    : false;
export const OUT = path.resolve('test-output/e2e');
export const EXT_ID = 'lorakit.lorakit';

export interface Vscode {
  page: Page;
  /** the code-server's state folder (its logs are in it) */
  state: string;
  /** CSP violations logged anywhere (the webviews' frames included) */
  csp: string[];
  shot(name: string): Promise<void>;
  close(): Promise<void>;
}

/** A fresh code-server on `ws` (on a port the system says is free) and a Chromium page on its workbench. */
export async function openVscode(ws: string, o: { env?: Record<string, string>; shotPrefix?: string } = {}): Promise<Vscode> {
  fs.mkdirSync(OUT, { recursive: true });
  const state = tmpDir('e2e-state');
  const port = String(await freePort());
  const pid = execFileSync('sh', [path.resolve('scripts/e2e/start-vscode.sh'), state, port, ws, path.resolve('.')], {
    encoding: 'utf8',
    env: { ...process.env, VSCODE_E2E_ROOT: ROOT, ...o.env },
  }).trim();
  let browser: Browser | undefined;
  const close = async () => {
    await browser?.close();
    try {
      process.kill(Number(pid));
    } catch {
      /* already gone */
    }
  };
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-dev-shm-usage',
      ],
    });
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const csp: string[] = [];
    page.on(
      'console',
      (m) =>
        /Content Security Policy|Refused to (apply|load|execute|evaluate)/.test(m.text()) && csp.push(`${m.location().url}: ${m.text()}`),
    );
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.locator('.monaco-workbench').waitFor({ timeout: 90_000 });
    const shot = async (name: string) => void (await page.screenshot({ path: path.join(OUT, `${o.shotPrefix ?? ''}${name}.png`) }));
    return { page, state, csp, shot, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** run a command from the palette, by its title */
export async function palette(page: Page, command: string): Promise<void> {
  await page.keyboard.press('F1');
  const qi = page.locator('.quick-input-widget');
  await qi.waitFor({ state: 'visible' });
  await page.keyboard.type(command);
  const row = qi.locator('.monaco-list-row', { hasText: command }).first();
  await row.waitFor();
  await row.click();
}

/**
 * The inner frame of the extension's webview (the training panel, or Compare): one open at a time, since nothing
 * in the iframe tells the two apart (its src names the view kind only when first made). It re-resolves on each use,
 * so it survives a view that is hidden and made again.
 */
export function webviewFrame(page: Page): FrameLocator {
  return page.frameLocator(`iframe.webview.ready[src*="extensionId=${EXT_ID}"]`).frameLocator('#active-frame');
}

export async function waitFor(what: string, f: () => boolean, ms = 120_000): Promise<void> {
  const t0 = Date.now();
  while (!f()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * A port of 127.0.0.1 that nothing listens on: one the system hands out, closed again for code-server to take. A port
 * derived from the pid could be another server's, and start-vscode.sh's health check would then pass on it.
 */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer().once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
