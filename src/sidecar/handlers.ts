/**
 * The sidecar's methods: each takes validated params and returns a result, or throws (a UserError becomes a
 * `user_error` the extension shows as is). One training run at a time; its progress goes out as events.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EventName, EventParams, Method, PROTOCOL_VERSION, Params, Result, TrainSettings } from '../protocol';
import { UserError } from '../engine/errors';
import { estimateMemory } from '../engine/estimate';
import { loadSpec } from '../engine/formats/config';
import { SafetensorsFile, TensorStore, tensorTotals } from '../engine/formats/safetensors';
import { readFolder } from '../engine/data/folder';
import { defaultLoraConfig, parseTargets } from '../engine/lora/config';
import { readAdapterConfig } from '../engine/lora/peft';
import { quantFor } from '../engine/model/weights';
import { QuantConfig } from '../engine/quant/weight';
import { mergeQLoRA } from '../engine/quant/qmerge';
import { createBackend, mayHaveGpu } from '../engine/backend/select';
import { WebGpuBackend } from '../engine/backend/webgpu/webgpu';
import { openModel } from '../engine/session';
import { evaluateFile } from '../engine/evaluate';
import { generate } from '../engine/generate';
import { TrainConfig, train } from '../engine/train/trainer';
import { VERSION } from '../engine/version';
import { bnbKind } from '../engine/quant/bnb';
import { readJson } from '../engine/util/fsx';

export type Emit = <E extends EventName>(event: E, params: EventParams<E>) => void;

const quantOf = (s: TrainSettings): QuantConfig | null => (s.quant === 'none' ? null : { type: s.quant, blocksize: s.blocksize, doubleQuant: s.doubleQuant });

export function trainConfig(s: TrainSettings, out: string): TrainConfig {
  return {
    model: s.model, data: s.data, out,
    lora: defaultLoraConfig({ r: s.rank, alpha: s.alpha, dropout: s.dropout, targetModules: s.targets === 'all-linear' ? 'all-linear' : parseTargets(s.targets) }),
    seqLen: s.seqLen, batch: s.batch, gradAccum: s.gradAccum, lr: s.lr, steps: s.steps, epochs: s.steps ? undefined : s.epochs,
    warmup: 0.03, schedule: 'cosine', evalSplit: 0.05, seed: 0, keepCheckpoints: 3, maxGradNorm: 1, weightDecay: 0,
    backend: s.backend, quant: quantOf(s), checkpointEvery: 10,
  };
}

/** Progress events at most every 100 ms (the last step of a run always goes out). */
function throttled(emit: Emit) {
  let last = 0;
  return (p: EventParams<'train/step'>) => {
    const now = Date.now();
    if (now - last < 100 && p.step < p.total_steps) return;
    last = now;
    emit('train/step', p);
  };
}

export class Sidecar {
  private run: { ac: AbortController; pausing: boolean; runDir: string } | null = null;

  constructor(private emit: Emit) {}

  async handle<M extends Method>(method: M, params: Params<M>): Promise<Result<M>> {
    const h = (this as any)[`m_${method.replace('/', '_')}`] as ((p: Params<M>) => Promise<Result<M>> | Result<M>) | undefined;
    if (!h) throw new UserError(`unknown method ${method}`);
    return h.call(this, params);
  }

  m_hello(): Result<'hello'> {
    const cpu = `cpu (${os.cpus()[0]?.model ?? 'unknown'}, ${os.availableParallelism()} cores)`;
    let gpu: string | null = null;
    if (mayHaveGpu()) {
      try {
        const info = WebGpuBackend.probe();
        if (info.chosen?.type === 'gpu') gpu = info.chosen.name;
      } catch {
        /* no webgpu module here (a packaged extension without it): the CPU */
      }
    }
    return { protocol: PROTOCOL_VERSION, version: VERSION, backends: gpu ? ['webgpu', 'cpu', 'cpu-reference'] : ['cpu', 'cpu-reference'], device: gpu ?? cpu, memoryBytes: os.totalmem() };
  }

  m_estimate({ settings: s }: Params<'estimate'>): Result<'estimate'> {
    const spec = loadSpec(s.model);
    const quant = quantFor(s.model, quantOf(s));
    const cfg = trainConfig(s, os.tmpdir());
    const e = estimateMemory({ spec, lora: cfg.lora, seqLen: s.seqLen, batch: s.batch, quant });
    return { bytes: e.bytes, fits: e.fits, device: e.device, params: e.params, ...(e.bitsPerParam ? { bitsPerParam: e.bitsPerParam } : {}) };
  }

