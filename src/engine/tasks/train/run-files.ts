/**
 * A run folder besides its checkpoints: which folders a run may start in or resume (never the model's, never a
 * foreign one; a resume keeps its settings), metrics.jsonl cut back on resume, and the adapter's README.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../../core/errors';
import { TMP_RE, isInside, readJson, realPathOf, writeFileAtomic } from '../../core/fsx';
import type { TrainConfig } from '../../config';
import { VERSION } from '../../core/version';
import { latestCheckpoint, removeStaleCheckpointTmp } from './checkpoint';
import type { TrainResult } from './types';

/** On resume, drop metric rows past the checkpoint so the file tells one consistent story. */
export function keepMetricsThrough(file: string, step: number): void {
  if (!fs.existsSync(file)) return;
  if (step === 0) {
    fs.rmSync(file);
    return;
  }
  const rows = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => {
      if (!l.trim()) return false;
      try {
        return JSON.parse(l).step <= step;
      } catch {
        return false;
      }
    });
  writeFileAtomic(file, rows.map((l) => l + '\n').join(''));
}

/** the run's numbers the README quotes */
interface RunSummary {
  steps: number;
  firstLoss?: number;
  finalLoss?: number;
  firstEvalLoss?: number;
  finalEvalLoss?: number;
}

export function adapterReadme(cfg: TrainConfig, r: RunSummary): string {
  return `# LoRA adapter (lorakit ${VERSION})

Base model: ${path.resolve(cfg.model)}
Data: ${path.resolve(cfg.data)}
r=${cfg.lora.r}, lora_alpha=${cfg.lora.alpha}, dropout=${cfg.lora.dropout}, rsLoRA=${cfg.lora.useRslora}
Steps: ${r.steps}, lr ${cfg.lr} (${cfg.schedule}), seq_len ${cfg.seqLen}, batch ${cfg.batch} × accum ${cfg.gradAccum}
Train loss: ${r.firstLoss?.toFixed(4)} → ${r.finalLoss?.toFixed(4)}; eval loss: ${r.firstEvalLoss?.toFixed(4) ?? '-'} → ${r.finalEvalLoss?.toFixed(4) ?? '-'}

Load with PEFT: \`PeftModel.from_pretrained(base, "<this folder>")\`.
`;
}

/** The config fields that must not change between a run and its resume. */
export const RESUME_KEYS: (keyof TrainConfig)[] = [
  'data',
  'quant',
  'lora',
  'seqLen',
  'batch',
  'gradAccum',
  'lr',
  'steps',
  'epochs',
  'warmup',
  'schedule',
  'evalSplit',
  'seed',
  'maxGradNorm',
  'weightDecay',
  'initAdapter',
  'dataOrder',
];
/** what a key left out of an older run.json meant */
export const RESUME_DEFAULTS: Partial<TrainConfig> = { dataOrder: 'shuffle' };

/** what a run folder holds (settings.json: the extension's record of the panel's settings) */
const RUN_ENTRIES = new Set(['run.json', 'metrics.jsonl', 'checkpoints', 'adapter', 'settings.json']);

/** Refuse a used folder without --resume, or a resume whose settings changed; returns the checkpoint to resume. */
export function checkRunFolder(
  cfg: TrainConfig,
  runDir: string,
  resume: boolean,
  log: (l: string) => void,
): string | 'complete' | undefined {
  const runFile = path.join(runDir, 'run.json');
  // never into the model folder (by any spelling: real paths), nor over a folder holding something else
  if (isInside(runDir, cfg.model) || isInside(cfg.model, runDir))
    throw new UserError(
      `--out must be outside the model folder ${realPathOf(cfg.model)}, and must not contain it (the model is never written to)`,
      runDir,
    );
  if (!resume) {
    removeStaleCheckpointTmp(runDir);
    if (fs.existsSync(path.join(runDir, 'metrics.jsonl')) || fs.existsSync(path.join(runDir, 'adapter')))
      throw new UserError('the output folder already holds a run; pass --resume to continue it, or choose another --out', runDir);
    const foreign = fs.existsSync(runDir) ? fs.readdirSync(runDir).filter((n) => !RUN_ENTRIES.has(n) && !TMP_RE.test(n)) : [];
    if (foreign.length)
      throw new UserError(
        `the output folder is not empty and is not a lorakit run (it holds ${foreign
          .slice(0, 3)
          .map((n) => JSON.stringify(n))
          .join(', ')}${foreign.length > 3 ? ', …' : ''}); choose a new or empty folder for --out`,
        runDir,
      );
    return undefined;
  }
  if (!fs.existsSync(runFile)) throw new UserError('nothing to resume: no run.json (start the run without --resume)', runDir);
  const run = readJson(runFile);
  const prev = run.config as TrainConfig;
  for (const k of RESUME_KEYS) {
    const was = prev[k] ?? RESUME_DEFAULTS[k];
    const now = cfg[k] ?? RESUME_DEFAULTS[k];
    if (JSON.stringify(was) !== JSON.stringify(now))
      throw new UserError(`cannot resume: ${k} was ${JSON.stringify(was)} in this run, now ${JSON.stringify(now)}`, runFile);
  }
  const stale = removeStaleCheckpointTmp(runDir);
  if (stale.length) log(`removed ${stale.length} half-written checkpoint(s) left by a killed run: ${stale.join(', ')}`);
  // a completed run is left as it is: --resume does not rewrite its adapter from the last checkpoint
  if (run.status === 'completed' && fs.existsSync(path.join(runDir, 'adapter', 'adapter_config.json'))) return 'complete';
  const ck = latestCheckpoint(runDir);
  if (!ck) log('no checkpoint found; starting from step 0');
  return ck;
}

/** --resume on a completed run: say so and change nothing */
export function completedRun(runDir: string, log: (l: string) => void): TrainResult {
  const run = readJson(path.join(runDir, 'run.json'));
  const adapterDir = path.join(runDir, 'adapter');
  log(`the run is already complete (${run.steps} of ${run.totalSteps} steps); its adapter is ${adapterDir}. Nothing to do`);
  return {
    status: 'completed',
    runDir,
    adapterDir,
    steps: run.steps,
    finalLoss: run.finalLoss,
    finalEvalLoss: run.finalEvalLoss,
    peakMem: run.peakMem,
    trainableParams: run.trainableParams,
    backend: run.backend,
    lastCheckpoint: latestCheckpoint(runDir),
  };
}

/** a file's content hash (the --init-adapter weights a run started from) */
export function fileHash(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex').slice(0, 16);
}
