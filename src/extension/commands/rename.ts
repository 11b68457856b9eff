/** LoRA: Rename Adapter… — the name is kept in the run folder's name.txt; empty goes back to the default. */
import * as vscode from 'vscode';
import type { Ext } from '../ext';
import { badAdapterName, renameAdapter } from '../project';
import { pickAdapter } from './pickAdapter';

export async function rename(ext: Ext, dir?: string): Promise<void> {
  dir ??= await pickAdapter(ext, 'Rename which adapter?');
  if (!dir) return;
  const a = ext.controller.adapters().find((x) => x.dir === dir);
  const name = await vscode.window.showInputBox({
    title: 'Rename the adapter',
    prompt: 'A name for this adapter (empty: the data folder and the time)',
    value: a?.name ?? '',
    validateInput: (v) => badAdapterName(v),
  });
  if (name === undefined) return;
  const why = badAdapterName(name);
  if (why) return void vscode.window.showErrorMessage(`lorakit: ${why}`);
  renameAdapter(dir, name);
  ext.controller.adaptersChanged();
}
