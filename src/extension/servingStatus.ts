/** While the sidecar serves an adapter over HTTP: a status-bar item with its URL; a click stops serving. */
import * as vscode from 'vscode';
import type { Result } from '../protocol';

export class ServingStatus implements vscode.Disposable {
  private readonly bar = vscode.window.createStatusBarItem('lorakit.serving', vscode.StatusBarAlignment.Right, 99);
  /** what is served, while it is */
  current: Result<'serve/start'> | null = null;

  constructor() {
    this.bar.name = 'lorakit serving';
    this.bar.command = 'lorakit.stopServing';
  }

  set(s: Result<'serve/start'> | null): void {
    this.current = s;
    if (!s) return this.bar.hide();
    this.bar.text = `$(broadcast) serving ${s.adapter ?? s.modelId}`;
    this.bar.tooltip = `lorakit serves at ${s.url} (OpenAI: ${s.url}/v1, model "${s.adapter ?? s.modelId}")\nclick to stop serving`;
    this.bar.show();
  }

  dispose(): void {
    this.bar.dispose();
  }
}
