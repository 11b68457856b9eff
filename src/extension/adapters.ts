/** The adapters view: the project's finished adapters, the active one marked, with Merge/Activate/Compare/Reveal. */
import * as vscode from 'vscode';
import type { AdapterInfo } from '../protocol';

export class AdaptersView implements vscode.TreeDataProvider<AdapterInfo> {
  private changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;

  constructor(private list: () => AdapterInfo[]) {}

  refresh(): void {
    this.changed.fire();
  }

  getTreeItem(a: AdapterInfo): vscode.TreeItem {
    const item = new vscode.TreeItem(a.run, vscode.TreeItemCollapsibleState.None);
    item.description = [a.active ? 'active' : '', a.finalLoss !== undefined ? `loss ${a.finalLoss.toFixed(3)}` : ''].filter(Boolean).join(' · ');
    item.tooltip = a.dir;
    item.iconPath = new vscode.ThemeIcon(a.active ? 'pass-filled' : 'package');
    item.contextValue = 'lorakit.adapter';
    return item;
  }

  getChildren(): AdapterInfo[] {
    return this.list();
  }
}
