/**
 * The extension's entry: it only wires things up. The Controller (controller.ts) does the work apart from VS
 * Code's API; each command lives in commands/; the sidecar (a forked Node process) runs the engine.
 */
import * as vscode from 'vscode';
import { formatBytes } from '../protocol/format';
import { SidecarClient } from './client';
import { Controller } from './controller';
import { PanelProvider } from './panel';
import { AdaptersView } from './adapters';
import { COMPLETED, InlineCompletions } from './completions';
import { ServingStatus } from './servingStatus';
import { registerCommands } from './commands';
import { makeUi } from './ui';
import { activeAdapter } from './project';
import type { Ext } from './ext';

let client: SidecarClient | undefined;
let serving: ServingStatus | undefined;

export function activate(ctx: vscode.ExtensionContext): void {
  const out = vscode.window.createOutputChannel('lorakit', { log: true });
  const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? null;
  const bar = vscode.window.createStatusBarItem('lorakit.status', vscode.StatusBarAlignment.Left, 100);
  bar.name = 'lorakit';
  bar.command = 'lorakit.openPanel';
  bar.show();
  let ext!: Ext;
  const ui = makeUi(root, bar, out, () => ext);
  let controller: Controller | undefined;
  const served = (serving = new ServingStatus());
  client = new SidecarClient(ctx.asAbsolutePath('dist/sidecar.js'), {
    onEvent: (e) => controller?.onEvent(e),
    onExit: (i) => {
      served.set(null); // the server was in the sidecar
      void controller?.onExit(i);
    },
    log: (l) => out.info(l),
  });
  controller = new Controller(root, client, ui);
  const c = controller;
  const panel = new PanelProvider(
    ctx.extensionUri,
    (m) => void c.fromPanel(m, ext.device),
    (line) => out.warn(line),
  );
  const adaptersView = new AdaptersView(
    () => c.adapters(),
    () => c.merged(),
  );
  const completions = new InlineCompletions(root, client, out, (dir) => c.adapters().find((a) => a.dir === dir)?.name);
  ext = { ctx, root, out, client, controller: c, panel, adaptersView, completions, serving: served };

  const sidecar = client;
  ctx.subscriptions.push(
    out,
    bar,
    adaptersView,
    completions,
    served,
    vscode.languages.registerInlineCompletionItemProvider(COMPLETED, completions),
    vscode.window.registerWebviewViewProvider('lorakit.panel', panel, { webviewOptions: { retainContextWhenHidden: false } }),
    vscode.window.registerTreeDataProvider('lorakit.adapters', adaptersView),
    ...registerCommands(ext),
    // settings changed after start-up (Choose Base Model saves lorakit.baseModel): the run settings and the panel follow
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration('lorakit')) return;
      c.configChanged();
      completions.refresh();
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => {
      panel.post(c.initMessage(ext.device));
      completions.refresh();
    }),
    { dispose: () => sidecar.stop() },
  );
  sidecar.request('hello', {}).then(
    (h) => {
      ext.device = { name: h.device, bytes: h.memoryBytes };
      out.info(`sidecar: lorakit ${h.version}, protocol ${h.protocol}, ${h.device}, ${formatBytes(h.memoryBytes)}`);
    },
    (e: Error) => out.error(`sidecar hello failed: ${e.message}`),
  );
  if (root && activeAdapter(root)) out.info(`active adapter: ${activeAdapter(root)}`);
}

/** Stop serving (if the sidecar serves), then end the sidecar. */
export async function deactivate(): Promise<void> {
  const c = client;
  client = undefined;
  if (c?.alive && serving?.current)
    await Promise.race([c.request('serve/stop', {}).catch(() => undefined), new Promise((r) => setTimeout(r, 2000))]);
  serving = undefined;
  c?.stop();
}
