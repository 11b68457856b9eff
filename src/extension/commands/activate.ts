/** LoRA: Activate Adapter for This Project — recorded in .lorakit/active.json. */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Ext } from '../ext';
import { setActiveAdapter } from '../project';

export async function activateAdapter(ext: Ext, dir: string): Promise<void> {
  if (!ext.root) return;
  setActiveAdapter(ext.root, dir);
  ext.controller.adaptersChanged();
  void vscode.window.showInformationMessage(`lorakit: ${path.basename(path.dirname(dir))} is the active adapter for this project`);
}
