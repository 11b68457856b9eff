/**
 * The training loop: AdamW on the LoRA parameters, gradient accumulation, grad-norm clipping, warm-up then
 * decay, periodic eval and checkpoints, exact resume, a NaN/Inf guard and cancellation through an AbortSignal.
 *
 * Run folder: run.json, metrics.jsonl, checkpoints/step-N/, adapter/ (the final PEFT adapter).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Backend, MemFigures, Tensor } from '../../core/backend';
import { createBackend, workspaceSizer } from '../../backend/select';
import { PreparedData, prepareData } from '../../data/dataset';
import { summarizeSkipped } from '../../data/folder';
import { UserError } from '../../core/errors';
import { LoraAdapter } from '../../model/lora';
import { LoraConfig, checkRankFits, validateLoraConfig } from '../../formats/lora-config';
import { loadAdapter, saveAdapter } from '../../model/peft';
import { LlamaModel } from '../../model/llama';
import { openModel } from '../session';
import { CpuBackend } from '../../backend/cpu/cpu';
import { bitsPerParam } from '../../core/qweight';
import { Rng } from '../../core/rng';
import { readJson, writeJsonAtomic, writing } from '../../core/fsx';
import { OptState, TrainerState, latestCheckpoint, resumeCheckpoint, saveCheckpoint } from './checkpoint';
import { epochOrder, evalEveryFor, lrAt, totalStepsFor, warmupAsked, warmupSteps } from './schedule';
import { adapterReadme, checkRunFolder, completedRun, fileHash, keepMetricsThrough } from './run-files';
import type { EvalMetrics, StepMetrics, TrainEvents, TrainResult } from './types';
export type { EvalMetrics, StepMetrics, TrainEvents, TrainResult } from './types';
import { evaluateWindows } from '../evaluate';
import { VERSION } from '../../core/version';
import { ModelFolder, openModelFolder } from '../../formats/model-folder';
import { TrainConfig, loraFromAdapter, validateTrainConfig } from '../../config';
import { estimateMemory, formatBytes } from '../estimate';
import { firstNonFinite } from '../finite';
import { TensorStore } from '../../formats/safetensors';

export async function train(
  cfg: TrainConfig,
  opts: { resume?: boolean; signal?: AbortSignal; events?: TrainEvents; backend?: Backend } = {},
): Promise<TrainResult> {
  // continuing an adapter: its own LoRA settings (a config made in code must not contradict them either)
  if (cfg.initAdapter)
    cfg = {
      ...cfg,
      lora: {
        ...loraFromAdapter(cfg.initAdapter, {
          rank: cfg.lora.r,
          alpha: cfg.lora.alpha,
          dropout: cfg.lora.dropout,
          rslora: cfg.lora.useRslora,
          targets: cfg.lora.targetModules,
        }),
        baseModel: cfg.lora.baseModel,
      },
    };
  validateLoraConfig(cfg.lora);
  validateTrainConfig(cfg);
  const ev = opts.events ?? {};
  const log = ev.onLog ?? (() => {});
  const runDir = path.resolve(cfg.out);
  const resumeFrom = checkRunFolder(cfg, runDir, !!opts.resume, log);
  if (resumeFrom === 'complete') return completedRun(runDir, log);
  const folder = openModelFolder(cfg.model, cfg.quant ?? null);
  checkRankFits(cfg.lora, folder.spec);
  // a Hub id (ORG/NAME): the run records its snapshot folder, the adapter the id (as PEFT writes it)
  if (folder.dir !== cfg.model) cfg = { ...cfg, model: folder.dir, lora: { ...cfg.lora, baseModel: cfg.lora.baseModel ?? cfg.model } };
  cfg = planMemory(cfg, folder, log);
  const { be, reason } = opts.backend ? { be: opts.backend, reason: 'given' } : createBackend(cfg.backend, cfg.device);
  log(`backend: ${be.name} (${reason})`);
  const { model, tokenizer, quant, quantSource } = openModel(folder, be);
  if (quant)
    log(
      `base weights: ${quant.type.toUpperCase()}${quant.doubleQuant ? ' + double quantization' : ''}, blocks of ${quant.blocksize} (${bitsPerParam(quant).toFixed(3)} bits a parameter; ${quantSource === 'bnb-4bit' ? 'stored bnb-4bit' : 'quantized on load'})`,
    );
  if (cfg.seqLen > model.spec.maxPositions)
    log(
      `warning: --seq-len ${cfg.seqLen} is longer than the model's max_position_embeddings (${model.spec.maxPositions}); positions past it extrapolate RoPE, as they would in transformers`,
    );
  log(`reading and tokenizing ${cfg.data}…`);
  const data = prepareData(cfg.data, tokenizer, model.spec.vocabSize, cfg.seqLen, cfg.evalSplit, cfg.seed);
  log(
    `data: ${data.examples} examples from ${data.files} file(s), ${data.tokens} tokens → ${data.train.count} train / ${data.eval.count} eval windows of ${cfg.seqLen}` +
      (data.kind === 'folder' ? `; ${summarizeSkipped(data.skipped)}` : ''),
  );
  const run = new Run(cfg, model, data, runDir, ev);
  if (resumeFrom) run.resume(resumeFrom);
  run.start();
  if (run.state.step === 0) run.evaluate(0);
  while (run.state.step < run.totalSteps) {
    if (opts.signal?.aborted) {
      run.checkpoint();
      run.result.status = 'cancelled';
      log(`cancelled at step ${run.state.step}; checkpoint kept at ${run.result.lastCheckpoint}`);
      break;
    }
    run.step();
    const s = run.state.step;
    const evalEvery = evalEveryFor(cfg, run.totalSteps);
    if (s % evalEvery === 0 || s === run.totalSteps) run.evaluate(s);
    if ((cfg.checkpointEvery && s % cfg.checkpointEvery === 0) || s === run.totalSteps) run.checkpoint();
    await new Promise((r) => setImmediate(r)); // let cancellation and IPC in
  }
  return run.finish();
}

/**
 * Check the memory estimate before anything is loaded. When the run does not fit but would with gradient
 * checkpointing (same gradients, less memory), turn it on and say so; when it cannot fit, refuse with the numbers.
 */
