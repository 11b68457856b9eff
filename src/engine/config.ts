/**
 * One training run's settings, in one place: every field's default, range and help text. The CLI's `train` flags
 * and help are made from this table; the sidecar fills what the extension does not send from it; the protocol's
 * TrainSettings, the `lorakit.*` settings in package.json and the panel's form are checked against it by a test.
 */
import { ConfigError, UserError } from './core/errors';
import { DEFAULT_BLOCKSIZE, QUANT_TYPES, QuantType } from './core/blockwise';
import type { QuantConfig } from './core/qweight';
import { LoraConfig, defaultLoraConfig, parseTargets, readAdapterConfig } from './formats/lora-config';
import type { BackendName } from './core/backend';
import { LINEAR_NAMES } from './formats/structure';

/** learning-rate decay after the warm-up (tasks/train/schedule.ts) */
export type ScheduleName = 'cosine' | 'linear' | 'constant';

export const SCHEDULES: readonly ScheduleName[] = ['cosine', 'linear', 'constant'];
export const BACKENDS: readonly BackendName[] = ['auto', 'cpu', 'cpu-reference', 'webgpu'];
/** how the trainer walks the training windows (tasks/train/trainer.ts windowAt) */
export type DataOrder = 'shuffle' | 'sequential';
export const DATA_ORDERS: readonly DataOrder[] = ['shuffle', 'sequential'];

export interface TrainConfig {
  model: string;
  data: string;
  out: string;
  lora: LoraConfig;
  seqLen: number;
  batch: number;
  gradAccum: number;
  lr: number;
  steps?: number;
  epochs?: number;
  warmup: number;
  schedule: ScheduleName;
  evalSplit: number;
  evalEvery?: number;
  seed: number;
  checkpointEvery?: number;
  keepCheckpoints: number;
  maxGradNorm: number;
  weightDecay: number;
  backend: BackendName;
  /** keep only each layer's input and recompute the rest in the backward pass (less memory, ~⅓ more compute) */
  gradCheckpoint?: boolean;
  /** memory the run must fit in (bytes); default 90% of RAM */
  maxMemory?: number;
  /** QLoRA: hold the decoder's linear weights in 4 bits (quantized on load; a bnb-4bit base always is) */
  quant?: QuantConfig | null;
  /** the WebGPU adapter to use (a substring of its name) */
  device?: string;
  /**
   * QLoRA's paged optimizer: AdamW moments live in host memory and visit the device one parameter at a time for
   * the update (explicit transfers). Turned on by itself on the GPU when that makes the estimate fit.
   */
  pagedOptimizer?: boolean;
  /**
   * a PEFT adapter folder to continue training (its A and B; fresh optimizer state). `lora` then is that adapter's
   * configuration (resolveTrainConfig reads it and refuses LoRA flags that contradict it).
   */
  initAdapter?: string;
  /** 'shuffle' (default): a seeded permutation per epoch; 'sequential': the windows in file order, every epoch */
  dataOrder?: DataOrder;
}

type Kind = 'int' | 'number' | 'string' | 'boolean';
export interface Field {
  /** the CLI flag, without `--` */
  flag: string;
  kind: Kind;
  default?: number | string | boolean;
  /** inclusive bounds; `above`: strictly greater than */
  min?: number;
  max?: number;
  above?: number;
  values?: readonly string[];
  /** a power of two */
  pow2?: boolean;
  /** the value's placeholder in the help (`--init-adapter DIR`) */
  arg?: string;
  help: string;
}

