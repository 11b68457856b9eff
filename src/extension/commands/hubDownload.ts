/**
 * "Download from Hugging Face…": an id box with a few small models lorakit supports, the plan (size and training
 * memory) before the weights, then the download in the sidecar under a progress notification with Cancel.
 */
import * as vscode from 'vscode';
import { formatBytes, formatDuration } from '../../protocol/format';
import type { Ext } from '../ext';

export const SUGGESTED = [
  { id: 'HuggingFaceTB/SmolLM2-135M', about: 'llama, 135M parameters, 270 MB' },
  { id: 'Qwen/Qwen2.5-0.5B', about: 'qwen2, 0.5B parameters, 990 MB' },
  { id: 'Qwen/Qwen3-0.6B', about: 'qwen3, 0.6B parameters, 1.5 GB' },
  { id: 'HuggingFaceTB/SmolLM2-360M-Instruct', about: 'llama, 360M parameters, 720 MB' },
];
const HUB_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*(@[A-Za-z0-9._/-]+)?$/;

/** the id typed or picked, or undefined when dismissed */
export async function askHubId(): Promise<string | undefined> {
  const qp = vscode.window.createQuickPick<vscode.QuickPickItem & { id: string }>();
  qp.title = 'Download from Hugging Face';
  qp.placeholder = 'ORG/NAME[@REVISION] — or pick a small model lorakit supports';
  const suggested = SUGGESTED.map((s) => ({ label: s.id, description: s.about, id: s.id }));
  qp.items = suggested;
  qp.onDidChangeValue((v) => {
    const typed = v.trim();
    const known = suggested.some((s) => s.id === typed);
    qp.items =
      typed && !known
        ? [
            { label: typed, description: HUB_ID.test(typed) ? 'download this model' : 'not an id: ORG/NAME[@REVISION]', id: typed },
            ...suggested,
          ]
        : suggested;
  });
  const id = await new Promise<string | undefined>((resolve) => {
    qp.onDidAccept(() => resolve(qp.selectedItems[0]?.id ?? qp.value.trim()));
    qp.onDidHide(() => resolve(undefined));
    qp.show();
  });
  qp.dispose();
  if (id && !HUB_ID.test(id)) {
    void vscode.window.showErrorMessage(`lorakit: "${id}" is not a Hugging Face model id (ORG/NAME, optionally @REVISION)`);
    return undefined;
  }
  return id || undefined;
}

/** download `id` (asked for when not given) into the HF cache; the snapshot folder, or undefined */
export async function downloadFromHub(ext: Ext, given?: string): Promise<string | undefined> {
  const id = given ?? (await askHubId());
  if (!id) return undefined;
  const fail = (e: Error) => void vscode.window.showErrorMessage(`lorakit: ${e.message}`);
  const checked = await vscode.window
    .withProgress({ location: vscode.ProgressLocation.Notification, title: `Checking ${id} on Hugging Face…` }, () =>
      ext.client.request('hub/pull', { id, planOnly: true }),
    )
    .then(undefined, fail);
  if (!checked?.plan) return undefined;
  const p = checked.plan;
  if (p.downloadBytes > 0) {
    const go = await vscode.window.showInformationMessage(
      `Download ${id}? ${p.modelType}, ${p.files} files, ${formatBytes(p.downloadBytes)} to download.`,
      {
        modal: true,
        detail: `Training it with the default settings needs about ${formatBytes(p.trainBytes)} (${p.fits ? 'fits' : 'does NOT fit'} in ${p.device.name}, ${formatBytes(p.device.bytes)}).`,
      },
      'Download',
    );
    if (go !== 'Download') return undefined;
  }
  const r = await vscode.window
    .withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Downloading ${id}`, cancellable: true },
      async (progress, token) => {
        token.onCancellationRequested(() => void ext.client.request('hub/cancel', {}).catch(() => undefined));
        let shown = 0;
        ext.controller.hubProgress = (g) => {
          const pct = g.total > 0 ? (100 * g.done) / g.total : 0;
          progress.report({
            increment: pct - shown,
            message: `${g.file}: ${formatBytes(g.done)} of ${formatBytes(g.total)}, ${formatBytes(g.bytesPerS)}/s, ETA ${formatDuration(g.etaS)}`,
          });
          shown = pct;
        };
        try {
          return await ext.client.request('hub/pull', { id });
        } finally {
          ext.controller.hubProgress = null;
        }
      },
    )
    .then(undefined, fail);
  if (!r) return undefined;
  if (r.cancelled) {
    void vscode.window.showInformationMessage(
      `lorakit: download of ${id} cancelled; the partial file is kept, and the next download resumes it`,
    );
    return undefined;
  }
  ext.out.info(`downloaded ${id} (${formatBytes(r.downloadedBytes)}) → ${r.dir}`);
  void vscode.window.showInformationMessage(`lorakit: ${id} is in the Hugging Face cache (${formatBytes(r.downloadedBytes)} downloaded)`);
  return r.dir;
}