function planMemory(cfg: TrainConfig, folder: ModelFolder, log: (l: string) => void): TrainConfig {
  const { spec, quant } = folder;
  const workspace = workspaceSizer(cfg.backend);
  const est = (gradCheckpoint: boolean) =>
    estimateMemory({
      spec,
      lora: cfg.lora,
      seqLen: cfg.seqLen,
      batch: cfg.batch,
      gradCheckpoint,
      limitBytes: cfg.maxMemory,
      quant,
      workspace,
    });
  const e = est(!!cfg.gradCheckpoint);
  log(
    `memory estimate: ${formatBytes(e.bytes.total)} (activations ${formatBytes(e.bytes.activations)}) of ${formatBytes(e.device.bytes)} (${e.device.name})`,
  );
  if (e.fits) return cfg;
  if (!cfg.gradCheckpoint && est(true).fits) {
    log(`turning on gradient checkpointing: it brings the estimate down to ${formatBytes(est(true).bytes.total)}`);
    return { ...cfg, gradCheckpoint: true };
  }
  const best = est(true);
  // on the GPU, the optimizer's moments can wait in host memory (the paged optimizer)
  if (cfg.backend === 'webgpu' && best.bytes.total - best.bytes.optimizer <= (cfg.maxMemory ?? best.device.bytes)) {
    log(
      `turning on gradient checkpointing and the paged optimizer: the AdamW moments (${formatBytes(best.bytes.optimizer)}) stay in host memory`,
    );
    return { ...cfg, gradCheckpoint: true, pagedOptimizer: true };
  }
  throw new UserError(
    `this run needs about ${formatBytes(best.bytes.total)} even with gradient checkpointing (weights ${formatBytes(best.bytes.weights)}, activations ${formatBytes(best.bytes.activations)}), more than ${formatBytes(e.device.bytes)} (${e.device.name}); try a smaller --batch or --seq-len`,
    cfg.model,
  );
}

/** One training run's state: the adapter, optimizer moments, counters, metrics file and result. */
class Run {
  readonly be: Backend;
  readonly adapter: LoraAdapter;
  readonly params: ReturnType<LoraAdapter['params']>;
  readonly opt: OptState;
  readonly totalSteps: number;
  readonly warmup: number;
  readonly perStep: number;
  readonly dataHash: string;
  readonly result: TrainResult;
  state: TrainerState;
  /** the step this process started from (0, or the checkpoint's) */
  private firstStep = 0;
  private readonly runFile: string;
  private readonly metricsFile: string;
  private readonly peak: MemFigures;
  private readonly t0 = performance.now();
  private order: { epoch: number; idx: number[] } = { epoch: -1, idx: [] };