/** the settings of a run, flat, keyed as the protocol's TrainSettings and the panel name them */
export const TRAIN_FIELDS = {
  rank: { flag: 'rank', kind: 'int', default: 8, min: 1, max: 1024, help: 'LoRA rank r (at most the smaller side of each target matrix)' },
  alpha: {
    flag: 'alpha',
    kind: 'number',
    default: 16,
    above: 0,
    max: 1e6,
    help: 'LoRA alpha: the update is scaled by alpha/r (alpha/√r with --rslora)',
  },
  dropout: { flag: 'dropout', kind: 'number', default: 0.05, min: 0, max: 0.9, help: 'LoRA dropout on each target input' },
  targets: {
    flag: 'targets',
    kind: 'string',
    default: 'all-linear',
    help: 'all-linear, or a comma list of q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj',
  },
  rslora: { flag: 'rslora', kind: 'boolean', default: false, help: 'rank-stabilized LoRA: scale by alpha/√r' },
  initAdapter: {
    flag: 'init-adapter',
    kind: 'string',
    arg: 'DIR',
    help: 'continue training this PEFT adapter (fresh optimizer state); r, alpha, dropout, targets, rsLoRA and rank/alpha patterns come from its adapter_config.json',
  },
  quant: {
    flag: 'quant',
    kind: 'string',
    default: 'none',
    values: ['none', ...QUANT_TYPES],
    help: "QLoRA: hold the decoder's linear weights in 4 bits (NF4 or FP4)",
  },
  doubleQuant: {
    flag: 'double-quant',
    kind: 'boolean',
    default: false,
    help: 'quantize the 4-bit block scales too (8 bits, blocks of 256)',
  },
  blocksize: {
    flag: 'blocksize',
    kind: 'int',
    default: DEFAULT_BLOCKSIZE,
    min: 32,
    max: 4096,
    pow2: true,
    help: 'values per 4-bit block (a power of two)',
  },
  seqLen: { flag: 'seq-len', kind: 'int', default: 512, min: 8, max: 32768, help: 'tokens per training window' },
  batch: { flag: 'batch', kind: 'int', default: 4, min: 1, max: 1024, help: 'windows per micro-batch' },
  gradAccum: { flag: 'grad-accum', kind: 'int', default: 1, min: 1, max: 1024, help: 'micro-batches per optimizer step' },
  lr: { flag: 'lr', kind: 'number', default: 2e-4, above: 0, help: 'peak learning rate' },
  steps: { flag: 'steps', kind: 'int', min: 1, max: 1e9, help: 'optimizer steps (default: --epochs over the data)' },
  epochs: {
    flag: 'epochs',
    kind: 'number',
    default: 1,
    above: 0,
    max: 1e6,
    help: 'passes over the training windows, when --steps is not given',
  },
  warmup: {
    flag: 'warmup',
    kind: 'number',
    default: 0.03,
    min: 0,
    max: 1e9,
    help: 'warm-up: a fraction of the steps (< 1, rounded up) or a number of steps (≥ 1); at most all steps but the last, which runs at --lr',
  },
  schedule: { flag: 'schedule', kind: 'string', default: 'cosine', values: SCHEDULES, help: 'learning-rate decay after the warm-up' },
  weightDecay: { flag: 'weight-decay', kind: 'number', default: 0, min: 0, max: 10, help: "AdamW's decoupled weight decay" },
  maxGradNorm: {
    flag: 'max-grad-norm',
    kind: 'number',
    default: 1,
    min: 0,
    max: 1e9,
    help: 'clip the gradient norm to this (0: no clipping)',
  },
  evalSplit: { flag: 'eval-split', kind: 'number', default: 0.05, min: 0, max: 0.9, help: 'fraction of the data held out for evaluation' },
  evalEvery: { flag: 'eval-every', kind: 'int', min: 1, max: 1e9, help: 'evaluate every N steps (default: five times a run)' },
  dataOrder: {
    flag: 'data-order',
    kind: 'string',
    default: 'shuffle',
    values: DATA_ORDERS,
    help: 'shuffle: a seeded permutation of the windows per epoch; sequential: file order (to replay a reference run)',
  },
  seed: { flag: 'seed', kind: 'int', default: 0, min: 0, max: 2 ** 32 - 1, help: 'seed of the adapter init, the data order and dropout' },
  checkpointEvery: {
    flag: 'checkpoint-every',
    kind: 'int',
    default: 10,
    min: 1,
    max: 1e9,
    help: 'write a checkpoint every N steps (and at the end)',
  },
  keepCheckpoints: { flag: 'keep-checkpoints', kind: 'int', default: 3, min: 1, max: 1e6, help: 'checkpoints kept (the newest)' },
  gradCheckpoint: {
    flag: 'grad-checkpoint',
    kind: 'boolean',
    default: false,
    help: "keep one layer's activations at a time (recomputed in the backward pass): less memory, ~⅓ slower; turned on by itself when the estimate does not fit otherwise",
  },
  maxMemory: {
    flag: 'max-memory',
    kind: 'number',
    above: 0,
    max: 1e6,
    help: 'GiB the run must fit in (default 90% of RAM); checked before loading',
  },
  backend: {
    flag: 'backend',
    kind: 'string',
    default: 'auto',
    values: BACKENDS,
    help: 'auto takes a hardware WebGPU adapter when there is one (lorakit info --devices lists them)',
  },
  device: { flag: 'device', kind: 'string', help: 'the WebGPU adapter to use (part of its name)' },
  pagedOptimizer: {
    flag: 'paged-optimizer',
    kind: 'boolean',
    default: false,
    help: '(webgpu) keep the AdamW moments in host memory, sent to the device per parameter',
  },
} as const satisfies Record<string, Field>;

