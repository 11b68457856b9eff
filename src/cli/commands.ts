/** The CLI's commands: each parses its flags, calls the engine, and prints a summary or one JSON object. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BackendName, BACKEND_NAMES, createBackend } from '../engine/backend/select';
import { UserError } from '../engine/errors';
import { loadSpec } from '../engine/formats/config';
import { evaluateFile } from '../engine/evaluate';
import { estimateMemory, formatBytes } from '../engine/estimate';
import { generate } from '../engine/generate';
import { defaultLoraConfig, LoraConfig, parseTargets } from '../engine/lora/config';
import { mergeQLoRA } from '../engine/quant/qmerge';
import { openModel } from '../engine/session';
import { ScheduleName, SCHEDULES } from '../engine/train/schedule';
import { TrainConfig, train } from '../engine/train/trainer';
import { describe } from './info';
import { formatDuration } from '../engine/util/format';
import { DEFAULT_BLOCKSIZE, QUANT_TYPES, QuantType, checkBlocksize } from '../engine/quant/blockwise';
import { QuantConfig } from '../engine/quant/weight';
import { quantizeModel } from '../engine/quant/quantize';
import { quantFor } from '../engine/model/weights';
import { WebGpuBackend } from '../engine/backend/webgpu/webgpu';
import { FlagSpec, Parsed, UsageError, need, parseFlags } from './args';

interface Command {
  help: string;
  run(argv: string[]): Promise<void>;
}

const out = (s: string) => process.stdout.write(s + '\n');
const err = (s: string) => process.stderr.write(s + '\n');

const QUANT_FLAGS: FlagSpec = { quant: 'string', 'double-quant': 'boolean', blocksize: 'number' };

const LORA_FLAGS: FlagSpec = {
  rank: 'number', alpha: 'number', dropout: 'number', targets: 'string', rslora: 'boolean',
  'seq-len': 'number', batch: 'number', ...QUANT_FLAGS,
};

function loraFrom(p: Parsed): LoraConfig {
  return defaultLoraConfig({
    r: (p.rank as number) ?? 8,
    alpha: (p.alpha as number) ?? 16,
    dropout: (p.dropout as number) ?? 0.05,
    targetModules: p.targets ? parseTargets(p.targets as string) : 'all-linear',
    useRslora: !!p.rslora,
  });
}

/** --quant none|nf4|fp4 [--double-quant] [--blocksize 64]: null for none */
function quantFrom(p: Parsed, dflt = 'none'): QuantConfig | null {
  const q = (p.quant as string) ?? dflt;
  if (q === 'none') {
    if (p['double-quant'] || p.blocksize !== undefined) throw new UsageError('--double-quant and --blocksize need --quant nf4|fp4');
    return null;
  }
  if (!QUANT_TYPES.includes(q as QuantType)) throw new UsageError(`--quant must be none, nf4 or fp4, got "${q}"`);
  const blocksize = (p.blocksize as number) ?? DEFAULT_BLOCKSIZE;
  checkBlocksize(blocksize, '--blocksize');
  return { type: q as QuantType, blocksize, doubleQuant: !!p['double-quant'] };
}

const QUANT_HELP = `  --quant none|nf4|fp4 [--double-quant] [--blocksize 64]
                       QLoRA: hold the decoder's linear weights in 4 bits, quantized on load (a bnb-4bit model
                       folder is read as stored; --quant may then be left out)`;

function backendFrom(p: Parsed): BackendName {
  const b = (p.backend as string) ?? 'auto';
  if (!BACKEND_NAMES.includes(b as BackendName)) throw new UsageError(`--backend must be one of ${BACKEND_NAMES.join(', ')}`);
  return b as BackendName;
}

