/**
 * LoRA: Activate Adapter for This Project — recorded in .lorakit/active.json; inline completions switch to it at
 * once (the sidecar loads it beside the base it has open).
 */
import * as vscode from 'vscode';
import type { Ext } from '../ext';
import { setActiveAdapter } from '../project';

export async function activateAdapter(ext: Ext, dir: string): Promise<void> {
  if (!ext.root) return;
  setActiveAdapter(ext.root, dir);
  ext.controller.adaptersChanged();
  ext.completions.activeChanged();
  const name = ext.controller.adapters().find((a) => a.dir === dir)?.name ?? dir;
  void vscode.window.showInformationMessage(`lorakit: “${name}” is the active adapter for this project`);
}
