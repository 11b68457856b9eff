/**
 * `lorakit export job --target hf`: a run handed off to transformers' Trainer + PEFT on a cluster. One folder with
 * train.py, lorakit_order.py, the windows as JSONL, two accelerate configs, job.json, requirements.txt and a README.
 *
 * The data goes as tokens: the rows are exactly the windows `lorakit train` would train on (see jobData), in
 * Hugging Face's input_ids/labels form. No weights are loaded: the model folder gives its config and tokenizer.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, UserError } from '../core/errors';
import { writeDirAtomic } from '../core/fsx';
import { VERSION } from '../core/version';
import type { TrainConfig } from '../config';
import { type Example, loadExamples, splitExamples, splitWindows } from '../data/dataset';
import { openModelFolder } from '../formats/model-folder';
import { LINEAR_NAMES } from '../formats/structure';
import { NoTokenizer, TextTokenizer, Tokenizer } from '../formats/tokenizer';
import { evalEveryFor, totalStepsFor, warmupSteps } from './train/schedule';
import { ddpConfig, fsdpConfig } from './export-job-accelerate';
import { ORDER_PY } from './export-job-order';
import { jobReadme } from './export-job-readme';
import { JobPlan, trainScript } from './export-job-script';

/** one window in Hugging Face's form: its inputs and the token after them; labels −100 where nothing is scored */
export interface JobRow {
  input_ids: number[];
  labels: number[];
}

export interface JobData {
  train: JobRow[];
  eval: JobRow[];
  examples: number;
  tokens: number;
  kind: string;
  files: number;
}

export interface ExportJobOptions {
  target: 'hf';
  out: string;
  /** GPUs per machine and machines, the accelerate configs' defaults */
  gpus?: number;
  nodes?: number;
}

export interface ExportJobResult {
  out: string;
  target: 'hf';
  files: string[];
  trainWindows: number;
  evalWindows: number;
  totalSteps: number;
  warmupSteps: number;
  warnings: string[];
}

const LAYER_CLASS: Record<string, string> = {
  llama: 'LlamaDecoderLayer',
  mistral: 'MistralDecoderLayer',
  qwen2: 'Qwen2DecoderLayer',
  qwen3: 'Qwen3DecoderLayer',
};

/**
 * The examples cut as data/dataset.ts's pack cuts them: window w predicts stream[wT+1 … wT+T] from the inputs
 * stream[wT … wT+T−1]. A row holds those inputs and the token after them (T+1 tokens, fewer in the last window,
 * unpadded); labels[t+1] is the target of input t, as transformers shifts labels by one itself.
 */
export function jobRows(examples: Example[], T: number): JobRow[] {
  const stream: number[] = [];
  const scored: boolean[] = [];
  for (const e of examples)
    for (let i = 0; i < e.ids.length; i++) {
      stream.push(e.ids[i]);
      scored.push(e.scored[i]);
    }
  const count = Math.max(0, Math.ceil((stream.length - 1) / T));
  const rows: JobRow[] = [];
  for (let w = 0; w < count; w++) {
    const end = Math.min(w * T + T, stream.length - 1); // the last token of the row
    const input_ids = stream.slice(w * T, end + 1);
    const labels = input_ids.map((id, t) => (t > 0 && scored[w * T + t] ? id : -100));
    rows.push({ input_ids, labels });
  }
  return rows;
}

/** The rows of `lorakit train`'s windows: prepareData's steps (load, split, pack, the window split), row by row. */
export function jobData(cfg: TrainConfig, tok: Tokenizer, vocabSize: number): JobData {
  const d = loadExamples(cfg.data, tok, vocabSize, { appendEos: true });
  const tokens = d.examples.reduce((s, e) => s + e.ids.length, 0);
  const split = splitExamples(d.examples, cfg.evalSplit, cfg.seed);
  let train = jobRows(split.train, cfg.seqLen);
  let ev = jobRows(split.eval, cfg.seqLen);
  if (split.eval.length === 0 && cfg.evalSplit > 0) {
    // a single document: windows are held out by splitWindows, whose choice depends only on the count and seed
    const idx = Int32Array.from(train.keys());
    const s = splitWindows({ count: train.length, T: 1, inputs: idx, targets: idx }, cfg.evalSplit, cfg.seed);
    const all = train;
    ev = [...s.eval.inputs].map((i) => all[i]);
    train = [...s.train.inputs].map((i) => all[i]);
  }
  if (train.length === 0) throw new UserError('not enough tokens to make one training window', cfg.data);
  return { train, eval: ev, examples: d.examples.length, tokens, kind: d.kind, files: d.files };
}