  constructor(
    readonly cfg: TrainConfig,
    readonly model: LlamaModel,
    readonly data: PreparedData,
    readonly runDir: string,
    readonly ev: TrainEvents,
  ) {
    const be = (this.be = model.be);
    this.runFile = path.join(runDir, 'run.json');
    this.metricsFile = path.join(runDir, 'metrics.jsonl');
    this.perStep = cfg.batch * cfg.gradAccum;
    this.totalSteps = totalStepsFor(cfg, data.train.count);
    this.warmup = warmupSteps(cfg.warmup, this.totalSteps);
    this.dataHash = createHash('sha256')
      .update(new Uint8Array(data.train.inputs.buffer))
      .update(new Uint8Array(data.train.targets.buffer))
      .digest('hex')
      .slice(0, 16);
    const lora: LoraConfig = { ...cfg.lora, baseModel: cfg.lora.baseModel ?? path.resolve(cfg.model) };
    this.adapter = model.adapter = cfg.initAdapter
      ? continued(cfg.initAdapter, lora, model, be)
      : LoraAdapter.create(model.spec, lora, be, new Rng(cfg.seed));
    this.adapter.allocGrads(be);
    this.params = this.adapter.params();
    const home = cfg.pagedOptimizer && !(be instanceof CpuBackend) ? new CpuBackend({ wasm: false }) : be;
    this.opt = {
      m: this.params.map((p) => home.zeros([...p.t.shape], 'optimizer')),
      v: this.params.map((p) => home.zeros([...p.t.shape], 'optimizer')),
      ...(home !== be ? { home } : {}),
    };
    if (home !== be)
      ev.onLog?.(
        `paged optimizer: AdamW moments (${this.params.reduce((a, p) => a + 8 * p.t.shape.reduce((x, y) => x * y, 1), 0)} bytes) in host memory, sent to the device per parameter`,
      );
    this.state = { step: 0, totalSteps: this.totalSteps, cursor: 0, rng: { seed: cfg.seed, step: 0 } };
    this.result = {
      status: 'completed',
      runDir,
      steps: 0,
      peakMem: be.mem.peak,
      trainableParams: this.adapter.trainableCount(),
      backend: be.name,
    };
    this.peak = { ...be.mem.peak };
  }

  resume(dir: string): void {
    const run = readJson(this.runFile);
    const was = run.data?.hash;
    if (was && was !== this.dataHash)
      throw new UserError(
        `cannot resume: the training data changed since this run started (its tokens hash to ${this.dataHash}, the run's to ${was})`,
        this.cfg.data,
      );
    const init = run.initAdapter?.hash;
    if (init && this.cfg.initAdapter && init !== fileHash(path.join(this.cfg.initAdapter, 'adapter_model.safetensors')))
      throw new UserError('cannot resume: the --init-adapter weights changed since this run started', this.cfg.initAdapter);
    const ck = resumeCheckpoint(this.runDir, this.adapter, this.opt, this.be, this.totalSteps, (l) => this.ev.onLog?.(l));
    if (!ck) return void this.ev.onLog?.(`no checkpoint in ${path.dirname(dir)} loads; starting from step 0`);
    this.state = ck.state;
    this.result.steps = this.state.step;
    this.firstStep = this.state.step;
    this.ev.onLog?.(`resumed from ${ck.dir} (step ${this.state.step} of ${this.totalSteps})`);
  }

  /** run.json, and metrics.jsonl cut back to the step the run starts from */
  start(): void {
    const { cfg, data, adapter } = this;
    writing(this.runDir, () => fs.mkdirSync(this.runDir, { recursive: true }), 'nothing was written');
    writeJsonAtomic(this.runFile, {
      config: cfg,
      lorakit: VERSION,
      node: process.version,
      backend: this.be.name,
      model: { dir: path.resolve(cfg.model), ...this.model.spec },
      data: {
        hash: this.dataHash,
        kind: data.kind,
        files: data.files,
        examples: data.examples,
        tokens: data.tokens,
        trainWindows: data.train.count,
        evalWindows: data.eval.count,
        skipped: data.skipped,
      },
      ...(cfg.initAdapter
        ? { initAdapter: { dir: path.resolve(cfg.initAdapter), hash: fileHash(path.join(cfg.initAdapter, 'adapter_model.safetensors')) } }
        : {}),
      totalSteps: this.totalSteps,
      warmupSteps: this.warmup,
      trainableParams: adapter.trainableCount(),
      started: new Date().toISOString(),
    });
    keepMetricsThrough(this.metricsFile, this.state.step);
    const asked = warmupAsked(cfg.warmup, this.totalSteps);
    if (asked > this.warmup)
      this.ev.onLog?.(
        `note: a warm-up of ${asked} step(s) would cover the whole run of ${this.totalSteps}; warming up for ${this.warmup}, so the last step runs at --lr ${cfg.lr}`,
      );
    this.ev.onLog?.(
      `training ${adapter.trainableCount()} LoRA parameters (r=${adapter.config.r}, ${adapter.modules.size} modules) for ${this.totalSteps} steps`,
    );
  }

