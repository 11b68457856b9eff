/**
 * Compare Base vs Adapter: an editor panel (a webview, dist/webview/compare.js, with the training panel's CSP)
 * where one prompt streams from the base and from the adapter into two columns, with a temperature and a Run
 * button. One panel: comparing another adapter retargets it. The runs themselves are compareRuns.ts.
 */
import * as vscode from 'vscode';
import { CompareRuns, CompareTarget } from './compareRuns';
import type { Ext } from './ext';
import { panelHtml } from './panelHtml';

export class ComparePanel {
  private static current: ComparePanel | undefined;
  private readonly panel: vscode.WebviewPanel;
  private readonly runs: CompareRuns;

  /** the panel for `target`: the open one retargeted and shown, or a new one */
  static show(ext: Ext, target: CompareTarget): void {
    const open = ComparePanel.current;
    if (!open) return void (ComparePanel.current = new ComparePanel(ext, target));
    open.panel.title = `Base vs ${target.name}`;
    open.runs.retarget(target);
    open.panel.reveal();
  }

  private constructor(ext: Ext, target: CompareTarget) {
    const media = vscode.Uri.joinPath(ext.ctx.extensionUri, 'dist', 'webview');
    const panel = (this.panel = vscode.window.createWebviewPanel('lorakit.compare', `Base vs ${target.name}`, vscode.ViewColumn.Active, {
      enableScripts: true,
      localResourceRoots: [media],
    }));
    const post = (m: unknown) =>
      void panel.webview.postMessage(m).then(undefined, (e: Error) => ext.out.warn(`compare post failed: ${e.message}`));
    this.runs = new CompareRuns(
      target,
      (p, o) => ext.client.request('complete', p, o),
      post,
      (l) => ext.out.warn(l),
    );
    const uri = (f: string) => panel.webview.asWebviewUri(vscode.Uri.joinPath(media, f)).toString();
    panel.webview.html = panelHtml(uri('compare.js'), uri('compare.css'), panel.webview.cspSource, 'LoRA Compare');
    const sub = panel.webview.onDidReceiveMessage((m) => void this.runs.receive(m));
    panel.onDidDispose(() => {
      sub.dispose();
      this.runs.stop();
      ComparePanel.current = undefined;
    });
  }
}
