/** The CLI's commands besides train (train.ts): each parses its flags, calls the engine, and prints a summary or one JSON object. */
import * as fs from 'node:fs';
import {
  UserError,
  cpuKernels,
  createBackend,
  estimateMemory,
  evaluateFile,
  formatBytes,
  generate,
  mergeQLoRA,
  openModel,
  openModelFolder,
  DEFAULT_EVAL_WINDOW,
  probeDevices,
  quantizeModel,
  resolveModel,
  resolveTrainConfig,
  workspaceSizer,
} from '../engine';
import { describe } from './info';
import { Command, UsageError, need, out, err, parseFlags } from './args';
import { QUANT_FLAGS, backendFrom, quantFrom } from './model-flags';
import { LORA_FIELDS, QUANT_FIELDS, fieldFlags, fieldValues, trainCmd } from './train';
import { exportCmd } from './export';
import { pullCmd } from './pull';
import { serveCmd } from './serve';

const evalCmd: Command = {
  help: `lorakit eval --model DIR --data PATH [--adapter DIR] [--seq-len N] [--quant nf4|fp4 [--double-quant] [--blocksize 64]]
             [--backend …] [--json]
  → {"loss": mean next-token cross-entropy over all scored tokens, "perplexity", "tokens", "sequences", "window"}
  Each example is scored on its own. One longer than the window is cut into window-long pieces that overlap by one
  token (every token after the first is predicted once), each scored on its own. The window is --seq-len, or by
  default the model's context (max_position_embeddings), at most ${DEFAULT_EVAL_WINDOW} tokens.
  Progress goes to stderr; data with no token to score, or a loss that is not finite, is an error.
`,
  async run(argv) {
    const p = parseFlags(argv, {
      model: 'string',
      adapter: 'string',
      data: 'string',
      'seq-len': 'number',
      backend: 'string',
      device: 'string',
      json: 'boolean',
      ...QUANT_FLAGS,
    });
    const quant = quantFrom(p);
    const seqLen = p['seq-len'] as number | undefined;
    if (!(seqLen === undefined || (Number.isInteger(seqLen) && seqLen >= 2 && seqLen <= 1 << 20)))
      throw new UsageError(`--seq-len must be a whole number ≥ 2 and ≤ ${1 << 20}, got ${seqLen}`);
    const { be } = createBackend(backendFrom(p), p.device as string | undefined);
    const { model, tokenizer, quant: held, dir } = openModel(need(p, 'model'), be, p.adapter as string | undefined, quant);
    let shown = 0;
    const t0 = Date.now();
    const r = {
      ...evaluateFile(model, tokenizer, need(p, 'data'), {
        seqLen,
        modelDir: dir,
        adapterDir: p.adapter as string | undefined,
        onProgress: (done, total, tokens) => {
          const now = Date.now();
          if (done === total ? now - t0 < 1000 || shown === total : now - shown < 1000) return;
          shown = done === total ? total : now;
          err(`eval: ${done}/${total} pieces, ${tokens} tokens scored (${((now - t0) / 1000).toFixed(0)} s)`);
        },
      }),
      quant: held,
    };
    if (p.json) out(JSON.stringify(r));
    else {
      out(`loss ${r.loss.toFixed(6)}  perplexity ${r.perplexity.toFixed(3)}  (${r.tokens} tokens in ${r.sequences} sequences)`);
      if (r.cutExamples)
        out(
          `${r.cutExamples} example(s) longer than ${r.window} tokens were scored in ${r.window}-token windows (${r.windowFrom === 'seq-len' ? '--seq-len' : `the model's context${r.window < model.spec.maxPositions ? `, capped at ${DEFAULT_EVAL_WINDOW}` : ''}; set it with --seq-len`})`,
        );
    }
  },
};

const generateCmd: Command = {
  help: `lorakit generate --model DIR --prompt TEXT [--adapter DIR] [--max-new-tokens 64] [--temperature 0] [--top-p 1] [--seed 0]
                 [--chat] [--quant nf4|fp4 [--double-quant] [--blocksize 64]] [--json]
  --chat   send the prompt as a user turn through the model's chat template
`,
  async run(argv) {
    const p = parseFlags(argv, {
      model: 'string',
      adapter: 'string',
      prompt: 'string',
      'max-new-tokens': 'number',
      temperature: 'number',
      'top-p': 'number',
      seed: 'number',
      backend: 'string',
      device: 'string',
      json: 'boolean',
      chat: 'boolean',
      ...QUANT_FLAGS,
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
      modelDir: p.model as string,
      adapterDir: p.adapter as string | undefined,
      onText: p.json ? undefined : (d) => process.stdout.write(d),
    });
    if (g.promptCut)
      err(
        `note: the prompt is longer than the model's context of ${g.context} tokens (less --max-new-tokens): only its last ${g.promptTokens} tokens were used`,
      );
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
    const p = parseFlags(argv, {
      model: 'string',
      adapter: 'list',
      weights: 'string',
      out: 'string',
      dtype: 'string',
      json: 'boolean',
      requantize: 'boolean',
      data: 'string',
      ...QUANT_FLAGS,
    });
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
      model: need(p, 'model'),
      adapters: adapters.map((dir, i) => ({ dir, weight: weights[i] })),
      out: need(p, 'out'),
      dtype: dtype as 'f32' | undefined,
      requantize: p.requantize ? (quant ?? true) : undefined,
      data: p.data as string | undefined,
    });
    if (p.json) out(JSON.stringify(r));
    else {
      out(`read the base ${r.mergedInto.dir} (${r.mergedInto.kind}; unchanged) and ${adapters.length} adapter(s): ${adapters.join(', ')}`);
      out(`added the adapters to ${r.mergedModules} of its weights`);
      const q = r.requantized;
      if (!q) out(`wrote the merged model to ${r.out} (dtype ${r.dtype})`);
      else {
        out(
          `wrote the merged model to ${r.out} as bnb-4bit ${q.quant.type.toUpperCase()}${q.quant.doubleQuant ? ' + DQ' : ''}, blocks of ${q.quant.blocksize}`,
        );
        if (q.evalLoss)
          out(
            `eval loss: full-precision merge ${q.evalLoss.fullPrecision.toFixed(5)}, requantized ${q.evalLoss.requantized.toFixed(5)} (${q.evalLoss.difference >= 0 ? '+' : ''}${q.evalLoss.difference.toFixed(5)}) on ${q.evalLoss.data}`,
          );
        else out('eval loss not compared: pass --data (the adapter has no run folder with an eval split)');
      }
    }
  },
};

