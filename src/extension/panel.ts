/**
 * The training panel's host: a webview view whose page is dist/webview/panel.js (see panelHtml.ts for its CSP).
 * Messages from it go to the Controller, which validates them.
 */
import * as vscode from 'vscode';
import type { ToPanel } from '../protocol';
import { panelHtml } from './panelHtml';

export class PanelProvider implements vscode.WebviewViewProvider {
  private view: vscode.WebviewView | undefined;

  constructor(
    private extensionUri: vscode.Uri,
    private onMessage: (m: unknown) => void,
    private log: (line: string) => void,
  ) {}

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    const media = vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview');
    view.webview.options = { enableScripts: true, localResourceRoots: [media] };
    const uri = (f: string) => view.webview.asWebviewUri(vscode.Uri.joinPath(media, f)).toString();
    view.webview.html = panelHtml(uri('panel.js'), uri('panel.css'), view.webview.cspSource);
    const sub = view.webview.onDidReceiveMessage((m) => this.onMessage(m));
    view.onDidDispose(() => {
      sub.dispose();
      this.view = undefined;
    });
  }

  post(m: ToPanel): void {
    this.view?.webview.postMessage(m).then(undefined, (e: Error) => this.log(`panel post failed: ${e.message}`));
  }
}
