/**
 * LoRA: Export Adapter for llama.cpp / Ollama… — the base model and the adapter as GGUF files with an Ollama
 * Modelfile, in .lorakit/gguf/<run>/; the work runs in the sidecar under a progress notification, and the result
 * says where the files are and how to make an Ollama model of them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Ext } from '../ext';
import { chooseModel } from './chooseModel';
import { reveal } from './reveal';

const TYPES = [
  { label: 'f16', detail: 'half precision: as the model is, for most models (default)' },
  { label: 'q8_0', detail: '8-bit: about half the size of f16, nearly the same outputs' },
  { label: 'q4_0', detail: '4-bit: the smallest, with some loss' },
  { label: 'bf16', detail: 'bfloat16' },
  { label: 'f32', detail: 'full precision: the largest' },
] as const;

export async function exportGguf(ext: Ext, dir: string): Promise<void> {
  if (!ext.root) return;
  const model = await chooseModel(ext);
  if (!model) return;
  const type = await vscode.window.showQuickPick([...TYPES], { title: 'GGUF type of the base model (the adapter is written in F32)' });
  if (!type) return;
  // adapters sit in .lorakit/runs/<run>/adapter: the run names the export
  const base = path.join(ext.root, '.lorakit', 'gguf', path.basename(path.dirname(dir)));
  let outDir = base;
  for (let i = 2; fs.existsSync(outDir); i++) outDir = `${base}-${i}`;
  const r = await vscode.window
    .withProgress({ location: vscode.ProgressLocation.Notification, title: `lorakit: exporting to GGUF (${type.label})…` }, () =>
      ext.client.request('export/gguf', { model, adapter: dir, outDir, type: type.label }),
    )
    .then(undefined, (e: Error) => void vscode.window.showErrorMessage(`lorakit: ${e.message}`));
  if (!r) return;
  ext.out.info(`exported ${dir} with ${model}: ${r.model}, ${r.adapter}, ${r.modelfile}; ${r.ollamaCreate}`);
  if (r.templateNote) ext.out.info(`the Modelfile has no TEMPLATE: ${r.templateNote}`);
  const pick = await vscode.window.showInformationMessage(
    `lorakit: GGUF files and a Modelfile written to ${r.outDir}. For Ollama: ${r.ollamaCreate}`,
    'Reveal',
    'Copy ollama create',
  );
  if (pick === 'Reveal') await reveal(ext, r.modelfile);
  else if (pick === 'Copy ollama create') await vscode.env.clipboard.writeText(r.ollamaCreate);
}