export type FieldName = keyof typeof TRAIN_FIELDS;
type ValueOf<F extends Field> = F['kind'] extends 'boolean' ? boolean : F['kind'] extends 'string' ? string : number;
/** a run's settings as given: any field may be missing (its default is taken) */
export type TrainSettingsInput = { [K in FieldName]?: ValueOf<(typeof TRAIN_FIELDS)[K]> } & { model: string; data: string; out: string };

/** the default of every field that has one */
export function trainDefaults(): { [K in FieldName]?: ValueOf<(typeof TRAIN_FIELDS)[K]> } {
  const out: Record<string, unknown> = {};
  for (const [k, f] of Object.entries(TRAIN_FIELDS) as [FieldName, Field][]) if (f.default !== undefined) out[k] = f.default;
  return out;
}

/** Check one value against its field; the error names the flag. */
export function checkField(name: FieldName, v: unknown): void {
  const f: Field = TRAIN_FIELDS[name];
  const bad = (why: string) => new ConfigError(`--${f.flag} ${why}, got ${JSON.stringify(v)}`, f.flag);
  if (f.kind === 'boolean') {
    if (typeof v !== 'boolean') throw bad('takes no value');
    return;
  }
  if (f.kind === 'string') {
    if (typeof v !== 'string' || v === '') throw bad('needs a value');
    if (f.values && !f.values.includes(v)) throw bad(`must be one of ${f.values.join(', ')}`);
    return;
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) throw bad('expects a number');
  if (f.kind === 'int' && !Number.isInteger(v)) throw bad('expects a whole number');
  const range = [f.min !== undefined ? `≥ ${f.min}` : f.above !== undefined ? `> ${f.above}` : '', f.max !== undefined ? `≤ ${f.max}` : '']
    .filter(Boolean)
    .join(' and ');
  if (f.pow2 && (v < (f.min ?? 1) || v > (f.max ?? Infinity) || (v & (v - 1)) !== 0))
    throw bad(`must be a power of two from ${f.min} to ${f.max}`);
  if ((f.min !== undefined && v < f.min) || (f.above !== undefined && v <= f.above) || (f.max !== undefined && v > f.max))
    throw bad(`must be ${range}`);
}

/** The full TrainConfig from given settings: defaults filled in, every value checked (a ConfigError names the flag). */
export function resolveTrainConfig(given: TrainSettingsInput): TrainConfig {
  const s = { ...trainDefaults(), ...Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) } as TrainSettingsInput;
  for (const k of Object.keys(TRAIN_FIELDS) as FieldName[]) if (s[k] !== undefined) checkField(k, s[k]);
  if (given.steps !== undefined && given.epochs !== undefined) throw new ConfigError('give --steps or --epochs, not both', 'steps');
  let quant: QuantConfig | null = null;
  if (s.quant !== 'none') {
    quant = { type: s.quant as QuantType, blocksize: s.blocksize!, doubleQuant: !!s.doubleQuant };
  } else if (given.doubleQuant || given.blocksize !== undefined)
    throw new ConfigError('--double-quant and --blocksize need --quant nf4|fp4', 'quant');
  let targets: LoraConfig['targetModules'];
  try {
    targets = parseTargets(s.targets!);
  } catch (e) {
    throw new ConfigError((e as Error).message, 'targets');
  }
  const lora = s.initAdapter
    ? loraFromAdapter(s.initAdapter, { ...given, targets: given.targets === undefined ? undefined : targets })
    : defaultLoraConfig({ r: s.rank, alpha: s.alpha, dropout: s.dropout, targetModules: targets, useRslora: !!s.rslora });
  return {
    model: s.model,
    data: s.data,
    out: s.out,
    lora,
    seqLen: s.seqLen!,
    batch: s.batch!,
    gradAccum: s.gradAccum!,
    lr: s.lr!,
    steps: s.steps,
    epochs: s.steps !== undefined ? undefined : s.epochs,
    warmup: s.warmup!,
    schedule: s.schedule as ScheduleName,
    evalSplit: s.evalSplit!,
    evalEvery: s.evalEvery,
    seed: s.seed!,
    checkpointEvery: s.checkpointEvery,
    keepCheckpoints: s.keepCheckpoints!,
    maxGradNorm: s.maxGradNorm!,
    weightDecay: s.weightDecay!,
    backend: s.backend as BackendName,
    gradCheckpoint: !!s.gradCheckpoint,
    maxMemory: s.maxMemory !== undefined ? s.maxMemory * 2 ** 30 : undefined,
    quant,
    device: s.device,
    pagedOptimizer: !!s.pagedOptimizer,
    ...(s.initAdapter ? { initAdapter: s.initAdapter } : {}),
    dataOrder: s.dataOrder as DataOrder,
  };
}

