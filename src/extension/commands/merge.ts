/**
 * LoRA: Merge Adapter… — writes a new model folder in .lorakit/merged/ (created here, so no dialog asks to create
 * it), lists it in the Adapters view and the panel, and says where it is with Reveal and Open Folder.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Ext } from '../ext';
import { mergedDir } from '../project';
import { chooseModel } from './chooseModel';
import { reveal } from './reveal';

export async function merge(ext: Ext, dir: string): Promise<void> {
  if (!ext.root) return;
  const model = await chooseModel(ext);
  if (!model) return;
  const out = mergedDir(ext.root, dir);
  try {
    fs.mkdirSync(path.dirname(out), { recursive: true }); // .lorakit/merged/; the merge itself writes `out`
  } catch (e) {
    return void vscode.window.showErrorMessage(`lorakit: cannot create ${out}: ${(e as Error).message}`);
  }
  const r = await vscode.window
    .withProgress({ location: vscode.ProgressLocation.Notification, title: 'lorakit: merging…' }, () =>
      ext.client.request('merge', { model, adapter: dir, out }),
    )
    .then(undefined, (e: Error) => void vscode.window.showErrorMessage(`lorakit: ${e.message}`));
  if (!r) return;
  ext.out.info(`merged ${r.mergedModules} weights of ${dir} with the ${r.kind} weights of ${r.mergedInto}; written to ${r.out}`);
  ext.controller.adaptersChanged();
  const pick = await vscode.window.showInformationMessage(`lorakit: merged model written to ${r.out}`, 'Reveal', 'Open Folder');
  if (pick === 'Reveal') await reveal(ext, r.out);
  else if (pick === 'Open Folder')
    await vscode.commands.executeCommand('vscode.openFolder', vscode.Uri.file(r.out), { forceNewWindow: true });
}
