/** LoRA: Estimate Memory — the memory the current run settings need, before anything loads. */
import * as vscode from 'vscode';
import { formatBytes } from '../../protocol/format';
import type { Ext } from '../ext';
import { chooseModel } from './chooseModel';

export async function estimateMemory(ext: Ext): Promise<void> {
  const model = await chooseModel(ext);
  if (!model) return;
  const settings = ext.controller.runSettingsFor(model, ext.controller.settings.data ?? ext.root ?? model);
  const r = await ext.client
    .request('estimate', { settings })
    .then(undefined, (e: Error) => void vscode.window.showErrorMessage(`lorakit: ${e.message}`));
  if (!r) return;
  void vscode.window.showInformationMessage(
    `lorakit: ${formatBytes(r.bytes.total)} (weights ${formatBytes(r.bytes.weights)}, activations ${formatBytes(r.bytes.activations)}) of ${formatBytes(r.device.bytes)}: ${r.fits ? 'fits' : 'does NOT fit'}`,
  );
}