const trainCmd: Command = {
  help: `lorakit train --model DIR --data PATH [options]

  --data PATH          a folder (honours .gitignore), a .txt/.md file, or .jsonl (text | prompt+completion | messages | input_ids)
  --out DIR            run folder (default runs/<time>): run.json, metrics.jsonl, checkpoints/, adapter/
  --rank 8 --alpha 16 --dropout 0.05 --targets all-linear|q_proj,v_proj,… --rslora
  --seq-len 512 --batch 4 --grad-accum 1 --lr 2e-4 --steps N | --epochs E (default 3 epochs)
  --warmup 0.03 (fraction, or steps if ≥ 1) --schedule cosine|linear|constant --weight-decay 0 --max-grad-norm 1
  --eval-split 0.05 --eval-every N --seed 0 --checkpoint-every N --keep-checkpoints 3
  --grad-checkpoint    keep one layer's activations at a time (recomputed in the backward pass): less memory, ~⅓ slower;
                       turned on by itself when the estimate does not fit otherwise
  --max-memory GiB     the memory the run must fit in (default 90% of RAM); checked before loading
  --resume             continue the run in --out from its last checkpoint
${QUANT_HELP}
  --backend auto|cpu|cpu-reference|webgpu [--device NAME]   --json
  --paged-optimizer    (webgpu) keep the AdamW moments in host memory, sent to the device per parameter
                       auto takes a hardware WebGPU adapter when there is one (lorakit info --devices lists them)
`,
  async run(argv) {
    const p = parseFlags(argv, {
      ...LORA_FLAGS, model: 'string', data: 'string', out: 'string', 'grad-accum': 'number', lr: 'number', steps: 'number',
      epochs: 'number', warmup: 'number', schedule: 'string', 'eval-split': 'number', 'eval-every': 'number', seed: 'number',
      'checkpoint-every': 'number', 'keep-checkpoints': 'number', resume: 'boolean', backend: 'string', json: 'boolean',
      'max-grad-norm': 'number', 'weight-decay': 'number', 'grad-checkpoint': 'boolean', 'max-memory': 'number', device: 'string', 'paged-optimizer': 'boolean',
    });
    const quant = quantFrom(p);
    const schedule = (p.schedule as string) ?? 'cosine';
    if (!SCHEDULES.includes(schedule as ScheduleName)) throw new UsageError(`--schedule must be one of ${SCHEDULES.join(', ')}`);
    if (p.steps !== undefined && p.epochs !== undefined) throw new UsageError('give --steps or --epochs, not both');
    const cfg: TrainConfig = {
      model: need<string>(p, 'model'),
      data: need<string>(p, 'data'),
      out: (p.out as string) ?? path.join('runs', new Date().toISOString().replace(/[:.]/g, '-')),
      lora: loraFrom(p),
      seqLen: (p['seq-len'] as number) ?? 512,
      batch: (p.batch as number) ?? 4,
      gradAccum: (p['grad-accum'] as number) ?? 1,
      lr: (p.lr as number) ?? 2e-4,
      steps: p.steps as number | undefined,
      epochs: p.epochs as number | undefined,
      warmup: (p.warmup as number) ?? 0.03,
      schedule: schedule as ScheduleName,
      evalSplit: (p['eval-split'] as number) ?? 0.05,
      evalEvery: p['eval-every'] as number | undefined,
      seed: (p.seed as number) ?? 0,
      checkpointEvery: p['checkpoint-every'] as number | undefined,
      keepCheckpoints: (p['keep-checkpoints'] as number) ?? 3,
      maxGradNorm: (p['max-grad-norm'] as number) ?? 1,
      weightDecay: (p['weight-decay'] as number) ?? 0,
      backend: backendFrom(p),
      gradCheckpoint: !!p['grad-checkpoint'],
      maxMemory: p['max-memory'] !== undefined ? (p['max-memory'] as number) * 2 ** 30 : undefined,
      quant,
      device: p.device as string | undefined,
      pagedOptimizer: !!p['paged-optimizer'],
    };
    const ac = new AbortController();
    const onSig = () => {
      err('stopping after this step (checkpoint will be kept)…');
      ac.abort();
    };
    process.once('SIGINT', onSig);
    process.once('SIGTERM', onSig);
    const r = await train(cfg, {
      resume: !!p.resume,
      signal: ac.signal,
      events: {
        onLog: (l) => err(l),
        onStep: (m) => {
          const eta = ((m.total_steps - m.step) * m.step_ms) / 1000;
          err(`step ${m.step}/${m.total_steps}  loss ${m.loss.toFixed(4)}  lr ${m.lr.toExponential(2)}  grad_norm ${m.grad_norm.toFixed(3)}  ${m.tokens_per_s.toFixed(0)} tok/s  peak ${formatBytes(m.mem.total)}  ETA ${formatDuration(eta)}`);
        },
        onEval: (m) => err(`eval @ step ${m.step}: loss ${m.eval_loss.toFixed(4)}  ppl ${m.eval_perplexity.toFixed(2)}  (${m.eval_tokens} tokens)`),
        onCheckpoint: (d) => err(`checkpoint: ${d}`),
      },
    });
    process.off('SIGINT', onSig);
    process.off('SIGTERM', onSig);
    if (p.json) out(JSON.stringify(r));
    else {
      out(`${r.status}: ${r.steps} steps on ${r.backend}`);
      out(`train loss ${r.firstLoss?.toFixed(4)} → ${r.finalLoss?.toFixed(4)}` + (r.firstEvalLoss !== undefined ? `; eval loss ${r.firstEvalLoss.toFixed(4)} → ${r.finalEvalLoss?.toFixed(4)}` : ''));
      out(`peak memory ${formatBytes(r.peakMem.total)}; run folder ${r.runDir}`);
      if (r.adapterDir) out(`adapter: ${r.adapterDir}`);
      else out(`last checkpoint: ${r.lastCheckpoint} (continue with --resume)`);
    }
    if (r.status === 'cancelled') process.exitCode = 130;
  },
};

