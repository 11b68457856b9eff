/** Reveal an adapter or a merged model: in the Explorer (works in the browser too), or in the OS file manager. */
import * as vscode from 'vscode';
import type { Ext } from '../ext';

export async function reveal(ext: Ext, dir: string): Promise<void> {
  const uri = vscode.Uri.file(dir);
  const inWorkspace = !!vscode.workspace.getWorkspaceFolder(uri);
  // revealFileInOS needs a desktop with the files on it; the Explorer works everywhere for files in the workspace
  if (inWorkspace) await vscode.commands.executeCommand('revealInExplorer', uri);
  else await vscode.commands.executeCommand('revealFileInOS', uri);
  ext.out.info(`revealed ${dir}`);
}