  private append(row: object): void {
    const last = this.result.lastCheckpoint ?? latestCheckpoint(this.runDir);
    writing(
      this.metricsFile,
      () => fs.appendFileSync(this.metricsFile, JSON.stringify(row) + '\n'),
      last ? `the last checkpoint, ${last}, is kept` : 'no checkpoint was written yet',
    );
  }

  evaluate(step: number): void {
    if (this.data.eval.count === 0) return;
    const e = evaluateWindows(this.model, this.data.eval, this.cfg.batch);
    if (step === 0 && !Number.isFinite(e.loss)) this.checkBaseWeights(`the eval loss before training is ${e.loss}`);
    const row: EvalMetrics = { step, eval_loss: e.loss, eval_perplexity: Math.exp(e.loss), eval_tokens: e.tokens };
    this.append(row);
    this.ev.onEval?.(row);
    this.result.firstEvalLoss ??= e.loss;
    this.result.finalEvalLoss = e.loss;
  }

  checkpoint(): void {
    this.state.rng.step = this.state.step;
    const dir = saveCheckpoint(this.runDir, this.state, this.adapter, this.opt, this.be, this.cfg.keepCheckpoints);
    this.result.lastCheckpoint = dir;
    this.ev.onCheckpoint?.(dir, this.state.step);
  }

  /** A non-finite loss before the adapter has changed anything: when a base weight holds NaN/Inf, say which. */
  private checkBaseWeights(what: string): void {
    const bad = firstNonFinite(new TensorStore(this.cfg.model));
    if (bad)
      throw new UserError(
        `${what}: tensor "${bad.name}" of the model holds ${bad.value}; the base weights are damaged (not a learning-rate problem)`,
        bad.file,
      );
  }

  /** the training window at a position of the data stream: a seeded shuffle per epoch, or file order */
  private windowAt(cursor: number): number {
    const n = this.data.train.count;
    if (this.cfg.dataOrder === 'sequential') return cursor % n;
    const epoch = Math.floor(cursor / n);
    if (this.order.epoch !== epoch) this.order = { epoch, idx: epochOrder(n, this.cfg.seed, epoch) };
    return this.order.idx[cursor % n];
  }