  m_data_scan({ path: p }: Params<'data/scan'>): Result<'data/scan'> {
    if (!fs.existsSync(p)) throw new UserError('not found', p);
    if (!fs.statSync(p).isDirectory()) return { files: 1, bytes: fs.statSync(p).size, skipped: {} };
    const f = readFolder(p);
    const skipped: Record<string, number> = {};
    for (const s of f.skipped) skipped[s.reason] = (skipped[s.reason] ?? 0) + 1;
    return { files: f.files.length, bytes: f.files.reduce((a, x) => a + Buffer.byteLength(x.text), 0), skipped };
  }

  m_model_info({ path: p }: Params<'model/info'>): Result<'model/info'> {
    if (!fs.existsSync(path.join(p, 'config.json'))) throw new UserError('not a model folder (no config.json)', p);
    const spec = loadSpec(p);
    const { params, bytes } = tensorTotals(new TensorStore(p));
    return { modelType: spec.modelType, params, bytes, quantized: bnbKind(readJson(path.join(p, 'config.json'))) !== null };
  }

  m_train_start({ settings, out, resume }: Params<'train/start'>): Result<'train/start'> {
    if (this.run) throw new UserError(`a run is already going (${this.run.runDir}); stop it first`);
    const cfg = trainConfig(settings, out);
    const ac = new AbortController();
    const runDir = path.resolve(out);
    const run = (this.run = { ac, pausing: false, runDir });
    const step = throttled(this.emit);
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
            step(m);
          },
          onEval: (m) => this.emit('train/eval', m),
        },
      })
        .then((r) => {
          const state = r.status === 'completed' ? 'done' : run.pausing ? 'paused' : 'stopped';
          this.emit('train/state', { state, runDir, adapterDir: r.adapterDir, lastCheckpoint: r.lastCheckpoint, message: r.status === 'completed' ? `finished ${r.steps} steps` : `stopped at step ${r.steps}; checkpoint kept` });
        })
        .catch((e: Error) => this.emit('train/state', { state: 'failed', runDir, message: e.message }))
        .finally(() => {
          if (this.run === run) this.run = null;
        });
    });
    return { runDir };
  }

  m_train_stop(): Result<'train/stop'> {
    if (!this.run) return { stopping: false };
    this.run.ac.abort();
    this.emit('train/state', { state: 'stopping', runDir: this.run.runDir });
    return { stopping: true };
  }

  m_train_pause(): Result<'train/pause'> {
    if (!this.run) return { pausing: false };
    this.run.pausing = true;
    this.run.ac.abort();
    this.emit('train/state', { state: 'pausing', runDir: this.run.runDir });
    return { pausing: true };
  }

  m_eval({ model, adapter, data }: Params<'eval'>): Result<'eval'> {
    const { be } = createBackend('auto');
    const m = openModel(model, be, adapter);
    const r = evaluateFile(m.model, m.tokenizer, data, Infinity);
    return { loss: r.loss, perplexity: r.perplexity, tokens: r.tokens };
  }

  async m_generate({ model, adapter, prompt, maxNewTokens, quant }: Params<'generate'>): Promise<Result<'generate'>> {
    const { be } = createBackend('auto');
    const q = quant && quant !== 'none' ? { type: quant, blocksize: 64, doubleQuant: true } : null;
    const m = openModel(model, be, adapter, q);
    const g = await generate(m.model, m.tokenizer, prompt, { maxNewTokens, temperature: 0 });
    return { text: g.text, newTokens: g.newTokens, tokensPerS: g.tokensPerS };
  }

  m_merge({ model, adapter, out }: Params<'merge'>): Result<'merge'> {
    const r = mergeQLoRA({ model, adapters: [{ dir: adapter, weight: 1 }], out });
    return { out: r.out, mergedInto: r.mergedInto.dir, kind: r.mergedInto.kind, mergedModules: r.mergedModules };
  }

  m_adapters_load({ path: p }: Params<'adapters/load'>): Result<'adapters/load'> {
    const c = readAdapterConfig(p);
    const f = new SafetensorsFile(path.join(p, 'adapter_model.safetensors'));
    const { params } = tensorTotals(f);
    return { r: c.r, alpha: c.alpha, modules: f.names().length / 2, params, baseModel: c.baseModel ?? null };
  }
}
