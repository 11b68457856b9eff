/**
 * The VS Code side: commands, the explorer's "Fine-tune on this folder", the status bar, the training panel (a
 * webview view) and the adapters view, wired to the Controller. All heavy work runs in the sidecar.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { TrainSettings } from '../protocol';
import { formatBytes } from '../engine/core/format';
import { SidecarClient } from './client';
import { Controller, DEFAULT_SETTINGS, Ui } from './controller';
import { PanelProvider } from './panel';
import { AdaptersView } from './adapters';
import { activeAdapter, addToGitignore, isGitIgnored, listAdapters, mergedDir, setActiveAdapter } from './project';

let controller: Controller | undefined;

export function activate(ctx: vscode.ExtensionContext): void {
  const out = vscode.window.createOutputChannel('lorakit', { log: true });
  const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? null;
  const bar = vscode.window.createStatusBarItem('lorakit.status', vscode.StatusBarAlignment.Left, 100);
  bar.name = 'lorakit';
  bar.command = 'lorakit.openPanel';
  bar.show();
  let panel: PanelProvider;
  const adaptersView = new AdaptersView(() => (root ? listAdapters(root) : []));
  const cfg = () => vscode.workspace.getConfiguration('lorakit');

  const ui: Ui = {
    post: (m) => panel?.post(m),
    status: (text, tooltip) => {
      bar.text = text;
      bar.tooltip = tooltip;
    },
    info: (m, ...a) => Promise.resolve(vscode.window.showInformationMessage(m, ...a)),
    error: (m, ...a) => Promise.resolve(vscode.window.showErrorMessage(m, ...a)),
    log: (l) => out.info(l),
    defaults: () => {
      const c = cfg();
      const d: Partial<TrainSettings> = {};
      const model = c.get<string>('baseModel');
      if (model) d.model = resolve(model);
      for (const k of ['rank', 'alpha', 'seqLen', 'batch', 'blocksize'] as const) {
        const v = c.get<number>(k);
        if (typeof v === 'number') d[k] = v;
      }
      const q = c.get<string>('quantization');
      if (q === 'none' || q === 'nf4' || q === 'fp4') d.quant = q;
      const b = c.get<string>('backend');
      if (b === 'auto' || b === 'cpu' || b === 'cpu-reference' || b === 'webgpu') d.backend = b;
      return d;
    },
    trusted: () => vscode.workspace.isTrusted,
    pick: async (field) => {
      if (field === 'model') return pickModel();
      const uris = await vscode.window.showOpenDialog({
        canSelectFolders: true, canSelectFiles: true, canSelectMany: false,
        openLabel: 'Train on this', defaultUri: root ? vscode.Uri.file(root) : undefined,
      });
      return uris?.[0]?.fsPath;
    },
    adapterAction: (action, dir) => adapterAction(action, dir),
    adaptersChanged: () => adaptersView.refresh(),
  };
  const resolve = (p: string) => (path.isAbsolute(p) || !root ? p : path.join(root, p));

  const client = new SidecarClient(ctx.asAbsolutePath('dist/sidecar.js'), {
    onEvent: (e) => controller?.onEvent(e),
    onExit: (i) => void controller?.onExit(i),
    log: (l) => out.info(l),
  });
  const c = (controller = new Controller(root, client, ui));
  let device: { name: string; bytes: number } | undefined;
  const hello = () =>
    client.request('hello', {}).then(
      (h) => {
        device = { name: h.device, bytes: h.memoryBytes };
        out.info(`sidecar: lorakit ${h.version}, protocol ${h.protocol}, ${h.device}, ${formatBytes(h.memoryBytes)}`);
      },
      (e) => out.error(`sidecar hello failed: ${e.message}`),
    );
  panel = new PanelProvider(ctx.extensionUri, (m) => void c.fromPanel(m, device), (line) => out.warn(line));

  /** the model to use: the lorakit.baseModel setting, else one of the models folder's, else a folder picked */
  async function chooseModel(force = false): Promise<string | undefined> {
    const set = cfg().get<string>('baseModel');
    if (set && !force) return resolve(set);
    const picked = await pickModel();
    if (picked) await cfg().update('baseModel', picked, vscode.ConfigurationTarget.Workspace);
    return picked;
  }
  async function pickModel(): Promise<string | undefined> {
    const browse = async () => (await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Use as base model' }))?.[0]?.fsPath;
    const models = modelsIn(cfg().get<string>('modelsFolder'));
    if (!models.length) return browse();
    const p = await vscode.window.showQuickPick([...models.map((m) => ({ label: path.basename(m), detail: m, dir: m })), { label: '$(folder-opened) Browse…', detail: '', dir: '' }], { title: 'Choose the base model' });
    if (!p) return undefined;
    return p.dir || browse();
  }
  /** model folders (with config.json) directly inside the configured models folder */
  function modelsIn(folder: string | undefined): string[] {
    if (!folder) return [];
    const dir = resolve(folder);
    try {
      return fs.readdirSync(dir).map((d) => path.join(dir, d)).filter((d) => fs.existsSync(path.join(d, 'config.json')));
    } catch {
      return [];
    }
  }

  async function fineTuneFolder(uri?: vscode.Uri): Promise<void> {
    if (!vscode.workspace.isTrusted) return void vscode.window.showErrorMessage('lorakit: training runs only in a trusted workspace.');
    const folder = uri?.fsPath ?? (await vscode.window.showOpenDialog({ canSelectFolders: true, openLabel: 'Fine-tune on this folder' }))?.[0]?.fsPath;
    if (!folder) return;
    const model = await chooseModel();
    if (!model) return;
    const settings = { ...DEFAULT_SETTINGS, ...ui.defaults(), model, data: folder } as TrainSettings;
    const why = c.refuse(settings);
    if (why) return void vscode.window.showErrorMessage(`lorakit: ${why}`);
    // preparation (reading the folder, estimating) under a cancellable progress notification
    const prep = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'lorakit: preparing', cancellable: true },
      async (progress, token) => {
        progress.report({ message: `reading ${path.basename(folder)}…` });
        const scan = await client.request('data/scan', { path: folder });
        if (token.isCancellationRequested) return null;
        progress.report({ message: 'estimating memory…' });
        const est = await client.request('estimate', { settings });
        return token.isCancellationRequested ? null : { scan, est };
      },
    ).then(undefined, (e: Error) => {
      void vscode.window.showErrorMessage(`lorakit: ${e.message}`);
      return null;
    });
    if (!prep) return;
    const skipped = Object.entries(prep.scan.skipped).map(([r, n]) => `${n} ${r}`).join(', ');
    const detail = [
      `Model: ${model}`,
      `Data: ${prep.scan.files} files (${formatBytes(prep.scan.bytes)}) from ${folder}${skipped ? `; skipped ${skipped}` : ''}`,
      `LoRA r=${settings.rank}, alpha ${settings.alpha}, ${settings.targets}; seq ${settings.seqLen} × batch ${settings.batch}${settings.quant !== 'none' ? `; ${settings.quant.toUpperCase()} base` : ''}`,
      `Memory estimate: ${formatBytes(prep.est.bytes.total)} of ${formatBytes(prep.est.device.bytes)}${prep.est.fits ? '' : ' — does NOT fit'}`,
    ].join('\n');
    const go = await vscode.window.showInformationMessage(`Fine-tune on ${path.basename(folder)}?`, { modal: true, detail }, 'Start Training');
    if (go !== 'Start Training') return;
    void maybeGitignore(); // a question on the side: the run does not wait for it
    await vscode.commands.executeCommand('lorakit.panel.focus');
    await c.start(settings);
  }

  async function maybeGitignore(): Promise<void> {
    if (!root || isGitIgnored(root) || ctx.workspaceState.get('lorakit.askedGitignore')) return;
    await ctx.workspaceState.update('lorakit.askedGitignore', true);
    const a = await vscode.window.showInformationMessage('lorakit keeps runs and adapters in .lorakit/. Add it to .gitignore?', 'Add', 'Not Now');
    if (a === 'Add') addToGitignore(root);
  }

  async function pickAdapter(title: string): Promise<string | undefined> {
    const list = root ? listAdapters(root) : [];
    if (!list.length) return void vscode.window.showInformationMessage('lorakit: this project has no trained adapters yet');
    const p = await vscode.window.showQuickPick(
      list.map((a) => ({ label: `${a.active ? '$(check) ' : ''}${a.run}`, description: a.finalLoss !== undefined ? `loss ${a.finalLoss.toFixed(3)}` : '', detail: a.dir, dir: a.dir })),
      { title },
    );
    return p?.dir;
  }

  async function adapterAction(action: 'merge' | 'activate' | 'compare' | 'reveal', dir?: string): Promise<void> {
    if (!root) return;
    if (action === 'compare') dir ??= activeAdapter(root) ?? undefined; // the project's active adapter first
    dir ??= await pickAdapter({ merge: 'Merge which adapter?', activate: 'Activate which adapter for this project?', compare: 'Compare which adapter?', reveal: 'Reveal which adapter?' }[action]);
    if (!dir) return;
    if (action === 'reveal') return void vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(dir));
    if (action === 'activate') {
      setActiveAdapter(root, dir);
      adaptersView.refresh();
      panel.post({ type: 'adapters', adapters: listAdapters(root) });
      return void vscode.window.showInformationMessage(`lorakit: ${path.basename(path.dirname(dir))} is the active adapter for this project`);
    }
    const model = await chooseModel();
    if (!model) return;
    if (action === 'merge') {
      if (!vscode.workspace.isTrusted) return void vscode.window.showErrorMessage('lorakit: merging runs only in a trusted workspace.');
      const target = await vscode.window.showSaveDialog({ defaultUri: vscode.Uri.file(mergedDir(root, dir)), saveLabel: 'Write merged model here' });
      if (!target) return;
      const r = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'lorakit: merging…' }, () =>
        client.request('merge', { model, adapter: dir!, out: target.fsPath }),
      ).then(undefined, (e: Error) => void vscode.window.showErrorMessage(`lorakit: ${e.message}`));
      if (r) void vscode.window.showInformationMessage(`lorakit: merged ${r.mergedModules} weights into ${r.out} (from the ${r.kind} weights of ${r.mergedInto})`);
      return;
    }
    const prompt = await vscode.window.showInputBox({ prompt: 'Prompt to complete with the base model and with the adapter', value: 'def ' });
    if (prompt === undefined) return;
    const both = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'lorakit: generating…' }, () =>
      Promise.all([client.request('generate', { model, prompt, maxNewTokens: 48 }), client.request('generate', { model, adapter: dir, prompt, maxNewTokens: 48 })]),
    ).then(undefined, (e: Error) => void vscode.window.showErrorMessage(`lorakit: ${e.message}`));
    if (!both) return;
    const doc = await vscode.workspace.openTextDocument({
      language: 'markdown',
      content: `# Base vs adapter\n\nPrompt: \`${prompt}\`\n\n## Base model\n\n\`\`\`\n${prompt}${both[0].text}\n\`\`\`\n\n## With ${path.basename(path.dirname(dir))}\n\n\`\`\`\n${prompt}${both[1].text}\n\`\`\`\n`,
    });
    await vscode.window.showTextDocument(doc, { preview: true });
  }

  ctx.subscriptions.push(
    out, bar,
    vscode.window.registerWebviewViewProvider('lorakit.panel', panel, { webviewOptions: { retainContextWhenHidden: false } }),
    vscode.window.registerTreeDataProvider('lorakit.adapters', adaptersView),
    vscode.commands.registerCommand('lorakit.openPanel', () => vscode.commands.executeCommand('lorakit.panel.focus')),
    vscode.commands.registerCommand('lorakit.fineTuneFolder', (uri?: vscode.Uri) => fineTuneFolder(uri)),
    vscode.commands.registerCommand('lorakit.fineTuneThisFolder', (uri?: vscode.Uri) => fineTuneFolder(uri)),
    vscode.commands.registerCommand('lorakit.stopTraining', () => c.stop()),
    vscode.commands.registerCommand('lorakit.pauseTraining', () => c.pause()),
    vscode.commands.registerCommand('lorakit.resumeTraining', () => c.resume()),
    vscode.commands.registerCommand('lorakit.estimateMemory', async () => {
      const model = await chooseModel();
      if (!model) return;
      const r = await client.request('estimate', { settings: { ...DEFAULT_SETTINGS, ...ui.defaults(), model, data: root ?? model } as TrainSettings });
      void vscode.window.showInformationMessage(
        `lorakit: ${formatBytes(r.bytes.total)} (weights ${formatBytes(r.bytes.weights)}, activations ${formatBytes(r.bytes.activations)}) of ${formatBytes(r.device.bytes)}: ${r.fits ? 'fits' : 'does NOT fit'}`,
      );
    }),
    vscode.commands.registerCommand('lorakit.chooseBaseModel', () => chooseModel(true)),
    vscode.commands.registerCommand('lorakit.mergeAdapter', (item?: { dir?: string }) => adapterAction('merge', item?.dir)),
    vscode.commands.registerCommand('lorakit.activateAdapter', (item?: { dir?: string }) => adapterAction('activate', item?.dir)),
    vscode.commands.registerCommand('lorakit.compareAdapter', (item?: { dir?: string }) => adapterAction('compare', item?.dir)),
    vscode.commands.registerCommand('lorakit.revealAdapter', (item?: { dir?: string }) => adapterAction('reveal', item?.dir)),
    vscode.commands.registerCommand('lorakit.showLogs', () => out.show()),
    vscode.workspace.onDidGrantWorkspaceTrust(() => panel.post(c.initMessage(device))),
    { dispose: () => client.stop() },
  );
  void hello();
  if (root && activeAdapter(root)) out.info(`active adapter: ${activeAdapter(root)}`);
}

export function deactivate(): void {
  controller?.client.stop();
  controller = undefined;
}