/**
 * The LoRA settings of `--init-adapter DIR`: its adapter_config.json decides them, as PEFT's from_pretrained does.
 * A LoRA setting given explicitly must agree with it: continuing an adapter with another rank or alpha is not
 * continuing it, so a contradiction is refused rather than silently overridden. The trainer calls this too, for
 * configs made in code.
 */
export function loraFromAdapter(
  dir: string,
  given: { rank?: number; alpha?: number; dropout?: number; rslora?: boolean; targets?: LoraConfig['targetModules'] },
): LoraConfig {
  const a = readAdapterConfig(dir);
  const names = (t: LoraConfig['targetModules']) =>
    t === 'all-linear' ? [...LINEAR_NAMES].sort().join(',') : Array.isArray(t) ? [...t].sort().join(',') : t;
  const pairs: [FieldName, unknown, unknown][] = [
    ['rank', given.rank, a.r],
    ['alpha', given.alpha, a.alpha],
    ['dropout', given.dropout, a.dropout],
    ['rslora', given.rslora, a.useRslora],
    ['targets', given.targets === undefined ? undefined : names(given.targets), names(a.targetModules)],
  ];
  for (const [k, flagValue, adapterValue] of pairs)
    if (flagValue !== undefined && flagValue !== adapterValue)
      throw new UserError(
        `--${TRAIN_FIELDS[k].flag} ${flagValue} contradicts this adapter's ${JSON.stringify(adapterValue)} (from its adapter_config.json); leave --${TRAIN_FIELDS[k].flag} out to continue the adapter as it is`,
        dir,
      );
  // the new run's adapter names this run's base model, not the one the adapter was first trained on
  return { ...a, baseModel: undefined };
}

/** `--flag default   help` lines for the fields named, as the CLI's help shows them */
export function fieldHelp(names: readonly FieldName[]): string {
  return names
    .map((k) => {
      const f: Field = TRAIN_FIELDS[k];
      const arg =
        f.kind === 'boolean'
          ? ''
          : f.arg
            ? ` ${f.arg}`
            : f.values
              ? ` ${f.values.join('|')}`
              : f.default !== undefined
                ? ` ${f.default}`
                : f.kind === 'string'
                  ? ' NAME'
                  : ' N';
      return `  --${f.flag}${arg}`.padEnd(32) + ` ${f.help}`;
    })
    .join('\n');
}

/** Check a TrainConfig made in code (tests, the sidecar) against the same ranges as the flags. */
export function validateTrainConfig(c: TrainConfig): void {
  const flat: Partial<Record<FieldName, unknown>> = {
    rank: c.lora.r,
    alpha: c.lora.alpha,
    dropout: c.lora.dropout,
    seqLen: c.seqLen,
    batch: c.batch,
    gradAccum: c.gradAccum,
    lr: c.lr,
    steps: c.steps,
    epochs: c.epochs,
    warmup: c.warmup,
    schedule: c.schedule,
    weightDecay: c.weightDecay,
    maxGradNorm: c.maxGradNorm,
    evalSplit: c.evalSplit,
    evalEvery: c.evalEvery,
    seed: c.seed,
    checkpointEvery: c.checkpointEvery,
    keepCheckpoints: c.keepCheckpoints,
    backend: c.backend,
    maxMemory: c.maxMemory !== undefined ? c.maxMemory / 2 ** 30 : undefined,
    dataOrder: c.dataOrder,
    initAdapter: c.initAdapter,
  };
  for (const [k, v] of Object.entries(flat) as [FieldName, unknown][]) if (v !== undefined) checkField(k, v);
  if (Array.isArray(c.lora.targetModules) && c.lora.targetModules.length === 0)
    throw new ConfigError('target modules list is empty', 'targets');
}
