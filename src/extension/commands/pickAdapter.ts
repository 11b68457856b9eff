/** A quick pick of the project's adapters, for the commands run from the palette. */
import * as vscode from 'vscode';
import { adapterRow } from '../../protocol/format';
import type { Ext } from '../ext';

export async function pickAdapter(ext: Ext, title: string): Promise<string | undefined> {
  const list = ext.controller.adapters();
  if (!list.length) return void vscode.window.showInformationMessage('lorakit: this project has no trained adapters yet');
  const p = await vscode.window.showQuickPick(
    list.map((a) => {
      const row = adapterRow(a);
      return { label: `${a.active ? '$(check) ' : ''}${row.label}`, description: row.description, detail: a.dir, dir: a.dir };
    }),
    { title },
  );
  return p?.dir;
}
