/**
 * Inline completions (ghost text) from the project's active adapter, through the sidecar's generation session,
 * and their status-bar item: the active adapter (or "base") with completions on or off; a click toggles them.
 * When something a completion needs is missing (a trusted workspace, the base model, an active adapter, the
 * model's tokenizer) there is no completion and no popup: the status bar says what is missing, once.
 * The logic is in inlineLogic.ts (no `vscode` there).
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { SidecarClient, SidecarError } from './client';
import { cfg, resolveIn } from './config';
import { InlineSettings, completeAt, completionStatus, languageOn } from './inlineLogic';
import { activeAdapter } from './project';

export function inlineSettings(): InlineSettings {
  const c = cfg();
  const languages = c.get<unknown>('completions.languages');
  return {
    enabled: c.get<boolean>('completions.enabled') ?? true,
    maxTokens: c.get<number>('completions.maxTokens') ?? 64,
    debounceMs: c.get<number>('completions.debounceMs') ?? 200,
    languages: Array.isArray(languages) ? languages.filter((l): l is string => typeof l === 'string') : [],
  };
}

/** the documents completed: the user's files (not output channels, settings, …) */
export const COMPLETED: vscode.DocumentSelector = ['file', 'untitled', 'vscode-remote'].map((scheme) => ({ scheme }));

export class InlineCompletions implements vscode.InlineCompletionItemProvider, vscode.Disposable {
  private readonly bar: vscode.StatusBarItem;
  /** what the last request found missing (a model without a tokenizer, an adapter of another base, …) */
  private failure: string | null = null;
  private logged = new Set<string>();

  constructor(
    private root: string | null,
    private client: SidecarClient,
    private out: vscode.LogOutputChannel,
    private adapterName: (dir: string) => string | undefined,
  ) {
    this.bar = vscode.window.createStatusBarItem('lorakit.completions', vscode.StatusBarAlignment.Right, 100);
    this.bar.name = 'lorakit completions';
    this.bar.command = 'lorakit.toggleCompletions';
    this.refresh();
    this.bar.show();
  }

  /** the model and adapter a completion uses, or why there is none */
  private target(): { model: string; adapter: string } | { why: string } {
    if (!vscode.workspace.isTrusted) return { why: 'Completions run the model: they need a trusted workspace.' };
    const model = cfg().get<string>('baseModel');
    if (!model) return { why: 'No base model: choose one with “LoRA: Choose Base Model…”.' };
    const adapter = this.root ? activeAdapter(this.root) : null;
    if (!adapter) return { why: 'No active adapter: activate one with “LoRA: Activate Adapter for This Project…”.' };
    return { model: resolveIn(this.root, model), adapter };
  }

  /** the settings, the base model or the active adapter changed: the status bar follows */
  refresh(): void {
    this.failure = null;
    this.show();
  }

  /** the active adapter changed: the status bar follows, and the editor's ghost text is asked for again */
  activeChanged(): void {
    this.refresh();
    if (vscode.window.activeTextEditor && inlineSettings().enabled)
      void vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
  }

  private show(): void {
    const t = this.target();
    const dir = this.root ? activeAdapter(this.root) : null;
    const s = completionStatus({
      adapter: dir ? (this.adapterName(dir) ?? path.basename(path.dirname(dir))) : null,
      enabled: inlineSettings().enabled,
      hint: 'why' in t ? t.why : this.failure,
    });
    this.bar.text = s.text;
    this.bar.tooltip = s.tooltip;
  }

  async provideInlineCompletionItems(
    doc: vscode.TextDocument,
    pos: vscode.Position,
    ctx: vscode.InlineCompletionContext,
    token: vscode.CancellationToken,
  ): Promise<vscode.InlineCompletionItem[] | undefined> {
    const s = inlineSettings();
    if (!s.enabled || !languageOn(s.languages, doc.languageId)) return undefined;
    const t = this.target();
    if ('why' in t) return void this.show();
    const ac = new AbortController();
    const sub = token.onCancellationRequested(() => ac.abort());
    if (token.isCancellationRequested) ac.abort();
    try {
      const debounceMs = ctx.triggerKind === vscode.InlineCompletionTriggerKind.Invoke ? 0 : s.debounceMs;
      const text = await completeAt(
        { text: doc.getText(), offset: doc.offsetAt(pos) },
        { ...s, debounceMs },
        t,
        (p, signal) => this.client.request('complete', p, { signal }),
        ac.signal,
      );
      if (this.failure) this.refresh();
      return text ? [new vscode.InlineCompletionItem(text, new vscode.Range(pos, pos))] : undefined;
    } catch (e) {
      this.failed(e as Error);
      return undefined;
    } finally {
      sub.dispose();
    }
  }

  /** a failed request: the status bar says why; the log says it once */
  private failed(e: Error): void {
    const why =
      e instanceof SidecarError && e.code === 'exited' ? 'The lorakit sidecar stopped; the next completion restarts it.' : e.message;
    if (!this.logged.has(why)) {
      this.logged.add(why);
      this.out.warn(`completions: ${why}`);
    }
    this.failure = `Completions failed: ${why}`;
    this.show();
  }

  /** LoRA: Toggle Completions — where the setting is set (folder, workspace, else the user's settings) */
  async toggle(): Promise<void> {
    const i = cfg().inspect<boolean>('completions.enabled');
    const target =
      i?.workspaceFolderValue !== undefined
        ? vscode.ConfigurationTarget.WorkspaceFolder
        : i?.workspaceValue !== undefined
          ? vscode.ConfigurationTarget.Workspace
          : vscode.ConfigurationTarget.Global;
    await cfg().update('completions.enabled', !inlineSettings().enabled, target);
    this.refresh();
  }

  dispose(): void {
    this.bar.dispose();
  }
}
