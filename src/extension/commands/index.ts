/** Every lorakit.* command, registered; each one's work lives in its own file beside this one. */
import * as vscode from 'vscode';
import { adapterDirOf } from '../adapters';
import type { AdapterAction } from '../controller';
import type { Ext } from '../ext';
import { activateAdapter } from './activate';
import { chooseModel, useDownloaded } from './chooseModel';
import { compare } from './compare';
import { estimateMemory } from './estimate';
import { exportJob } from './exportJob';
import { exportGguf } from './exportGguf';
import { fineTuneFolder } from './fineTune';
import { merge } from './merge';
import { pickAdapter } from './pickAdapter';
import { rename } from './rename';
import { reveal } from './reveal';
import { serveActiveAdapter, stopServing } from './serve';
import { activeAdapter } from '../project';

const TITLES: Record<AdapterAction, string> = {
  merge: 'Merge which adapter?',
  activate: 'Activate which adapter for this project?',
  compare: 'Compare which adapter?',
  reveal: 'Reveal which adapter?',
  export: 'Export which adapter for llama.cpp / Ollama?',
};

/** an adapter action, once the Controller has checked the workspace trust: the adapter given, else one picked */
export async function runAdapterAction(ext: Ext, action: AdapterAction, dir?: string): Promise<void> {
  if (!ext.root) return;
  if (action === 'compare') dir ??= activeAdapter(ext.root) ?? undefined; // the project's active adapter first
  dir ??= await pickAdapter(ext, TITLES[action]);
  if (!dir) return;
  const run = { merge, activate: activateAdapter, compare, reveal, export: exportGguf }[action];
  await run(ext, dir);
}

export function registerCommands(ext: Ext): vscode.Disposable[] {
  const c = ext.controller;
  const cmd = (id: string, f: (...args: any[]) => unknown) => vscode.commands.registerCommand(id, f);
  const onAdapter = (action: AdapterAction) => (item?: unknown) =>
    c.adapterAction(action, adapterDirOf(item) ?? (item as { dir?: string } | undefined)?.dir);
  return [
    cmd('lorakit.openPanel', () => vscode.commands.executeCommand('lorakit.panel.focus')),
    cmd('lorakit.fineTuneFolder', (uri?: vscode.Uri) => fineTuneFolder(ext, uri)),
    cmd('lorakit.fineTuneThisFolder', (uri?: vscode.Uri) => fineTuneFolder(ext, uri)),
    cmd('lorakit.stopTraining', () => c.stop()),
    cmd('lorakit.pauseTraining', () => c.pause()),
    cmd('lorakit.resumeTraining', () => c.resume()),
    cmd('lorakit.estimateMemory', () => estimateMemory(ext)),
    cmd('lorakit.chooseBaseModel', () => chooseModel(ext, true)),
    cmd('lorakit.downloadModel', (id?: string) => useDownloaded(ext, typeof id === 'string' ? id : undefined)),
    cmd('lorakit.mergeAdapter', onAdapter('merge')),
    cmd('lorakit.activateAdapter', onAdapter('activate')),
    cmd('lorakit.compareAdapter', onAdapter('compare')),
    cmd('lorakit.revealAdapter', onAdapter('reveal')),
    cmd('lorakit.exportAdapterGguf', onAdapter('export')),
    cmd('lorakit.renameAdapter', (item?: unknown) => rename(ext, adapterDirOf(item))),
    cmd('lorakit.revealMerged', (item?: { m?: { dir: string } }) => item?.m && reveal(ext, item.m.dir)),
    cmd('lorakit.showLogs', () => ext.out.show()),
    cmd('lorakit.exportJob', () => exportJob(ext)),
    cmd('lorakit.toggleCompletions', () => ext.completions.toggle()),
    cmd('lorakit.serveActiveAdapter', () => serveActiveAdapter(ext)),
    cmd('lorakit.stopServing', () => stopServing(ext)),
  ];
}
