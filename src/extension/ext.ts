/** What the commands share: the project folder, the sidecar, the Controller, the views and the log. */
import type * as vscode from 'vscode';
import type { SidecarClient } from './client';
import type { Controller } from './controller';
import type { PanelProvider } from './panel';
import type { AdaptersView } from './adapters';
import type { InlineCompletions } from './completions';
import type { ServingStatus } from './servingStatus';

export interface Ext {
  readonly ctx: vscode.ExtensionContext;
  /** the first workspace folder: runs and adapters live in its .lorakit/ */
  readonly root: string | null;
  readonly out: vscode.LogOutputChannel;
  readonly client: SidecarClient;
  readonly controller: Controller;
  readonly panel: PanelProvider;
  readonly adaptersView: AdaptersView;
  readonly completions: InlineCompletions;
  /** what the sidecar serves over HTTP, if anything */
  readonly serving: ServingStatus;
  /** the sidecar's device, once it said hello */
  device?: { name: string; bytes: number };
}
