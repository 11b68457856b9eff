/**
 * The training loop: AdamW on the LoRA parameters, gradient accumulation, grad-norm clipping, warm-up then
 * decay, periodic eval and checkpoints, exact resume, a NaN/Inf guard and cancellation through an AbortSignal.
 *
 * Run folder: run.json, metrics.jsonl, checkpoints/step-N/, adapter/ (the final PEFT adapter).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Backend, MemFigures, Tensor } from '../backend/backend';
import { BackendName, createBackend } from '../backend/select';
import { PreparedData, Windows, prepareData } from '../data/dataset';
import { summarizeSkipped } from '../data/folder';
import { UserError } from '../errors';
import { LoraAdapter } from '../lora/adapter';
import { LoraConfig, validateLoraConfig } from '../lora/config';
import { saveAdapter } from '../lora/peft';
import { LlamaModel } from '../model/llama';
import { openModel } from '../session';
import { Rng } from '../util/rng';
import { readJson, writeFileAtomic, writeJsonAtomic } from '../util/fsx';
import { OptState, TrainerState, latestCheckpoint, loadCheckpoint, saveCheckpoint } from './checkpoint';
import { ScheduleName, lrAt, warmupSteps } from './schedule';
import { VERSION } from '../version';

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
}

export interface StepMetrics {
  step: number;
  total_steps: number;
  loss: number;
  lr: number;
  grad_norm: number;
  tokens_per_s: number;
  step_ms: number;
  mem: MemFigures;
  elapsed_s: number;
}

export interface EvalMetrics {
  step: number;
  eval_loss: number;
  eval_perplexity: number;
  eval_tokens: number;
}

export interface TrainEvents {
  onLog?: (line: string) => void;
  onStep?: (m: StepMetrics) => void;
  onEval?: (m: EvalMetrics) => void;
  onCheckpoint?: (dir: string, step: number) => void;
}

export interface TrainResult {
  status: 'completed' | 'cancelled';
  runDir: string;
  adapterDir?: string;
  lastCheckpoint?: string;
  steps: number;
  firstLoss?: number;
  finalLoss?: number;
  firstEvalLoss?: number;
  finalEvalLoss?: number;
  peakMem: MemFigures;
  trainableParams: number;
  backend: string;
}

/** The config fields that must not change between a run and its resume. */
const RESUME_KEYS: (keyof TrainConfig)[] = ['data', 'lora', 'seqLen', 'batch', 'gradAccum', 'lr', 'steps', 'epochs', 'warmup', 'schedule', 'evalSplit', 'seed', 'maxGradNorm', 'weightDecay'];

export function validateTrainConfig(c: TrainConfig): void {
  validateLoraConfig(c.lora);
  const pos = (v: number | undefined, name: string, int = true) => {
    if (v === undefined) return;
    if (!(Number.isFinite(v) && v > 0 && (!int || Number.isInteger(v)))) throw new UserError(`${name} must be a positive ${int ? 'integer' : 'number'}, got ${v}`);
  };
  pos(c.seqLen, '--seq-len');
  pos(c.batch, '--batch');
  pos(c.gradAccum, '--grad-accum');
  pos(c.lr, '--lr', false);
  pos(c.steps, '--steps');
  pos(c.epochs, '--epochs', false);
  pos(c.checkpointEvery, '--checkpoint-every');
  pos(c.evalEvery, '--eval-every');
  if (!(c.warmup >= 0)) throw new UserError(`--warmup must be ≥ 0, got ${c.warmup}`);
  if (!(c.evalSplit >= 0 && c.evalSplit < 1)) throw new UserError(`--eval-split must be in [0, 1), got ${c.evalSplit}`);
  if (!(c.maxGradNorm >= 0)) throw new UserError(`max grad norm must be ≥ 0, got ${c.maxGradNorm}`);
  if (!(c.weightDecay >= 0)) throw new UserError(`weight decay must be ≥ 0, got ${c.weightDecay}`);
}

