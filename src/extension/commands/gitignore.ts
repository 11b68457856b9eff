/** Once per workspace, after the first run starts: offer to add .lorakit/ to .gitignore. */
import * as vscode from 'vscode';
import type { Ext } from '../ext';
import { addToGitignore, isGitIgnored } from '../project';

export async function maybeGitignore(ext: Ext): Promise<void> {
  const { root, ctx } = ext;
  if (!root || isGitIgnored(root) || ctx.workspaceState.get('lorakit.askedGitignore')) return;
  await ctx.workspaceState.update('lorakit.askedGitignore', true);
  const a = await vscode.window.showInformationMessage(
    'lorakit keeps runs and adapters in .lorakit/. Add it to .gitignore?',
    'Add',
    'Not Now',
  );
  if (a === 'Add') addToGitignore(root);
}
