/**
 * LoRA: Serve Active Adapter… — the sidecar serves the project's active adapter (or one picked when none is) over
 * HTTP, OpenAI- and Ollama-compatible, from the session that inline completions use; the URL is copied at once
 * and shown with Copy URL. LoRA: Stop Serving — and deactivating the extension — stops it.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { cfg } from '../config';
import type { Ext } from '../ext';
import { activeAdapter } from '../project';
import { chooseModel } from './chooseModel';
import { pickAdapter } from './pickAdapter';

/** true once the clipboard has the URL (false when it refuses, or does not answer within a second) */
const copy = (url: string): Promise<boolean> =>
  Promise.race([
    Promise.resolve(vscode.env.clipboard.writeText(url)).then(
      () => true,
      () => false,
    ),
    new Promise<boolean>((r) => setTimeout(() => r(false), 1000)),
  ]);

export async function serveActiveAdapter(ext: Ext): Promise<void> {
  if (!ext.root) return void vscode.window.showErrorMessage('lorakit: open a folder first: the active adapter is the project’s');
  if (ext.controller.untrusted('generate')) return;
  const model = await chooseModel(ext);
  if (!model) return;
  const dir = activeAdapter(ext.root) ?? (await pickAdapter(ext, 'Serve which adapter? (none is active for this project)'));
  if (!dir) return;
  const name = ext.controller.adapters().find((a) => a.dir === dir)?.name ?? path.basename(path.dirname(dir));
  const port = cfg().get<number>('serve.port') ?? 8000;
  const r = await vscode.window
    .withProgress({ location: vscode.ProgressLocation.Notification, title: `lorakit: starting to serve “${name}”…` }, () =>
      ext.client.request('serve/start', { model, adapter: dir, name, port }),
    )
    .then(undefined, (e: Error) => void vscode.window.showErrorMessage(`lorakit: ${e.message}`));
  if (!r) return;
  ext.serving.set(r);
  ext.out.info(`serving ${dir} as "${r.adapter}" and ${model} as "${r.modelId}" at ${r.url}`);
  const copied = await copy(r.url);
  const pick = await vscode.window.showInformationMessage(
    `lorakit: serving “${name}” at ${r.url}${copied ? ' (copied)' : ''}. OpenAI clients: base URL ${r.url}/v1, model "${r.adapter}"; Ollama clients: host ${r.url}.`,
    'Copy URL',
    'Stop Serving',
  );
  if (pick === 'Copy URL') await copy(r.url);
  else if (pick === 'Stop Serving') await stopServing(ext);
}

export async function stopServing(ext: Ext): Promise<void> {
  if (!ext.client.alive) return ext.serving.set(null);
  const r = await ext.client
    .request('serve/stop', {})
    .then(undefined, (e: Error) => void vscode.window.showErrorMessage(`lorakit: ${e.message}`));
  if (!r) return;
  ext.serving.set(null);
  void vscode.window.showInformationMessage(r.stopped ? 'lorakit: stopped serving' : 'lorakit: nothing was being served');
}
