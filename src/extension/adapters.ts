/**
 * The adapters view: the project's finished adapters (name, rank, steps, losses; the active one marked) with
 * Activate/Merge/Compare/Rename/Reveal, and under "Merged models" the models merged from them.
 */
import * as vscode from 'vscode';
import type { AdapterInfo, MergedInfo } from '../protocol';
import { adapterRow } from '../protocol/format';

type Node = { kind: 'adapter'; a: AdapterInfo } | { kind: 'mergedGroup'; list: MergedInfo[] } | { kind: 'merged'; m: MergedInfo };

export class AdaptersView implements vscode.TreeDataProvider<Node> {
  private changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;

  constructor(
    private adapters: () => AdapterInfo[],
    private merged: () => MergedInfo[],
  ) {}

  refresh(): void {
    this.changed.fire();
  }

  dispose(): void {
    this.changed.dispose();
  }

  getTreeItem(n: Node): vscode.TreeItem {
    if (n.kind === 'mergedGroup') {
      const g = new vscode.TreeItem('Merged models', vscode.TreeItemCollapsibleState.Expanded);
      g.id = 'lorakit.merged';
      g.iconPath = new vscode.ThemeIcon('merge');
      g.description = String(n.list.length);
      return g;
    }
    if (n.kind === 'merged') {
      const item = new vscode.TreeItem(n.m.name, vscode.TreeItemCollapsibleState.None);
      item.resourceUri = vscode.Uri.file(n.m.dir);
      item.description = 'merged model';
      item.tooltip = n.m.dir;
      item.iconPath = new vscode.ThemeIcon('file-submodule');
      item.contextValue = 'lorakit.merged';
      return item;
    }
    const row = adapterRow(n.a);
    const item = new vscode.TreeItem(row.label, vscode.TreeItemCollapsibleState.None);
    item.description = row.description;
    item.tooltip = row.tooltip;
    item.iconPath = new vscode.ThemeIcon(n.a.active ? 'pass-filled' : 'package');
    item.contextValue = 'lorakit.adapter';
    return item;
  }

  getChildren(n?: Node): Node[] {
    if (n?.kind === 'mergedGroup') return n.list.map((m) => ({ kind: 'merged', m }));
    if (n) return [];
    const merged = this.merged();
    return [
      ...this.adapters().map((a): Node => ({ kind: 'adapter', a })),
      ...(merged.length ? [{ kind: 'mergedGroup', list: merged } as Node] : []),
    ];
  }
}

/** the adapter folder of a view row (commands get the row as their argument), if it is one */
export const adapterDirOf = (item: unknown): string | undefined =>
  item && typeof item === 'object' && (item as Node).kind === 'adapter' ? (item as { a: AdapterInfo }).a.dir : undefined;
