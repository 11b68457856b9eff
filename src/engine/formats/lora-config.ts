/** LoRA configuration with PEFT's semantics, and which modules of a model it targets. */
import { ConfigError, UserError } from '../core/errors';
import type { ModelSpec } from './config';
import { LINEAR_NAMES, linearShape, modulePath } from './structure';

export interface LoraConfig {
  r: number;
  alpha: number;
  dropout: number;
  /** short module names, a regex matched against full module paths, or 'all-linear' */
  targetModules: string[] | string;
  useRslora: boolean;
  /** PEFT's per-module overrides: regex key → rank / alpha */
  rankPattern?: Record<string, number>;
  alphaPattern?: Record<string, number>;
  baseModel?: string;
}

export function defaultLoraConfig(over: Partial<LoraConfig> = {}): LoraConfig {
  return { r: 8, alpha: 16, dropout: 0.05, targetModules: 'all-linear', useRslora: false, ...over };
}

export function validateLoraConfig(c: LoraConfig, file?: string): void {
  if (!Number.isInteger(c.r) || c.r <= 0) throw new UserError(`rank must be a positive integer, got ${c.r}`, file);
  if (!Number.isFinite(c.alpha) || c.alpha <= 0) throw new UserError(`lora alpha must be positive, got ${c.alpha}`, file);
  if (!(c.dropout >= 0 && c.dropout < 1)) throw new UserError(`lora dropout must be in [0, 1), got ${c.dropout}`, file);
  if (Array.isArray(c.targetModules) && c.targetModules.length === 0) throw new UserError('target modules list is empty', file);
}

/** alpha/r, or alpha/√r with rsLoRA */
export function loraScale(alpha: number, r: number, rslora: boolean): number {
  return rslora ? alpha / Math.sqrt(r) : alpha / r;
}

/** PEFT's rule: a pattern key matches when the module path ends with it (`(.*\.)?key$`). */
function patternValue(pattern: Record<string, number> | undefined, path: string): number | undefined {
  if (!pattern) return undefined;
  for (const [key, v] of Object.entries(pattern)) if (new RegExp(`^(.*\\.)?(${key})$`).test(path)) return v;
  return undefined;
}

export function rankFor(c: LoraConfig, path: string): number {
  return patternValue(c.rankPattern, path) ?? c.r;
}
export function alphaFor(c: LoraConfig, path: string): number {
  return patternValue(c.alphaPattern, path) ?? c.alpha;
}

/** Does the LoRA config target the linear module at `path` (e.g. model.layers.3.self_attn.q_proj)? */
export function isTarget(c: LoraConfig, path: string): boolean {
  const t = c.targetModules;
  if (t === 'all-linear') return true; // every decoder linear; lm_head is never a target
  if (typeof t === 'string') return new RegExp(`^(?:${t})$`).test(path);
  return t.some((name) => path === name || path.endsWith(`.${name}`));
}

/** Parse `--targets`: 'all-linear' or a comma list of the linear names. */
export function parseTargets(spec: string): string[] | 'all-linear' {
  if (spec === 'all-linear') return spec;
  const names = spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (names.length === 0) throw new UserError('--targets is empty');
  for (const n of names)
    if (!(LINEAR_NAMES as readonly string[]).includes(n))
      throw new UserError(`--targets: unknown module "${n}" (known: all-linear, ${LINEAR_NAMES.join(', ')})`);
  return names;
}

/**
 * Refuse a rank larger than the smaller side of a targeted matrix (A is r × in, B is out × r: a rank past
 * min(in, out) adds parameters and memory but no expressiveness), naming the first such module. Checked on the
 * spec alone, before any weight is loaded.
 */
export function checkRankFits(c: LoraConfig, spec: ModelSpec, flag = '--rank'): void {
  for (let l = 0; l < spec.layers; l++)
    for (const name of LINEAR_NAMES) {
      const p = modulePath(l, name);
      if (!isTarget(c, p)) continue;
      const [outF, inF] = linearShape(spec, name);
      const r = rankFor(c, p);
      if (r > Math.min(inF, outF))
        throw new ConfigError(
          `${flag} ${r} is larger than ${p} (${outF} × ${inF}) allows: at most ${Math.min(inF, outF)}`,
          flag.replace(/^--/, ''),
        );
    }
}
