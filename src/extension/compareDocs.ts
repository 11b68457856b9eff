/**
 * Read-only documents for Compare: `lorakit-compare:` URIs whose text the extension provides, so the editor opens
 * them like a preview (nothing to save, no "Untitled" left dirty).
 */
import * as vscode from 'vscode';

export class CompareDocs implements vscode.TextDocumentContentProvider {
  static readonly scheme = 'lorakit-compare';
  private docs = new Map<string, string>();
  private n = 0;

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.docs.get(uri.path) ?? '';
  }

  /** a new read-only markdown document with this title and text */
  add(title: string, text: string): vscode.Uri {
    const p = `/${++this.n}/${title.replace(/[\\/:*?"<>|#]+/g, '-')}.md`;
    this.docs.set(p, text);
    return vscode.Uri.from({ scheme: CompareDocs.scheme, path: p });
  }
}