const evalCmd: Command = {
  help: `lorakit eval --model DIR --data PATH [--adapter DIR] [--seq-len N] [--quant nf4|fp4 [--double-quant] [--blocksize 64]]
             [--backend …] [--json]
  → {"loss": mean next-token cross-entropy over all scored tokens, "perplexity", "tokens", "sequences"}
  Each example is scored on its own, whole; with --seq-len, longer ones are cut into N-token pieces that overlap
  by one token, each scored on its own.
`,
  async run(argv) {
    const p = parseFlags(argv, { model: 'string', adapter: 'string', data: 'string', 'seq-len': 'number', backend: 'string', device: 'string', json: 'boolean', ...QUANT_FLAGS });
    const quant = quantFrom(p);
    const seqLen = (p['seq-len'] as number) ?? Infinity;
    if (!(seqLen === Infinity || (Number.isInteger(seqLen) && seqLen >= 2))) throw new UserError(`--seq-len must be an integer ≥ 2, got ${seqLen}`);
    const { be } = createBackend(backendFrom(p), p.device as string | undefined);
    const { model, tokenizer, quant: held } = openModel(need(p, 'model'), be, p.adapter as string | undefined, quant);
    const r = { ...evaluateFile(model, tokenizer, need(p, 'data'), seqLen), quant: held };
    if (p.json) out(JSON.stringify(r));
    else out(`loss ${r.loss.toFixed(6)}  perplexity ${r.perplexity.toFixed(3)}  (${r.tokens} tokens in ${r.sequences} sequences)`);
  },
};

const generateCmd: Command = {
  help: `lorakit generate --model DIR --prompt TEXT [--adapter DIR] [--max-new-tokens 64] [--temperature 0] [--top-p 1] [--seed 0]
                 [--chat] [--quant nf4|fp4 [--double-quant] [--blocksize 64]] [--json]
  --chat   send the prompt as a user turn through the model's chat template
`,
  async run(argv) {
    const p = parseFlags(argv, {
      model: 'string', adapter: 'string', prompt: 'string', 'max-new-tokens': 'number', temperature: 'number', 'top-p': 'number',
      seed: 'number', backend: 'string', device: 'string', json: 'boolean', chat: 'boolean', ...QUANT_FLAGS,
    });
    const { be } = createBackend(backendFrom(p), p.device as string | undefined);
    const { model, tokenizer } = openModel(need(p, 'model'), be, p.adapter as string | undefined, quantFrom(p));
    const prompt = need<string>(p, 'prompt');
    const g = await generate(model, tokenizer, prompt, {
      maxNewTokens: (p['max-new-tokens'] as number) ?? 64,
      temperature: (p.temperature as number) ?? 0,
      topP: (p['top-p'] as number) ?? 1,
      seed: (p.seed as number) ?? 0,
      chat: !!p.chat,
      onText: p.json ? undefined : (d) => process.stdout.write(d),
    });
    if (p.json) out(JSON.stringify(g));
    else {
      out('');
      err(`(${g.newTokens} tokens, ${g.tokensPerS.toFixed(1)} tok/s${p.adapter ? ', with adapter' : ''})`);
    }
  },
};

