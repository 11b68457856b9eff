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
    if (!kind) throw new UsageError(`unknown option --${name}`);
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
