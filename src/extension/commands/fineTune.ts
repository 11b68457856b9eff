/**
 * LoRA: Fine-tune on Folder… and the Explorer's "Fine-tune on this folder": the panel's run settings (rank,
 * quantization, steps, …) with this folder as the data, confirmed with the step count and the expected duration.
 * The panel's form is left as it is.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { confirmDetail } from '../confirm';
import type { Ext } from '../ext';
import { chooseModel } from './chooseModel';
import { maybeGitignore } from './gitignore';

export async function fineTuneFolder(ext: Ext, uri?: vscode.Uri): Promise<void> {
  const c = ext.controller;
  if (c.untrusted('train')) return;
  const folder =
    uri?.fsPath ?? (await vscode.window.showOpenDialog({ canSelectFolders: true, openLabel: 'Fine-tune on this folder' }))?.[0]?.fsPath;
  if (!folder) return;
  const model = await chooseModel(ext);
  if (!model) return;
  const settings = c.runSettingsFor(model, folder);
  const why = c.refuse(settings);
  if (why) return void vscode.window.showErrorMessage(`lorakit: ${why}`);
  // preparation (reading the folder, estimating) under a cancellable progress notification
  const prep = await vscode.window
    .withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'lorakit: preparing', cancellable: true },
      async (progress, token) => {
        progress.report({ message: `reading ${path.basename(folder)}…` });
        const scan = await ext.client.request('data/scan', { path: folder });
        if (token.isCancellationRequested) return null;
        progress.report({ message: 'estimating memory…' });
        const estimate = await ext.client.request('estimate', { settings });
        return token.isCancellationRequested ? null : { scan, estimate };
      },
    )
    .then(undefined, (e: Error) => {
      void vscode.window.showErrorMessage(`lorakit: ${e.message}`);
      return null;
    });
  if (!prep) return;
  const detail = confirmDetail({ settings, ...prep, duration: c.expectedDuration(settings) });
  const go = await vscode.window.showInformationMessage(
    `Fine-tune on ${path.basename(folder)}?`,
    { modal: true, detail },
    'Start Training',
  );
  if (go !== 'Start Training') return;
  void maybeGitignore(ext); // a question on the side: the run does not wait for it
  await vscode.commands.executeCommand('lorakit.panel.focus');
  await c.start(settings);
}