const mergeCmd: Command = {
  help: `lorakit merge --model DIR --adapter DIR [--adapter DIR2 … --weights 0.7,0.3] --out DIR [--dtype f32|f16|bf16] [--json]
                    [--requantize [--quant nf4|fp4 --double-quant --blocksize 64] [--data PATH]]
  Writes W + Σ wᵢ·(alphaᵢ/rᵢ)·Bᵢ·Aᵢ as a new Hugging Face folder; the base is never modified.
  After QLoRA the merge goes into full-precision weights: the model given, or the full-precision original of a
  bnb-4bit folder made by lorakit quantize. --requantize writes the merged model as bnb-4bit (the base's or the
  run's quantization unless --quant says otherwise) and reports the eval loss of both merges (on --data, or the
  adapter's run's eval split).
`,
  async run(argv) {
    const p = parseFlags(argv, { model: 'string', adapter: 'list', weights: 'string', out: 'string', dtype: 'string', json: 'boolean', requantize: 'boolean', data: 'string', ...QUANT_FLAGS });
    const adapters = need<string[]>(p, 'adapter');
    let weights = adapters.map(() => 1);
    if (p.weights !== undefined) {
      weights = (p.weights as string).split(',').map(Number);
      if (weights.length !== adapters.length || weights.some((w) => !Number.isFinite(w)))
        throw new UsageError(`--weights needs ${adapters.length} comma-separated numbers, one per --adapter`);
    }
    const dtype = p.dtype as string | undefined;
    if (dtype !== undefined && !['f32', 'f16', 'bf16'].includes(dtype)) throw new UsageError('--dtype must be f32, f16 or bf16');
    const quant = quantFrom(p);
    if (quant && !p.requantize) throw new UsageError('--quant on merge sets how --requantize quantizes; add --requantize');
    if (p.data && !p.requantize) throw new UsageError('--data on merge is for comparing the two merges of --requantize');
    const r = mergeQLoRA({
      model: need(p, 'model'), adapters: adapters.map((dir, i) => ({ dir, weight: weights[i] })), out: need(p, 'out'), dtype: dtype as 'f32' | undefined,
      requantize: p.requantize ? quant ?? true : undefined, data: p.data as string | undefined,
    });
    if (p.json) out(JSON.stringify(r));
    else {
      out(`merged ${r.mergedModules} weights from ${adapters.length} adapter(s) into ${r.mergedInto.dir} (${r.mergedInto.kind})`);
      const q = r.requantized;
      if (!q) out(`wrote ${r.out} (dtype ${r.dtype})`);
      else {
        out(`wrote ${r.out} as bnb-4bit ${q.quant.type.toUpperCase()}${q.quant.doubleQuant ? ' + DQ' : ''}, blocks of ${q.quant.blocksize}`);
        if (q.evalLoss) out(`eval loss: full-precision merge ${q.evalLoss.fullPrecision.toFixed(5)}, requantized ${q.evalLoss.requantized.toFixed(5)} (${q.evalLoss.difference >= 0 ? '+' : ''}${q.evalLoss.difference.toFixed(5)}) on ${q.evalLoss.data}`);
        else out('eval loss not compared: pass --data (the adapter has no run folder with an eval split)');
      }
    }
  },
};

