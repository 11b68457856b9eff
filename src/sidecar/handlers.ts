/**
 * The sidecar's methods: one handler per protocol method, in a map the compiler checks is complete. Each takes
 * validated params and returns a result, or throws (a UserError becomes a `user_error` the extension shows as is).
 * One training run at a time; its progress goes out as events. Completions run in the generation session
 * (completions.ts) beside it, and Serve's HTTP server over the same session (serving.ts); a request's context
 * carries its id and the signal a `cancel` notification aborts.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EventName, EventParams, Method, PROTOCOL_VERSION, Params, Result, StepEvent, TrainSettings } from '../protocol';
import {
  CancelledError,
  SafetensorsFile,
  TrainConfig,
  UserError,
  VERSION,
  autoChoice,
  bnbKind,
  createBackend,
  estimateMemory,
  evaluateFile,
  exportJob,
  exportForOllama,
  generate,
  hubCacheDir,
  listCachedModels,
  mergeQLoRA,
  openModel,
  openModelFolder,
  pullModel,
  readAdapterConfig,
  readFolder,
  readJson,
  resolveModel,
  resolveTrainConfig,
  tensorTotals,
  train,
  workspaceSizer,
} from '../engine';
import { Completions, RequestContext } from './completions';
import { Serving } from './serving';

export type Emit = <E extends EventName>(event: E, params: EventParams<E>) => void;
export type Handler<M extends Method> = (params: Params<M>, ctx: RequestContext) => Promise<Result<M>> | Result<M>;
export type Handlers = { [M in Method]: Handler<M> };

/** The panel's settings as a run's full config: what the panel does not set comes from the engine's defaults. */
export function trainConfig(s: TrainSettings, out: string): TrainConfig {
  const { model, data, steps, epochs, quant, doubleQuant, blocksize, ...rest } = s;
  const q = quant === 'none' ? { quant } : { quant, doubleQuant, blocksize }; // the panel keeps its 4-bit choices when off
  return resolveTrainConfig({ ...rest, ...q, model, data, out, ...(steps ? { steps } : { epochs }) });
}

/**
 * Step events batched, never dropped: at most one message every 100 ms carries every step since the last one (the
 * run's last step always goes out at once), so the live chart has every point, as a reload would show.
 */
export function stepBatcher(emit: Emit, intervalMs = 100) {
  let pending: StepEvent[] = [];
  let last = 0;
  let timer: NodeJS.Timeout | null = null;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (!pending.length) return;
    last = Date.now();
    emit('train/steps', { steps: pending });
    pending = [];
  };
  return {
    add(p: StepEvent): void {
      pending.push(p);
      if (p.step >= p.total_steps || Date.now() - last >= intervalMs) flush();
      else timer ??= setTimeout(flush, intervalMs - (Date.now() - last));
    },
    flush,
  };
}

export class Sidecar {
  private run: { ac: AbortController; pausing: boolean; runDir: string } | null = null;
  private pull: AbortController | null = null;
  readonly completions: Completions;
  readonly serving: Serving;
  readonly handlers: Handlers;

  constructor(private emit: Emit) {
    this.completions = new Completions(
      (line) => emit('log', { line }),
      (id, text) => emit('complete/delta', { id, text }),
    );
    this.serving = new Serving(this.completions, (line) => emit('log', { line }));
    this.handlers = {
      hello: () => this.hello(),
      estimate: (p) => this.estimate(p),
      'data/scan': (p) => this.scan(p),
      'model/info': (p) => this.modelInfo(p),
      'train/start': (p) => this.trainStart(p),
      'train/stop': () => this.trainStop(false),
      'train/pause': () => this.trainStop(true),
      eval: (p) => this.evaluate(p),
      generate: (p) => this.generate(p),
      merge: (p) => this.merge(p),
      'export/gguf': (p) => this.exportGguf(p),
      'adapters/load': (p) => this.adapterInfo(p),
      'export/job': (p) => this.exportJob(p),
      'hub/list': () => ({ cache: hubCacheDir(), models: listCachedModels().map((m) => ({ id: m.id, dir: m.dir })) }),
      'hub/pull': (p) => this.hubPull(p),
      'hub/cancel': () => ({ cancelling: !!this.pull && (this.pull.abort(), true) }),
      complete: (p, ctx) => this.completions.complete(p, ctx),
      'session/info': () => this.completions.info(),
      'serve/start': (p) => this.serving.start(p),
      'serve/stop': async () => ({ stopped: await this.serving.stop() }),
    };
  }

