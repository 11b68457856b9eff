/** LoRA configuration with PEFT's semantics (adapter_config.json, read and checked here), and which modules of a model it targets. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import { readJson } from '../core/fsx';
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

/** Parse adapter_config.json into a LoraConfig, refusing the PEFT features lorakit does not implement. */
export function readAdapterConfig(dir: string): LoraConfig {
  const file = path.join(dir, 'adapter_config.json');
  if (!fs.existsSync(file)) throw new UserError('not a PEFT adapter folder: no adapter_config.json', dir);
  const c = readJson(file);
  if (c === null || typeof c !== 'object' || Array.isArray(c)) throw new UserError('expected a JSON object', file);
  if (c.peft_type !== 'LORA') throw new UserError(`peft_type ${JSON.stringify(c.peft_type)} is not supported (only LORA)`, file);
  if (c.use_dora) throw new UserError('DoRA adapters (use_dora: true) are not supported', file);
  if (c.fan_in_fan_out) throw new UserError('fan_in_fan_out adapters (GPT-2 Conv1D) are not supported', file);
  if (c.bias && c.bias !== 'none') throw new UserError(`bias "${c.bias}" is not supported (only "none")`, file);
  if (c.modules_to_save && c.modules_to_save.length) throw new UserError('modules_to_save is not supported', file);
  if (c.lora_bias) throw new UserError('lora_bias is not supported', file);
  for (const [key, schema, what] of ADAPTER_FIELDS) {
    const v = c[key];
    if (v !== undefined && !schema.safeParse(v).success) throw new UserError(`"${key}" must be ${what}, got ${JSON.stringify(v)}`, file);
  }
  return {
    r: c.r ?? 8,
    alpha: c.lora_alpha ?? 8,
    dropout: c.lora_dropout ?? 0,
    targetModules: c.target_modules ?? ['q_proj', 'v_proj'],
    useRslora: !!c.use_rslora,
    rankPattern: c.rank_pattern ?? {},
    alphaPattern: c.alpha_pattern ?? {},
    baseModel: c.base_model_name_or_path ?? undefined,
  };
}

const rank = z
  .number()
  .int()
  .min(1)
  .max(1 << 16);
const alpha = z.number().positive().max(1e6);
/** the fields of adapter_config.json that change the numbers: each checked, its error naming it (absent: PEFT's default) */
const ADAPTER_FIELDS: [string, z.ZodType, string][] = [
  ['r', rank, `a whole number from 1 to ${1 << 16}`],
  ['lora_alpha', alpha, 'a number > 0 and ≤ 1000000'],
  ['lora_dropout', z.number().min(0).lt(1), 'a number ≥ 0 and < 1'],
  [
    'target_modules',
    z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]).nullable(),
    'a module name pattern or a non-empty list of module names',
  ],
  ['use_rslora', z.boolean(), 'true or false'],
  ['rank_pattern', z.record(z.string(), rank).nullable(), `an object of module patterns to ranks (whole numbers from 1 to ${1 << 16})`],
  ['alpha_pattern', z.record(z.string(), alpha).nullable(), 'an object of module patterns to alphas (numbers > 0 and ≤ 1000000)'],
  ['base_model_name_or_path', z.string().nullable(), 'a path or a model name'],
];
