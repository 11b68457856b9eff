/**
 * The training panel's host: a webview view whose page is dist/webview/panel.js (no inline script, CSP with a
 * nonce, resources only from dist/webview). Messages from it go to the Controller, which validates them.
 */
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import type { ToPanel } from '../protocol';

export class PanelProvider implements vscode.WebviewViewProvider {
  private view: vscode.WebviewView | undefined;

  constructor(private extensionUri: vscode.Uri, private onMessage: (m: unknown) => void, private log: (line: string) => void) {}

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    const media = vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview');
    view.webview.options = { enableScripts: true, localResourceRoots: [media] };
    view.webview.html = panelHtml(view.webview.asWebviewUri(vscode.Uri.joinPath(media, 'panel.js')).toString(), view.webview.asWebviewUri(vscode.Uri.joinPath(media, 'panel.css')).toString(), view.webview.cspSource);
    view.webview.onDidReceiveMessage((m) => this.onMessage(m));
    view.onDidDispose(() => (this.view = undefined));
  }

  post(m: ToPanel): void {
    this.view?.webview.postMessage(m).then(undefined, (e: Error) => this.log(`panel post failed: ${e.message}`));
  }
}

export function panelHtml(script: string, style: string, cspSource: string): string {
  const nonce = randomBytes(16).toString('base64');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src ${cspSource} 'unsafe-inline'; font-src ${cspSource}; img-src ${cspSource} data:; script-src 'nonce-${nonce}';">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${style}">
<title>LoRA Training</title>
</head>
<body>
<div id="app"></div>
<script nonce="${nonce}" src="${script}"></script>
</body>
</html>`;
}
