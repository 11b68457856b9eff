/** LoRA: Compare Base vs Adapter — the Compare panel for this adapter (comparePanel.ts). */
import * as path from 'node:path';
import { ComparePanel } from '../comparePanel';
import type { Ext } from '../ext';
import { chooseModel } from './chooseModel';

export async function compare(ext: Ext, dir: string): Promise<void> {
  const model = await chooseModel(ext);
  if (!model) return;
  const name = ext.controller.adapters().find((a) => a.dir === dir)?.name ?? path.basename(path.dirname(dir));
  ComparePanel.show(ext, { model, adapter: dir, name });
}