/** Mean loss over the windows, in batches of `batch`. */
export function evaluateWindows(model: LlamaModel, w: Windows, batch: number): { loss: number; tokens: number } {
  let sum = 0;
  let tokens = 0;
  for (let i = 0; i < w.count; i += batch) {
    const B = Math.min(batch, w.count - i);
    const r = model.loss(w.inputs.subarray(i * w.T, (i + B) * w.T), w.targets.subarray(i * w.T, (i + B) * w.T), B, w.T);
    sum += model.be.read(r.loss)[0];
    tokens += r.count;
    model.be.free(r.loss);
  }
  return { loss: tokens ? sum / tokens : NaN, tokens };
}

export async function train(cfg: TrainConfig, opts: { resume?: boolean; signal?: AbortSignal; events?: TrainEvents; backend?: Backend } = {}): Promise<TrainResult> {
  validateTrainConfig(cfg);
  const log = opts.events?.onLog ?? (() => {});
  const runDir = path.resolve(cfg.out);
  const runFile = path.join(runDir, 'run.json');
  let resumeFrom: string | undefined;
  if (opts.resume) {
    if (!fs.existsSync(runFile)) throw new UserError('nothing to resume: no run.json (start the run without --resume)', runDir);
    const prev = readJson(runFile).config as TrainConfig;
    for (const k of RESUME_KEYS)
      if (JSON.stringify(prev[k]) !== JSON.stringify(cfg[k]))
        throw new UserError(`cannot resume: ${k} was ${JSON.stringify(prev[k])} in this run, now ${JSON.stringify(cfg[k])}`, runFile);
    resumeFrom = latestCheckpoint(runDir);
    if (!resumeFrom) log('no checkpoint found; starting from step 0');
  } else if (fs.existsSync(path.join(runDir, 'metrics.jsonl')) || fs.existsSync(path.join(runDir, 'adapter'))) {
    throw new UserError('the output folder already holds a run; pass --resume to continue it, or choose another --out', runDir);
  }

  const { be, reason } = opts.backend ? { be: opts.backend, reason: 'given' } : createBackend(cfg.backend);
  log(`backend: ${be.name} (${reason})`);
  const { model, tokenizer } = openModel(cfg.model, be);
  const spec = model.spec;
  const data: PreparedData = prepareData(cfg.data, tokenizer, spec.vocabSize, cfg.seqLen, cfg.evalSplit, cfg.seed);
  log(
    `data: ${data.examples} examples from ${data.files} file(s), ${data.tokens} tokens → ${data.train.count} train / ${data.eval.count} eval windows of ${cfg.seqLen}` +
      (data.kind === 'folder' ? `; ${summarizeSkipped(data.skipped)}` : ''),
  );
  const dataHash = createHash('sha256').update(new Uint8Array(data.train.inputs.buffer)).update(new Uint8Array(data.train.targets.buffer)).digest('hex').slice(0, 16);
  if (resumeFrom) {
    const was = readJson(runFile).data?.hash;
    if (was && was !== dataHash)
      throw new UserError(`cannot resume: the training data changed since this run started (its tokens hash to ${dataHash}, the run's to ${was})`, cfg.data);
  }
  const perStep = cfg.batch * cfg.gradAccum;
  const totalSteps = cfg.steps ?? Math.max(1, Math.ceil(((cfg.epochs ?? 1) * data.train.count) / perStep));
  const warmup = warmupSteps(cfg.warmup, totalSteps);
  const lora: LoraConfig = { ...cfg.lora, baseModel: cfg.lora.baseModel ?? path.resolve(cfg.model) };
  const adapter = LoraAdapter.create(spec, lora, be, new Rng(cfg.seed));
  model.adapter = adapter;
  adapter.allocGrads(be);
  const params = adapter.params();
  const opt: OptState = {
    m: params.map((p) => be.zeros([...p.t.shape], 'optimizer')),
    v: params.map((p) => be.zeros([...p.t.shape], 'optimizer')),
  };
  let state: TrainerState = { step: 0, totalSteps, cursor: 0, rng: { seed: cfg.seed, step: 0 } };
  if (resumeFrom) {
    state = loadCheckpoint(resumeFrom, adapter, opt, be);
    log(`resumed from ${resumeFrom} (step ${state.step} of ${totalSteps})`);
  }
  fs.mkdirSync(runDir, { recursive: true });
  writeJsonAtomic(runFile, {
    config: cfg,
    lorakit: VERSION,
    node: process.version,
    backend: be.name,
    model: { dir: path.resolve(cfg.model), ...spec },
    data: { hash: dataHash, kind: data.kind, files: data.files, examples: data.examples, tokens: data.tokens, trainWindows: data.train.count, evalWindows: data.eval.count, skipped: data.skipped },
    totalSteps,
    warmupSteps: warmup,
    trainableParams: adapter.trainableCount(),
    started: new Date().toISOString(),
  });
  const metricsFile = path.join(runDir, 'metrics.jsonl');
  keepMetricsThrough(metricsFile, state.step);
  const appendMetric = (row: object) => fs.appendFileSync(metricsFile, JSON.stringify(row) + '\n');
  log(`training ${adapter.trainableCount()} LoRA parameters (r=${lora.r}, ${adapter.modules.size} modules) for ${totalSteps} steps`);

  const result: TrainResult = {
    status: 'completed', runDir, steps: state.step, peakMem: be.mem.peak, trainableParams: adapter.trainableCount(), backend: be.name,
  };
  const runEval = (step: number) => {
    if (data.eval.count === 0) return;
    const e = evaluateWindows(model, data.eval, cfg.batch);
    const row: EvalMetrics = { step, eval_loss: e.loss, eval_perplexity: Math.exp(e.loss), eval_tokens: e.tokens };
    appendMetric(row);
    opts.events?.onEval?.(row);
    result.firstEvalLoss ??= e.loss;
    result.finalEvalLoss = e.loss;
  };
  const checkpoint = () => {
    state.rng.step = state.step;
    const dir = saveCheckpoint(runDir, state, adapter, opt, be, cfg.keepCheckpoints);
    result.lastCheckpoint = dir;
    opts.events?.onCheckpoint?.(dir, state.step);
  };

  if (state.step === 0) runEval(0);
  const nTrain = data.train.count;
  const T = cfg.seqLen;
  const orders = new Map<number, number[]>();
  const windowAt = (cursor: number) => {
    const epoch = Math.floor(cursor / nTrain);
    let order = orders.get(epoch);
    if (!order) {
      order = new Rng((cfg.seed + 1) * 1000003 + epoch).shuffle([...Array(nTrain).keys()]);
      orders.clear();
      orders.set(epoch, order);
    }
    return order[cursor % nTrain];
  };
  const t0 = performance.now();
  const overallPeak: MemFigures = { ...be.mem.peak };
  const inputs = new Int32Array(cfg.batch * T);
  const targets = new Int32Array(cfg.batch * T);
  while (state.step < totalSteps) {
    if (opts.signal?.aborted) {
      checkpoint();
      result.status = 'cancelled';
      log(`cancelled at step ${state.step}; checkpoint kept at ${result.lastCheckpoint}`);
      break;
    }
    const ts = performance.now();
    be.mem.resetPeak();
    const micro: { inputs: Int32Array; targets: Int32Array }[] = [];
    let scored = 0;
    for (let a = 0; a < cfg.gradAccum; a++) {
      for (let b = 0; b < cfg.batch; b++) {
        const w = windowAt(state.cursor + a * cfg.batch + b);
        inputs.set(data.train.inputs.subarray(w * T, (w + 1) * T), b * T);
        targets.set(data.train.targets.subarray(w * T, (w + 1) * T), b * T);
      }
      for (const t of targets) if (t >= 0) scored++;
      micro.push({ inputs: inputs.slice(), targets: targets.slice() });
    }
    adapter.zeroGrads(be);
    let lossSum = 0;
    for (let a = 0; a < micro.length; a++) {
      const r = model.lossAndGrad(micro[a].inputs, micro[a].targets, cfg.batch, T, 1 / Math.max(1, scored), mixSeed(cfg.seed, state.step, a));
      lossSum += be.read(r.loss)[0];
      be.free(r.loss);
    }
    const loss = lossSum / Math.max(1, scored);
    const gradNorm = globalNorm(be, params.map((p) => p.g()!));
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      const last = result.lastCheckpoint ?? (latestCheckpoint(runDir) || 'none');
      throw new UserError(`step ${state.step + 1}: loss is ${loss}, grad norm ${gradNorm} (NaN/Inf); stopped without applying the update. Last good checkpoint: ${last}. Try a lower --lr`, runDir);
    }
    if (cfg.maxGradNorm > 0 && gradNorm > cfg.maxGradNorm) {
      const s = cfg.maxGradNorm / (gradNorm + 1e-6);
      for (const p of params) be.scaleInPlace(p.g()!, s);
    }
    const lr = lrAt(state.step, totalSteps, warmup, cfg.lr, cfg.schedule);
    params.forEach((p, i) => be.adamw(p.t, p.g()!, opt.m[i], opt.v[i], { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: cfg.weightDecay, step: state.step + 1 }));
    state.step++;
    state.cursor += perStep;
    const stepMs = performance.now() - ts;
    const row: StepMetrics = {
      step: state.step, total_steps: totalSteps, loss, lr, grad_norm: gradNorm,
      tokens_per_s: (perStep * T * 1000) / stepMs, step_ms: stepMs, mem: be.mem.peak, elapsed_s: (performance.now() - t0) / 1000,
    };
    row.mem = { ...be.mem.peak }; // this step's peak, by tag
    for (const k of Object.keys(overallPeak) as (keyof MemFigures)[]) overallPeak[k] = Math.max(overallPeak[k], row.mem[k]);
    appendMetric(row);
    opts.events?.onStep?.(row);
    result.firstLoss ??= loss;
    result.finalLoss = loss;
    result.steps = state.step;
    const evalEvery = cfg.evalEvery ?? Math.max(1, Math.floor(totalSteps / 5));
    if (state.step % evalEvery === 0 || state.step === totalSteps) runEval(state.step);
    if ((cfg.checkpointEvery && state.step % cfg.checkpointEvery === 0) || state.step === totalSteps) checkpoint();
    await new Promise((r) => setImmediate(r)); // let cancellation and IPC in
  }
  if (result.status === 'completed') {
    result.adapterDir = path.join(runDir, 'adapter');
    saveAdapter(result.adapterDir, adapter, be, { 'README.md': adapterReadme(cfg, result) });
    log(`adapter written to ${result.adapterDir}`);
  }
  result.peakMem = overallPeak;
  const run = readJson(runFile);
  writeJsonAtomic(runFile, { ...run, status: result.status, finished: new Date().toISOString(), steps: state.step, peakMem: result.peakMem });
  return result;
}

