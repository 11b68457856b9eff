/** LoRA: Compare Base vs Adapter — the same prompt completed by both, in a read-only document. */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { compareText } from '../compareText';
import type { Ext } from '../ext';
import { chooseModel } from './chooseModel';

export async function compare(ext: Ext, dir: string): Promise<void> {
  const model = await chooseModel(ext);
  if (!model) return;
  const prompt = await vscode.window.showInputBox({ prompt: 'Prompt to complete with the base model and with the adapter', value: 'def ' });
  if (prompt === undefined) return;
  const both = await vscode.window
    .withProgress({ location: vscode.ProgressLocation.Notification, title: 'lorakit: generating…' }, () =>
      Promise.all([
        ext.client.request('generate', { model, prompt, maxNewTokens: 48 }),
        ext.client.request('generate', { model, adapter: dir, prompt, maxNewTokens: 48 }),
      ]),
    )
    .then(undefined, (e: Error) => void vscode.window.showErrorMessage(`lorakit: ${e.message}`));
  if (!both) return;
  const name = ext.controller.adapters().find((a) => a.dir === dir)?.name ?? path.basename(path.dirname(dir));
  const uri = ext.compareDocs.add(`Base vs ${name}`, compareText(prompt, both[0].text, both[1].text, name));
  const doc = await vscode.workspace.openTextDocument(uri);
  await vscode.window.showTextDocument(doc, { preview: true });
}
