/** A small, strict flag parser: `--name value`, `--name=value`, boolean switches; unknown flags are errors. */

export class UsageError extends Error {}

export interface FlagSpec {
  [name: string]: 'string' | 'number' | 'boolean' | 'list';
}

export type Parsed = Record<string, string | number | boolean | string[] | undefined>;

export function parseFlags(argv: string[], spec: FlagSpec): Parsed {
  const out: Parsed = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new UsageError(`unexpected argument "${a}"`);
    let name = a.slice(2);
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const kind = spec[name];
    if (!kind) {
      const near = closest(name, Object.keys(spec));
      throw new UsageError(`unknown option --${name}${near ? ` (did you mean --${near}?)` : ''}`);
    }
    if (kind === 'boolean') {
      if (value !== undefined && value !== 'true' && value !== 'false') throw new UsageError(`--${name} takes no value`);
      out[name] = value !== 'false';
      continue;
    }
    if (value === undefined) {
      value = argv[++i];
      if (value === undefined || (value.startsWith('--') && kind !== 'number')) throw new UsageError(`--${name} needs a value`);
    }
    if (kind === 'number') {
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} expects a number, got "${value}"`);
      out[name] = n;
    } else if (kind === 'list') {
      out[name] = [...((out[name] as string[]) ?? []), value];
    } else out[name] = value;
  }
  return out;
}

export function need<T>(p: Parsed, name: string): T {
  const v = p[name];
  if (v === undefined) throw new UsageError(`--${name} is required`);
  return v as T;
}

/** the known name nearest to a misspelt one (at most 2 edits, or a transposition), if any */
export function closest(name: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const k of known) {
    const d = editDistance(name, k);
    if (d < bestD) [best, bestD] = [k, d];
  }
  return best;
}

/** Damerau–Levenshtein distance (adjacent transpositions count as one edit) */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.length][b.length];
}

export interface Command {
  help: string;
  /** the help of a subcommand (`lorakit export gguf --help`), when argv names one */
  helpFor?(argv: string[]): string | undefined;
  run(argv: string[]): Promise<void>;
}

export const out = (s: string) => process.stdout.write(s + '\n');
export const err = (s: string) => process.stderr.write(s + '\n');