const jsonl = (rows: JobRow[]) => rows.map((r) => JSON.stringify(r) + '\n').join('');

const REQUIREMENTS = (quant: boolean) =>
  `# the versions train.py was written for (the loss normalized over the whole step, across processes: transformers >= 4.48)
torch>=2.1
transformers>=4.48
peft>=0.13
accelerate>=1.0
${quant ? 'bitsandbytes>=0.43\n' : ''}`;

/** Check the folder to write: new, empty, or an earlier export (replaced whole). */
function checkOut(out: string): void {
  if (!fs.existsSync(out)) return;
  if (!fs.statSync(out).isDirectory()) throw new UserError('exists and is not a folder; choose another --out', out);
  const names = fs.readdirSync(out);
  if (names.length && !names.includes('job.json'))
    throw new UserError('the folder is not empty and holds no earlier job export (job.json); choose another --out', out);
}

export function exportJob(cfg: TrainConfig, opts: ExportJobOptions): ExportJobResult {
  if (opts.target !== 'hf') throw new UserError(`unknown export target "${opts.target}" (known: hf)`);
  // train.py starts a fresh adapter; continuing one there is PEFT's from_pretrained(…, is_trainable=True), not written yet
  if (cfg.initAdapter)
    throw new ConfigError('--init-adapter is not supported by export job yet (the script starts a fresh adapter)', 'init-adapter');
  const out = path.resolve(opts.out);
  checkOut(out);
  const folder = openModelFolder(cfg.model, cfg.quant ?? null);
  const layerClass = LAYER_CLASS[folder.spec.modelType];
  if (!layerClass) throw new UserError(`model type "${folder.spec.modelType}" has no transformers layer class here`, cfg.model);
  const tok: Tokenizer = folder.hasTokenizer ? TextTokenizer.load(folder.dir) : new NoTokenizer(folder.dir);
  const data = jobData(cfg, tok, folder.spec.vocabSize);
  const totalSteps = totalStepsFor(cfg, data.train.length);
  const t = cfg.lora.targetModules;
  const plan: JobPlan = {
    cfg,
    model: path.resolve(cfg.model),
    modelType: folder.spec.modelType,
    layerClass,
    targets: t === 'all-linear' ? [...LINEAR_NAMES] : typeof t === 'string' ? [t] : t,
    quant: folder.quant,
    quantStored: folder.quantSource === 'bnb-4bit',
    trainWindows: data.train.length,
    evalWindows: data.eval.length,
    totalSteps,
    warmupSteps: warmupSteps(cfg.warmup, totalSteps),
    evalEvery: evalEveryFor(cfg, totalSteps),
    gpus: opts.gpus ?? 8,
    nodes: opts.nodes ?? 1,
  };
  const warnings: string[] = [];
  if (plan.quant && !plan.quantStored && plan.quant.blocksize !== 64)
    warnings.push(
      `--blocksize ${plan.quant.blocksize}: transformers quantizes in blocks of 64 (its BitsAndBytesConfig has no block size); see the README`,
    );
  const job = {
    lorakit: VERSION,
    target: 'hf',
    config: { ...cfg, model: plan.model, data: path.resolve(cfg.data) },
    data: {
      kind: data.kind,
      files: data.files,
      examples: data.examples,
      tokens: data.tokens,
      trainWindows: plan.trainWindows,
      evalWindows: plan.evalWindows,
    },
    totalSteps,
    warmupSteps: plan.warmupSteps,
    evalEvery: plan.evalEvery,
    targetModules: plan.targets,
  };
  const files: Record<string, string> = {
    'train.py': trainScript(plan),
    'lorakit_order.py': ORDER_PY,
    'data/train.jsonl': jsonl(data.train),
    'data/eval.jsonl': jsonl(data.eval),
    'accelerate_ddp.yaml': ddpConfig(plan),
    'accelerate_fsdp.yaml': fsdpConfig(plan),
    'job.json': JSON.stringify(job, null, 2) + '\n',
    'requirements.txt': REQUIREMENTS(!!plan.quant),
    'README.md': jobReadme(plan),
  };
  writeDirAtomic(out, (tmp) => {
    for (const [name, text] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(tmp, name)), { recursive: true });
      fs.writeFileSync(path.join(tmp, name), text);
    }
  });
  return {
    out,
    target: 'hf',
    files: Object.keys(files),
    trainWindows: plan.trainWindows,
    evalWindows: plan.evalWindows,
    totalSteps,
    warmupSteps: plan.warmupSteps,
    warnings,
  };
}