  /** One optimizer step: gradAccum micro-batches, the NaN/Inf guard, clipping, AdamW, a metrics row. */
  step(): void {
    const { cfg, be, params, state } = this;
    const T = cfg.seqLen;
    const ts = performance.now();
    be.mem.resetPeak();
    const micro: { inputs: Int32Array; targets: Int32Array }[] = [];
    let scored = 0;
    for (let a = 0; a < cfg.gradAccum; a++) {
      const inputs = new Int32Array(cfg.batch * T);
      const targets = new Int32Array(cfg.batch * T);
      for (let b = 0; b < cfg.batch; b++) {
        const w = this.windowAt(state.cursor + a * cfg.batch + b);
        inputs.set(this.data.train.inputs.subarray(w * T, (w + 1) * T), b * T);
        targets.set(this.data.train.targets.subarray(w * T, (w + 1) * T), b * T);
      }
      for (const t of targets) if (t >= 0) scored++;
      micro.push({ inputs, targets });
    }
    this.adapter.zeroGrads(be);
    let lossSum = 0;
    micro.forEach((m, a) => {
      const r = this.model.lossAndGrad(
        m.inputs,
        m.targets,
        cfg.batch,
        T,
        1 / Math.max(1, scored),
        mixSeed(cfg.seed, state.step, a),
        !!cfg.gradCheckpoint,
      );
      lossSum += be.read(r.loss)[0];
      be.free(r.loss);
    });
    const loss = lossSum / Math.max(1, scored);
    const gradNorm = globalNorm(
      be,
      params.map((p) => p.g()!),
    );
    if (!Number.isFinite(loss) || !Number.isFinite(gradNorm)) {
      if (state.step === 0 || state.step === this.firstStep) this.checkBaseWeights(`step ${state.step + 1}: the loss is ${loss}`);
      const last = this.result.lastCheckpoint ?? (latestCheckpoint(this.runDir) || 'none');
      throw new UserError(
        `step ${state.step + 1}: loss is ${loss}, grad norm ${gradNorm} (NaN/Inf); stopped without applying the update. Last good checkpoint: ${last}. Try a lower --lr`,
        this.runDir,
      );
    }
    if (cfg.maxGradNorm > 0 && gradNorm > cfg.maxGradNorm)
      for (const p of params) be.scaleInPlace(p.g()!, cfg.maxGradNorm / (gradNorm + 1e-6));
    const lr = lrAt(state.step, this.totalSteps, this.warmup, cfg.lr, cfg.schedule);
    const hp = { lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: cfg.weightDecay, step: state.step + 1 };
    const home = this.opt.home;
    params.forEach((p, i) => {
      if (!home) return be.adamw(p.t, p.g()!, this.opt.m[i], this.opt.v[i], hp);
      // paged: this parameter's moments in, the update, the moments back out
      const m = be.upload(home.read(this.opt.m[i]).slice(), [...p.t.shape], 'optimizer');
      const v = be.upload(home.read(this.opt.v[i]).slice(), [...p.t.shape], 'optimizer');
      be.adamw(p.t, p.g()!, m, v, hp);
      home.write(this.opt.m[i], be.read(m));
      home.write(this.opt.v[i], be.read(v));
      be.free(m, v);
    });
    state.step++;
    state.cursor += this.perStep;
    const stepMs = performance.now() - ts;
    const mem = { ...be.mem.peak }; // this step's peak, by tag
    for (const k of Object.keys(this.peak) as (keyof MemFigures)[]) this.peak[k] = Math.max(this.peak[k], mem[k]);
    const row: StepMetrics = {
      step: state.step,
      total_steps: this.totalSteps,
      loss,
      lr,
      grad_norm: gradNorm,
      tokens_per_s: (this.perStep * T * 1000) / stepMs,
      step_ms: stepMs,
      mem,
      elapsed_s: (performance.now() - this.t0) / 1000,
    };
    this.append(row);
    this.ev.onStep?.(row);
    this.result.firstLoss ??= loss;
    this.result.finalLoss = loss;
    this.result.steps = state.step;
  }

  /** The final adapter (when completed) and the run's closing lines in run.json. */
  finish(): TrainResult {
    const r = this.result;
    if (r.status === 'completed') {
      r.adapterDir = path.join(this.runDir, 'adapter');
      saveAdapter(
        r.adapterDir,
        this.adapter,
        this.be,
        { 'README.md': adapterReadme(this.cfg, r) },
        `the last checkpoint, ${r.lastCheckpoint}, is kept (it holds the same adapter)`,
      );
      this.ev.onLog?.(`adapter written to ${r.adapterDir}`);
    }
    r.peakMem = this.peak;
    const run = readJson(this.runFile);
    writeJsonAtomic(this.runFile, {
      ...run,
      status: r.status,
      finished: new Date().toISOString(),
      steps: this.state.step,
      finalLoss: r.finalLoss,
      finalEvalLoss: r.finalEvalLoss,
      peakMem: r.peakMem,
    });
    return r;
  }
}

/**
 * The adapter of `--init-adapter`, to train on: its A and B as stored (B is not reset to zero), and its config
 * naming this run's base model. The optimizer state starts fresh, as PEFT's is_trainable=True load does.
 */
function continued(dir: string, lora: LoraConfig, model: LlamaModel, be: Backend): LoraAdapter {
  const loaded = loadAdapter(dir, model.spec, be);
  return new LoraAdapter({ ...loaded.config, baseModel: lora.baseModel }, loaded.modules);
}

/**
 * √Σ‖g‖² over all gradients: one device reduction and one read where the backend has sumSquaresAll (the GPU: one
 * wait per step instead of one per parameter); else each gradient's Σ g² (f32) added here in f64, the CPU's exact
 * sum, whose bits the trainer's kept references depend on.
 */
function globalNorm(be: Backend, grads: Tensor[]): number {
  if (be.sumSquaresAll) {
    const t = be.sumSquaresAll(grads);
    const s = be.read(t)[0];
    be.free(t);
    return Math.sqrt(s);
  }
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
