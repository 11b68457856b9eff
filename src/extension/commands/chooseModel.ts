/** LoRA: Choose Base Model… — and the model every other command uses (lorakit.baseModel, else one picked). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { cfg, resolveIn } from '../config';
import type { Ext } from '../ext';
import { downloadFromHub } from './hubDownload';

/** the model to use: the lorakit.baseModel setting, else one picked (and saved to the setting) */
export async function chooseModel(ext: Ext, force = false): Promise<string | undefined> {
  const set = cfg().get<string>('baseModel');
  if (set && !force) return resolveIn(ext.root, set);
  const picked = await pickModel(ext);
  // saving it fires onDidChangeConfiguration: the Controller and the open panel take the new model from there
  if (picked) await cfg().update('baseModel', picked, vscode.ConfigurationTarget.Workspace);
  return picked;
}

/** LoRA: Download Base Model from Hugging Face… — the downloaded model becomes the base model */
export async function useDownloaded(ext: Ext, id?: string): Promise<string | undefined> {
  const dir = await downloadFromHub(ext, id);
  if (dir) await cfg().update('baseModel', dir, vscode.ConfigurationTarget.Workspace);
  return dir;
}

/** one of the models folder's models, one in the Hugging Face cache, one downloaded from the Hub, or a folder browsed to */
export async function pickModel(ext: Ext): Promise<string | undefined> {
  const browse = async () =>
    (await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Use as base model' }))?.[0]?.fsPath;
  const models = modelsIn(ext.root, cfg().get<string>('modelsFolder'));
  const cached = await ext.client.request('hub/list', {}).then(
    (r) => r.models,
    (e: Error) => (ext.out.warn(`listing the Hugging Face cache: ${e.message}`), []),
  );
  type Item = vscode.QuickPickItem & { dir?: string; action?: 'browse' | 'download' };
  const sep = (label: string): Item => ({ label, kind: vscode.QuickPickItemKind.Separator });
  const items: Item[] = [
    ...(models.length ? [sep('models folder'), ...models.map((m) => ({ label: path.basename(m), detail: m, dir: m }))] : []),
    ...(cached.length
      ? [sep('Hugging Face cache'), ...cached.map((m) => ({ label: m.id, description: 'HF cache', detail: m.dir, dir: m.dir }))]
      : []),
    sep(''),
    { label: '$(cloud-download) Download from Hugging Face…', action: 'download' },
    { label: '$(folder-opened) Browse…', action: 'browse' },
  ];
  const p = await vscode.window.showQuickPick(items, { title: 'Choose the base model', matchOnDetail: true });
  if (!p) return undefined;
  if (p.action === 'download') return downloadFromHub(ext);
  return p.dir || browse();
}

/** model folders (with config.json) directly inside the configured models folder */
function modelsIn(root: string | null, folder: string | undefined): string[] {
  if (!folder) return [];
  const dir = resolveIn(root, folder);
  try {
    return fs
      .readdirSync(dir)
      .map((d) => path.join(dir, d))
      .filter((d) => fs.existsSync(path.join(d, 'config.json')));
  } catch {
    return [];
  }
}