  /** The handler of a method name from the wire: own properties only (`toString` is not a method). */
  handlerOf(method: string): Handler<Method> | undefined {
    return Object.prototype.hasOwnProperty.call(this.handlers, method) ? (this.handlers[method as Method] as Handler<Method>) : undefined;
  }

  private hello(): Result<'hello'> {
    const cpu = `cpu (${os.cpus()[0]?.model ?? 'unknown'}, ${os.availableParallelism()} cores)`;
    let gpu: string | null = null;
    try {
      gpu = autoChoice().gpu?.name ?? null;
    } catch {
      /* no webgpu module here (a packaged extension without it): the CPU */
    }
    return {
      protocol: PROTOCOL_VERSION,
      version: VERSION,
      backends: gpu ? ['webgpu', 'cpu', 'cpu-reference'] : ['cpu', 'cpu-reference'],
      device: gpu ?? cpu,
      memoryBytes: os.totalmem(),
    };
  }

  private estimate({ settings: s }: Params<'estimate'>): Result<'estimate'> {
    const cfg = trainConfig(s, os.tmpdir());
    const folder = openModelFolder(s.model, cfg.quant ?? null);
    const e = estimateMemory({
      spec: folder.spec,
      lora: cfg.lora,
      seqLen: cfg.seqLen,
      batch: cfg.batch,
      quant: folder.quant,
      workspace: workspaceSizer(cfg.backend),
    });
    return {
      bytes: e.bytes,
      fits: e.fits,
      device: e.device,
      params: e.params,
      ...(e.bitsPerParam ? { bitsPerParam: e.bitsPerParam } : {}),
    };
  }

  private scan({ path: p }: Params<'data/scan'>): Result<'data/scan'> {
    if (!fs.existsSync(p)) throw new UserError('not found', p);
    if (!fs.statSync(p).isDirectory()) return { files: 1, bytes: fs.statSync(p).size, skipped: {} };
    const f = readFolder(p);
    const skipped: Record<string, number> = {};
    for (const s of f.skipped) skipped[s.reason] = (skipped[s.reason] ?? 0) + 1;
    return { files: f.files.length, bytes: f.files.reduce((a, x) => a + Buffer.byteLength(x.text), 0), skipped };
  }

  private modelInfo({ path: given }: Params<'model/info'>): Result<'model/info'> {
    const p = resolveModel(given);
    if (!fs.existsSync(path.join(p, 'config.json'))) throw new UserError('not a model folder (no config.json)', p);
    const folder = openModelFolder(p);
    const { params, bytes } = tensorTotals(folder.store);
    return { modelType: folder.spec.modelType, params, bytes, quantized: bnbKind(readJson(path.join(p, 'config.json'))) !== null };
  }

  private trainStart({ settings, out, resume }: Params<'train/start'>): Result<'train/start'> {
    if (this.run) throw new UserError(`a run is already going (${this.run.runDir}); stop it first`);
    const cfg = trainConfig(settings, out);
    const ac = new AbortController();
    const runDir = path.resolve(out);
    const run = (this.run = { ac, pausing: false, runDir });
    const steps = stepBatcher(this.emit);
    let running = false;
    this.emit('train/state', { state: 'preparing', runDir });
    // the run goes on after this request is answered; its end is a train/state event
    setImmediate(() => {
      train(cfg, {
        resume,
        signal: ac.signal,
        events: {
          onLog: (line) => this.emit('log', { line }),
          onStep: (m) => {
            if (!running) this.emit('train/state', { state: 'running', runDir });
            running = true;
            steps.add(m);
          },
          onEval: (m) => {
            steps.flush();
            this.emit('train/eval', m);
          },
        },
      })
        .then((r) => {
          steps.flush();
          const state = r.status === 'completed' ? 'done' : run.pausing ? 'paused' : 'stopped';
          const message =
            r.status === 'completed'
              ? `finished ${r.steps} steps`
              : `${run.pausing ? 'paused' : 'stopped'} at step ${r.steps}; checkpoint kept`;
          this.emit('train/state', { state, runDir, adapterDir: r.adapterDir, lastCheckpoint: r.lastCheckpoint, message });
        })
        .catch((e: Error) => {
          steps.flush();
          this.emit('train/state', { state: 'failed', runDir, message: e.message });
        })
        .finally(() => {
          if (this.run === run) this.run = null;
        });
    });
    return { runDir };
  }