/** √Σ‖g‖² over all gradients */
function globalNorm(be: Backend, grads: Tensor[]): number {
  let s = 0;
  for (const g of grads) {
    const t = be.sumSquares(g);
    s += be.read(t)[0];
    be.free(t);
  }
  return Math.sqrt(s);
}

function mixSeed(seed: number, step: number, micro: number): number {
  return (Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(step + 1, 0x85ebca77) ^ Math.imul(micro + 1, 0xc2b2ae3d)) >>> 0;
}

/** On resume, drop metric rows past the checkpoint so the file tells one consistent story. */
function keepMetricsThrough(file: string, step: number): void {
  if (!fs.existsSync(file)) return;
  if (step === 0) {
    fs.rmSync(file);
    return;
  }
  const rows = fs.readFileSync(file, 'utf8').split('\n').filter((l) => {
    if (!l.trim()) return false;
    try {
      return JSON.parse(l).step <= step;
    } catch {
      return false;
    }
  });
  writeFileAtomic(file, rows.map((l) => l + '\n').join(''));
}

function adapterReadme(cfg: TrainConfig, r: TrainResult): string {
  return `# LoRA adapter (lorakit ${VERSION})

Base model: ${path.resolve(cfg.model)}
Data: ${path.resolve(cfg.data)}
r=${cfg.lora.r}, lora_alpha=${cfg.lora.alpha}, dropout=${cfg.lora.dropout}, rsLoRA=${cfg.lora.useRslora}
Steps: ${r.steps}, lr ${cfg.lr} (${cfg.schedule}), seq_len ${cfg.seqLen}, batch ${cfg.batch} × accum ${cfg.gradAccum}
Train loss: ${r.firstLoss?.toFixed(4)} → ${r.finalLoss?.toFixed(4)}; eval loss: ${r.firstEvalLoss?.toFixed(4) ?? '-'} → ${r.finalEvalLoss?.toFixed(4) ?? '-'}

Load with PEFT: \`PeftModel.from_pretrained(base, "<this folder>")\`.
`;
}