const estimateCmd: Command = {
  help: `lorakit estimate --model DIR [--rank 8] [--targets …] [--seq-len 512] [--batch 4] [--dropout 0.05] [--grad-checkpoint]
                 [--quant nf4|fp4 [--double-quant] [--blocksize 64]] [--backend auto|cpu|webgpu] [--json]
  → bytes per tag (weights, lora, optimizer, activations, workspace), the total, and whether it fits the device;
    with --quant (or on a bnb-4bit model), the stored bits per quantized parameter
`,
  async run(argv) {
    const fields = [...LORA_FIELDS, 'seqLen', 'batch', 'gradCheckpoint', 'backend'] as const;
    const p = parseFlags(argv, {
      ...fieldFlags(fields),
      ...QUANT_FLAGS,
      model: 'string',
      json: 'boolean',
      'grad-accum': 'number',
      lr: 'number',
      steps: 'number',
    });
    const cfg = resolveTrainConfig({ ...fieldValues(p, [...fields, ...QUANT_FIELDS]), model: need(p, 'model'), data: '-', out: '-' });
    const folder = openModelFolder(cfg.model, cfg.quant ?? null);
    const quant = folder.quant;
    const e = estimateMemory({
      spec: folder.spec,
      lora: cfg.lora,
      seqLen: cfg.seqLen,
      batch: cfg.batch,
      gradCheckpoint: cfg.gradCheckpoint,
      quant,
      workspace: workspaceSizer(cfg.backend),
    });
    if (p.json) out(JSON.stringify(e));
    else {
      for (const [k, v] of Object.entries(e.bytes)) out(`${k.padEnd(12)} ${formatBytes(v)}`);
      out(`${e.fits ? 'fits' : 'does NOT fit'} in ${e.device.name}: ${formatBytes(e.device.bytes)}`);
      out(`parameters: base ${e.params.base.toLocaleString('en')}, trainable ${e.params.trainable.toLocaleString('en')}`);
      if (quant)
        out(
          `quantized: ${e.params.quantized.toLocaleString('en')} parameters in ${quant.type.toUpperCase()}${quant.doubleQuant ? ' + DQ' : ''}, ${e.bitsPerParam!.toFixed(3)} bits each`,
        );
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
    else
      out(
        `quantized ${r.quantized} weights (${r.params.toLocaleString('en')} parameters) to ${cfg.type.toUpperCase()}${cfg.doubleQuant ? ' + double quantization' : ''}, blocks of ${cfg.blocksize}: ${formatBytes(r.bytes)}, ${r.bitsPerParam.toFixed(3)} bits a parameter → ${r.out}`,
      );
  },
};

const infoCmd: Command = {
  help: `lorakit info --model DIR|FILE [--json]
lorakit info --devices [--json]
  Describes a model folder (architecture, parameters, dtypes, tokenizer), a .safetensors file, a PEFT adapter
  folder, or a run folder (status, steps, losses, checkpoints, adapter). --devices lists the WebGPU adapters found,
  with their features and limits, and which one --backend auto would take, and which CPU kernels run here:
  relaxed (FMA) where WebAssembly has relaxed SIMD, else plain (LORAKIT_SIMD=plain|fma|auto overrides). With
  --json, "simd" says the same for either.
`,
  async run(argv) {
    const p = parseFlags(argv, { model: 'string', json: 'boolean', devices: 'boolean' });
    if (p.devices) {
      const info = { ...probeDevices(), simd: cpuKernels().simd };
      if (p.json) return void out(JSON.stringify(info));
      if (!info.adapters.length) out(`no WebGPU adapter found${info.error ? ` (${info.error})` : ''}`);
      // the adapter marked * is the one --backend auto trains on; none is marked when auto takes the CPU
      for (const a of info.adapters)
        out(
          `${info.auto.backend === 'webgpu' && a.name === info.chosen?.name ? '* ' : '  '}${a.name} [${a.type === 'cpu' ? 'software, on the CPU' : 'hardware GPU'}]\n    features: ${a.features.join(', ')}\n    max storage binding ${formatBytes(a.maxStorageBufferBindingSize)}, max buffer ${formatBytes(a.maxBufferSize)}${a.subgroupMinSize ? `, subgroups of ${a.subgroupMinSize}–${a.subgroupMaxSize} lanes` : ''}`,
        );
      out(`--backend auto trains on ${info.auto.backend === 'webgpu' ? 'the WebGPU adapter marked *' : 'the CPU'}: ${info.auto.reason}`);
      out(`CPU kernels: WebAssembly SIMD, ${info.simd}`);
      return;
    }
    const target = resolveModel(need<string>(p, 'model'));
    if (!fs.existsSync(target)) throw new UserError('not found', target);
    const d = describe(target);
    if (p.json) out(JSON.stringify({ ...d, simd: cpuKernels().simd }));
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
  export: exportCmd,
  pull: pullCmd,
  serve: serveCmd,
};