  /** stop (or pause: the same, but the run is meant to be resumed) after the current step; the checkpoint is kept */
  private trainStop(pause: true): Result<'train/pause'>;
  private trainStop(pause: false): Result<'train/stop'>;
  private trainStop(pause: boolean): Result<'train/stop'> | Result<'train/pause'> {
    if (!this.run) return pause ? { pausing: false } : { stopping: false };
    this.run.pausing = pause;
    this.run.ac.abort();
    this.emit('train/state', { state: pause ? 'pausing' : 'stopping', runDir: this.run.runDir });
    return pause ? { pausing: true } : { stopping: true };
  }

  private evaluate({ model, adapter, data }: Params<'eval'>): Result<'eval'> {
    const { be } = createBackend('auto');
    const m = openModel(model, be, adapter);
    const r = evaluateFile(m.model, m.tokenizer, data, Infinity);
    return { loss: r.loss, perplexity: r.perplexity, tokens: r.tokens };
  }

  private async generate({ model, adapter, prompt, maxNewTokens, quant }: Params<'generate'>): Promise<Result<'generate'>> {
    const { be } = createBackend('auto');
    const q = quant && quant !== 'none' ? { type: quant, blocksize: 64, doubleQuant: true } : null;
    const m = openModel(model, be, adapter, q);
    const g = await generate(m.model, m.tokenizer, prompt, { maxNewTokens, temperature: 0 });
    return { text: g.text, newTokens: g.newTokens, tokensPerS: g.tokensPerS };
  }

  private exportGguf({ model, adapter, outDir, type }: Params<'export/gguf'>): Result<'export/gguf'> {
    const r = exportForOllama({ model, adapter, outDir, type });
    return {
      outDir: r.outDir,
      model: r.model.out,
      adapter: r.adapter.out,
      modelfile: r.modelfile,
      templateNote: r.templateNote,
      ollamaCreate: r.ollamaCreate,
    };
  }

  private merge({ model, adapter, out }: Params<'merge'>): Result<'merge'> {
    const r = mergeQLoRA({ model, adapters: [{ dir: adapter, weight: 1 }], out });
    return { out: r.out, mergedInto: r.mergedInto.dir, kind: r.mergedInto.kind, mergedModules: r.mergedModules };
  }

  private exportJob({ settings, out }: Params<'export/job'>): Result<'export/job'> {
    const r = exportJob(trainConfig(settings, out), { target: 'hf', out });
    return { out: r.out, trainWindows: r.trainWindows, evalWindows: r.evalWindows, totalSteps: r.totalSteps, warnings: r.warnings };
  }

  /** one download at a time; a cancel keeps the partial file for the next pull */
  private async hubPull({ id, planOnly }: Params<'hub/pull'>): Promise<Result<'hub/pull'>> {
    if (this.pull) throw new UserError('a download is already going; wait for it or cancel it');
    const ac = (this.pull = new AbortController());
    try {
      const r = await pullModel(id, {
        signal: ac.signal,
        planOnly,
        onProgress: (g) => this.emit('hub/progress', { id, ...g, etaS: Number.isFinite(g.etaS) ? g.etaS : -1 }),
      });
      const p = r.plan;
      const plan = p && {
        modelType: p.spec.modelType,
        files: p.files.length,
        totalBytes: p.totalBytes,
        downloadBytes: p.downloadBytes,
        trainBytes: p.estimate.bytes.total,
        fits: p.estimate.fits,
        device: p.estimate.device,
      };
      return { dir: r.dir, commit: r.commit, downloadedBytes: r.downloadedBytes, cancelled: false, ...(plan ? { plan } : {}) };
    } catch (e) {
      if (e instanceof CancelledError) return { dir: '', commit: '', downloadedBytes: 0, cancelled: true };
      throw e;
    } finally {
      this.pull = null;
    }
  }

  private adapterInfo({ path: p }: Params<'adapters/load'>): Result<'adapters/load'> {
    const c = readAdapterConfig(p);
    const f = new SafetensorsFile(path.join(p, 'adapter_model.safetensors'));
    const { params } = tensorTotals(f);
    return { r: c.r, alpha: c.alpha, modules: f.names().length / 2, params, baseModel: c.baseModel ?? null };
  }
}
