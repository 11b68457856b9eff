/** LoRA: Choose Base Model… — and the model every other command uses (lorakit.baseModel, else one picked). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { cfg, resolveIn } from '../config';
import type { Ext } from '../ext';

/** the model to use: the lorakit.baseModel setting, else one picked (and saved to the setting) */
export async function chooseModel(ext: Ext, force = false): Promise<string | undefined> {
  const set = cfg().get<string>('baseModel');
  if (set && !force) return resolveIn(ext.root, set);
  const picked = await pickModel(ext);
  // saving it fires onDidChangeConfiguration: the Controller and the open panel take the new model from there
  if (picked) await cfg().update('baseModel', picked, vscode.ConfigurationTarget.Workspace);
  return picked;
}

/** one of the models folder's models, or a folder browsed to */
export async function pickModel(ext: Ext): Promise<string | undefined> {
  const browse = async () =>
    (await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Use as base model' }))?.[0]?.fsPath;
  const models = modelsIn(ext.root, cfg().get<string>('modelsFolder'));
  if (!models.length) return browse();
  const items = [
    ...models.map((m) => ({ label: path.basename(m), detail: m, dir: m })),
    { label: '$(folder-opened) Browse…', detail: '', dir: '' },
  ];
  const p = await vscode.window.showQuickPick(items, { title: 'Choose the base model' });
  if (!p) return undefined;
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
