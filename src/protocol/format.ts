import type { AdapterInfo } from './index';

/**
 * Human-readable sizes, durations, counts and names, shared by the extension and the webview (and, later, the
 * CLI). No Node or browser APIs here: it is bundled on both sides.
 */
/** sizes and durations: the engine's own functions (pure, no imports), so the CLI and the panel print alike */
export { formatBytes, formatDuration } from '../engine/core/format';

/** a loss to 4 significant digits: enough to tell two adapters apart ("2.417", "0.08831") */
export function formatLoss(x: number): string {
  return Number.isFinite(x) ? String(Number(x.toPrecision(4))) : String(x);
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** a skip reason (as data/scan reports it) as a noun phrase for `n` of them */
function skipPhrase(reason: string, n: number): string {
  if (reason === 'binary file type' || reason.startsWith('binary')) return plural(n, 'binary file');
  if (reason === 'ignored folder') return plural(n, 'ignored folder');
  if (reason === 'matched .gitignore') return `${plural(n, 'path')} in .gitignore`;
  if (reason.startsWith('generated file')) return plural(n, 'generated file');
  if (reason.startsWith('too large')) return plural(n, 'file') + ' too large';
  if (reason === 'empty') return plural(n, 'empty file');
  if (reason.startsWith('symbolic link')) return plural(n, 'symbolic link');
  if (reason === 'not UTF-8 text') return plural(n, 'non-UTF-8 file');
  return `${n} × ${reason}`;
}

/**
 * What a folder scan skipped, from its counts by reason: "" (nothing), "skipped 1 binary file",
 * "5 skipped: 3 binary files, 2 paths in .gitignore".
 */
export function formatSkipped(skipped: Record<string, number>): string {
  const by = new Map<string, number>();
  for (const [reason, n] of Object.entries(skipped)) {
    if (!(n > 0)) continue;
    const key = reason.replace(/ \(.*\)$/, '') === 'too large' ? 'too large' : reason;
    by.set(key, (by.get(key) ?? 0) + n);
  }
  const parts = [...by].map(([r, n]) => skipPhrase(r, n));
  if (parts.length === 0) return '';
  if (parts.length === 1) return `skipped ${parts[0]}`;
  const total = [...by.values()].reduce((a, b) => a + b, 0);
  return `${total} skipped: ${parts.join(', ')}`;
}

/** "cpu (system memory)" → "cpu, system memory": a device name that can sit inside parentheses or after a dash */
export function deviceLabel(name: string): string {
  return name.replace(/\s*\(([^()]*)\)\s*$/, ', $1');
}

/**
 * How an adapter is labelled in the Adapters view, the quick picks and the panel. label: its name; description:
 * "active" first (so it is never the part cut off), then the rank, the steps and the final losses.
 */
export function adapterRow(a: AdapterInfo): { label: string; description: string; tooltip: string } {
  const facts = [
    a.rank !== undefined ? `r${a.rank}` : '',
    a.steps !== undefined ? `${a.steps} steps` : '',
    a.trainLoss !== undefined ? `train ${formatLoss(a.trainLoss)}` : '',
    a.evalLoss !== undefined ? `eval ${formatLoss(a.evalLoss)}` : '',
  ].filter(Boolean);
  return {
    label: a.name,
    description: [a.active ? 'active' : '', ...facts].filter(Boolean).join(' · '),
    tooltip: [`${a.name}${a.active ? ' (active for this project)' : ''}`, facts.join(' · '), `trained ${a.created}`, a.dir]
      .filter(Boolean)
      .join('\n'),
  };
}
