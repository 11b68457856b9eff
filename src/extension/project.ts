/**
 * A project's lorakit folder, `.lorakit/`: runs (`runs/<time>/`, each a `lorakit train` run folder), the active
 * adapter (`active.json`) and merged models (`merged/`). No `vscode` here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AdapterInfo } from '../protocol';
import { writeJsonAtomic } from '../engine/core/fsx';

export const DIR = '.lorakit';

export const runsDir = (root: string) => path.join(root, DIR, 'runs');
export const newRunDir = (root: string, now = new Date()) => path.join(runsDir(root), now.toISOString().replace(/[:.]/g, '-'));
export const mergedDir = (root: string, adapterDir: string) => path.join(root, DIR, 'merged', path.basename(path.dirname(adapterDir)));

function readJsonOr(file: string): any {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

/** the adapter recorded as active for this project, if it still exists */
export function activeAdapter(root: string): string | null {
  const a = readJsonOr(path.join(root, DIR, 'active.json'))?.adapter;
  if (typeof a !== 'string') return null;
  const abs = path.resolve(root, a);
  return fs.existsSync(path.join(abs, 'adapter_config.json')) ? abs : null;
}

export function setActiveAdapter(root: string, adapterDir: string | null): void {
  const file = path.join(root, DIR, 'active.json');
  if (!adapterDir) return fs.rmSync(file, { force: true });
  writeJsonAtomic(file, { adapter: path.relative(root, adapterDir), activatedAt: new Date().toISOString() });
}

/** finished adapters of the project's runs, newest first */
export function listAdapters(root: string): AdapterInfo[] {
  const dir = runsDir(root);
  if (!fs.existsSync(dir)) return [];
  const active = activeAdapter(root);
  const out: AdapterInfo[] = [];
  for (const run of fs.readdirSync(dir).sort().reverse()) {
    const adapter = path.join(dir, run, 'adapter');
    if (!fs.existsSync(path.join(adapter, 'adapter_config.json'))) continue;
    const info = readJsonOr(path.join(dir, run, 'run.json'));
    const finalLoss = typeof info?.finalEvalLoss === 'number' ? info.finalEvalLoss : typeof info?.finalLoss === 'number' ? info.finalLoss : undefined;
    out.push({ dir: adapter, run, created: info?.started ?? run, active: adapter === active, ...(finalLoss !== undefined ? { finalLoss } : {}) });
  }
  return out;
}

/** the newest run that stopped before finishing and has a checkpoint: what Resume continues */
export function resumableRun(root: string): string | null {
  const dir = runsDir(root);
  if (!fs.existsSync(dir)) return null;
  for (const run of fs.readdirSync(dir).sort().reverse()) {
    const r = path.join(dir, run);
    if (fs.existsSync(path.join(r, 'adapter'))) continue;
    const ck = path.join(r, 'checkpoints');
    if (fs.existsSync(ck) && fs.readdirSync(ck).some((c) => /^step-\d+$/.test(c))) return r;
  }
  return null;
}

/** the settings a run was started with (saved by the extension beside run.json) */
export function runSettings(runDir: string): unknown {
  return readJsonOr(path.join(runDir, 'settings.json'));
}

/** Is `.lorakit/` already ignored by the project's .gitignore? */
export function isGitIgnored(root: string): boolean {
  const gi = path.join(root, '.gitignore');
  if (!fs.existsSync(gi)) return false;
  return fs.readFileSync(gi, 'utf8').split('\n').some((l) => /^\/?\.lorakit\/?\s*$/.test(l.trim()));
}

export function addToGitignore(root: string): void {
  const gi = path.join(root, '.gitignore');
  const text = fs.existsSync(gi) ? fs.readFileSync(gi, 'utf8') : '';
  fs.writeFileSync(gi, text + (text && !text.endsWith('\n') ? '\n' : '') + '.lorakit/\n');
}

/** Is `p` inside `root` (or root itself)? */
export function inside(root: string, p: string): boolean {
  const rel = path.relative(path.resolve(root), path.resolve(p));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}
