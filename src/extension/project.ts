/**
 * A project's lorakit folder, `.lorakit/`: runs (`runs/<time>/`, each a `lorakit train` run folder, with the
 * extension's `settings.json` and the user's `name.txt` beside it), the active adapter (`active.json`) and merged
 * models (`merged/`). No `vscode` here.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AdapterInfo, MergedInfo } from '../protocol';
import { writeJsonAtomic } from './jsonFile';

export const DIR = '.lorakit';

export const runsDir = (root: string) => path.join(root, DIR, 'runs');
export const newRunDir = (root: string, now = new Date()) => path.join(runsDir(root), now.toISOString().replace(/[:.]/g, '-'));
/** a new folder for Export Training Job…: `.lorakit/jobs/<time>` */
export const newJobDir = (root: string, now = new Date()) => path.join(root, DIR, 'jobs', now.toISOString().replace(/[:.]/g, '-'));
export const mergedRoot = (root: string) => path.join(root, DIR, 'merged');

/** a new folder name for merging this adapter: `.lorakit/merged/<run>`, or `<run>-2`, … when that is taken */
export function mergedDir(root: string, adapterDir: string): string {
  const base = path.join(mergedRoot(root), path.basename(path.dirname(adapterDir)));
  let out = base;
  for (let i = 2; fs.existsSync(out); i++) out = `${base}-${i}`;
  return out;
}

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

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** "2025-03-04 17:05" in local time, from an ISO time or a run folder's name (2025-03-04T17-05-09-123Z) */
export function shortTime(isoOrRun: string): string {
  const iso = isoOrRun.replace(/^(\d{4}-\d\d-\d\dT\d\d)-(\d\d)-(\d\d)-(\d+)Z$/, '$1:$2:$3.$4Z');
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return isoOrRun;
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

const NAME_FILE = 'name.txt';

/** the name the user gave a run's adapter (Rename), if any */
function givenName(runDir: string): string | undefined {
  try {
    return fs.readFileSync(path.join(runDir, NAME_FILE), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Name a run's adapter (stored in the run folder's name.txt); an empty name goes back to the default. */
export function renameAdapter(adapterDir: string, name: string): void {
  const file = path.join(path.dirname(adapterDir), NAME_FILE);
  const n = name.trim();
  if (!n) return fs.rmSync(file, { force: true });
  fs.writeFileSync(file, n + '\n');
}

/** the reason a new adapter name is refused, or null */
export function badAdapterName(name: string): string | null {
  if (/[\r\n]/.test(name)) return 'the name must be one line';
  if (name.trim().length > 80) return 'the name must be at most 80 characters';
  return null;
}

/** finished adapters of the project's runs, newest first */
export function listAdapters(root: string): AdapterInfo[] {
  const dir = runsDir(root);
  if (!fs.existsSync(dir)) return [];
  const active = activeAdapter(root);
  const out: AdapterInfo[] = [];
  for (const run of fs.readdirSync(dir).sort().reverse()) {
    const runDir = path.join(dir, run);
    const adapter = path.join(runDir, 'adapter');
    if (!fs.existsSync(path.join(adapter, 'adapter_config.json'))) continue;
    const info = readJsonOr(path.join(runDir, 'run.json'));
    const settings = readJsonOr(path.join(runDir, 'settings.json'));
    const created = typeof info?.started === 'string' ? info.started : run;
    const data = typeof settings?.data === 'string' ? path.basename(settings.data) : undefined;
    const trainLoss = num(info?.finalLoss);
    const evalLoss = num(info?.finalEvalLoss);
    const finalLoss = evalLoss ?? trainLoss;
    const fields = {
      rank: num(readJsonOr(path.join(adapter, 'adapter_config.json'))?.r),
      steps: num(info?.steps),
      trainLoss,
      evalLoss,
      finalLoss,
    };
    out.push({
      dir: adapter,
      run,
      name: givenName(runDir) ?? [data, shortTime(created)].filter(Boolean).join(' · '),
      created,
      active: adapter === active,
      ...Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)),
    });
  }
  return out;
}

/** models merged into `.lorakit/merged/`, newest first */
export function listMerged(root: string): MergedInfo[] {
  const dir = mergedRoot(root);
  if (!fs.existsSync(dir)) return [];
  const out: MergedInfo[] = [];
  for (const name of fs.readdirSync(dir)) {
    const d = path.join(dir, name);
    if (!fs.existsSync(path.join(d, 'config.json'))) continue;
    out.push({ dir: d, name, created: fs.statSync(d).mtime.toISOString() });
  }
  return out.sort((a, b) => b.created.localeCompare(a.created));
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
  return fs
    .readFileSync(gi, 'utf8')
    .split('\n')
    .some((l) => /^\/?\.lorakit\/?\s*$/.test(l.trim()));
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