const estimateCmd: Command = {
  help: `lorakit estimate --model DIR [--rank 8] [--targets …] [--seq-len 512] [--batch 4] [--dropout 0.05] [--grad-checkpoint]
                 [--quant nf4|fp4 [--double-quant] [--blocksize 64]] [--json]
  → bytes per tag (weights, lora, optimizer, activations, workspace), the total, and whether it fits the device;
    with --quant (or on a bnb-4bit model), the stored bits per quantized parameter
`,
  async run(argv) {
    const p = parseFlags(argv, { ...LORA_FLAGS, model: 'string', json: 'boolean', backend: 'string', 'grad-accum': 'number', lr: 'number', steps: 'number', 'grad-checkpoint': 'boolean' });
    const spec = loadSpec(need(p, 'model'));
    const quant = quantFor(need(p, 'model'), quantFrom(p));
    const lora = loraFrom(p);
    if (!(Number.isInteger(lora.r) && lora.r > 0)) throw new UserError(`--rank must be a positive integer, got ${lora.r}`);
    const e = estimateMemory({ spec, lora, seqLen: (p['seq-len'] as number) ?? 512, batch: (p.batch as number) ?? 4, gradCheckpoint: !!p['grad-checkpoint'], quant });
    if (p.json) out(JSON.stringify(e));
    else {
      for (const [k, v] of Object.entries(e.bytes)) out(`${k.padEnd(12)} ${formatBytes(v)}`);
      out(`${e.fits ? 'fits' : 'does NOT fit'} in ${e.device.name}: ${formatBytes(e.device.bytes)}`);
      out(`parameters: base ${e.params.base.toLocaleString('en')}, trainable ${e.params.trainable.toLocaleString('en')}`);
      if (quant) out(`quantized: ${e.params.quantized.toLocaleString('en')} parameters in ${quant.type.toUpperCase()}${quant.doubleQuant ? ' + DQ' : ''}, ${e.bitsPerParam!.toFixed(3)} bits each`);
    }
  },
};

const quantizeCmd: Command = {
  help: `lorakit quantize --model DIR --out DIR [--quant nf4|fp4] [--double-quant] [--blocksize 64] [--json]
  Writes the model in the Hugging Face bnb-4bit layout (as transformers + bitsandbytes save it): the decoder's
  linear weights as 4-bit codes and scales, everything else as stored, quantization_config in config.json.
  Default --quant nf4. The source is never modified; the new folder records where it came from.
`,
  async run(argv) {
    const p = parseFlags(argv, { model: 'string', out: 'string', json: 'boolean', ...QUANT_FLAGS });
    const cfg = quantFrom(p, 'nf4');
    if (!cfg) throw new UsageError('--quant none: nothing to do (choose nf4 or fp4)');
    const r = quantizeModel(need(p, 'model'), need(p, 'out'), cfg, p.json ? undefined : (n) => err(`quantizing ${n}`));
    if (p.json) out(JSON.stringify(r));
    else out(`quantized ${r.quantized} weights (${r.params.toLocaleString('en')} parameters) to ${cfg.type.toUpperCase()}${cfg.doubleQuant ? ' + double quantization' : ''}, blocks of ${cfg.blocksize}: ${formatBytes(r.bytes)}, ${r.bitsPerParam.toFixed(3)} bits a parameter → ${r.out}`);
  },
};

const infoCmd: Command = {
  help: `lorakit info --model DIR|FILE [--json]
lorakit info --devices [--json]
  Describes a model folder (architecture, parameters, dtypes, tokenizer), a .safetensors file, a PEFT adapter
  folder, or a run folder (status, steps, losses, checkpoints, adapter). --devices lists the WebGPU adapters found,
  with their features and limits, and which one --backend auto would take.
`,
  async run(argv) {
    const p = parseFlags(argv, { model: 'string', json: 'boolean', devices: 'boolean' });
    if (p.devices) {
      const info = WebGpuBackend.probe();
      if (p.json) return void out(JSON.stringify(info));
      if (!info.adapters.length) return void out(`no WebGPU adapter found${info.error ? ` (${info.error})` : ''}; training runs on the CPU`);
      for (const a of info.adapters)
        out(`${a === info.chosen || a.name === info.chosen?.name ? '* ' : '  '}${a.name} [${a.type === 'cpu' ? 'software, on the CPU' : 'hardware GPU'}]\n    features: ${a.features.join(', ')}\n    max storage binding ${formatBytes(a.maxStorageBufferBindingSize)}, max buffer ${formatBytes(a.maxBufferSize)}`);
      return;
    }
    const target = need<string>(p, 'model');
    if (!fs.existsSync(target)) throw new UserError('not found', target);
    const d = describe(target);
    if (p.json) out(JSON.stringify(d));
    else out(d.text);
  },
};


export const COMMANDS: Record<string, Command> = {
  train: trainCmd,
  eval: evalCmd,
  generate: generateCmd,
  merge: mergeCmd,
  estimate: estimateCmd,
  quantize: quantizeCmd,
  info: infoCmd,
};
