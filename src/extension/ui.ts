/** The Controller's window on VS Code: the status bar, notifications, the panel, pickers and the views. */
import * as vscode from 'vscode';
import { readConfig } from './config';
import type { Ui } from './controller';
import type { Ext } from './ext';
import { runAdapterAction } from './commands';
import { pickModel } from './commands/chooseModel';

export function makeUi(root: string | null, bar: vscode.StatusBarItem, out: vscode.LogOutputChannel, ext: () => Ext): Ui {
  return {
    post: (m) => ext()?.panel.post(m),
    status: (text, tooltip) => {
      bar.text = text;
      bar.tooltip = tooltip;
    },
    info: (m, ...a) => Promise.resolve(vscode.window.showInformationMessage(m, ...a)),
    error: (m, ...a) => Promise.resolve(vscode.window.showErrorMessage(m, ...a)),
    log: (l) => out.info(l),
    defaults: () => readConfig(root),
    trusted: () => vscode.workspace.isTrusted,
    pick: async (field) => {
      if (field === 'model') return pickModel(ext());
      const uris = await vscode.window.showOpenDialog({
        canSelectFolders: true,
        canSelectFiles: true,
        canSelectMany: false,
        openLabel: 'Train on this',
        defaultUri: root ? vscode.Uri.file(root) : undefined,
      });
      return uris?.[0]?.fsPath;
    },
    adapterAction: (action, dir) => runAdapterAction(ext(), action, dir),
    adaptersChanged: () => {
      ext()?.adaptersView.refresh();
      ext()?.completions.refresh();
    },
  };
}
