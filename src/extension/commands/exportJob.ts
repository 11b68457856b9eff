/**
 * LoRA: Export Training Job… — the panel's current run settings as a training job for transformers + PEFT on a
 * cluster (what `lorakit export job --target hf` writes), in .lorakit/jobs/<time>/, with Reveal and Open README.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Ext } from '../ext';
import { newJobDir } from '../project';
import { chooseModel } from './chooseModel';
import { reveal } from './reveal';

export async function exportJob(ext: Ext): Promise<void> {
  if (!ext.root) return void vscode.window.showErrorMessage('lorakit: open a folder first: the job is written into its .lorakit/jobs/');
  if (ext.controller.untrusted('export')) return;
  const model = await chooseModel(ext);
  if (!model) return;
  const settings = ext.controller.runSettingsFor(model, ext.controller.settings.data ?? ext.root);
  const out = newJobDir(ext.root);
  const r = await vscode.window
    .withProgress({ location: vscode.ProgressLocation.Notification, title: 'lorakit: exporting the training job…' }, () =>
      ext.client.request('export/job', { settings, out }),
    )
    .then(undefined, (e: Error) => void vscode.window.showErrorMessage(`lorakit: ${e.message}`));
  if (!r) return;
  for (const w of r.warnings) ext.out.warn(w);
  ext.out.info(`training job written to ${r.out}: ${r.trainWindows} training and ${r.evalWindows} eval windows, ${r.totalSteps} steps`);
  const pick = await vscode.window.showInformationMessage(
    `lorakit: training job written to ${r.out} (${r.totalSteps} steps${r.warnings.length ? `; ${r.warnings.join('; ')}` : ''})`,
    'Reveal',
    'Open README',
  );
  if (pick === 'Reveal') await reveal(ext, r.out);
  else if (pick === 'Open README')
    await vscode.commands.executeCommand('markdown.showPreview', vscode.Uri.file(path.join(r.out, 'README.md')));
}
