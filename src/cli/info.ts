/** `lorakit info`: what a model folder, a safetensors file or an adapter folder holds. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  SafetensorsFile,
  TensorStore,
  baseParams,
  bitsPerParam,
  formatBytes,
  loadSpec,
  openModelFolder,
  originalOf,
  quantizedParams,
  readAdapterConfig,
  readJson,
  tensorTotals,
  TextTokenizer,
} from '../engine';

export function describe(target: string): Record<string, unknown> & { text: string } {
  if (fs.statSync(target).isFile()) {
    const f = new SafetensorsFile(target);
    const tensors = f.names().map((n) => ({ name: n, ...f.info(n) }));
    const lines = tensors.map((t) => `${t.name}  ${t.dtype}  [${t.shape.join(', ')}]`);
    return {
      kind: 'safetensors',
      file: target,
      tensors,
      metadata: f.metadata,
      text: `${target}: ${tensors.length} tensors\n${lines.join('\n')}`,
    };
  }
  if (fs.existsSync(path.join(target, 'run.json'))) return describeRun(target);
  if (fs.existsSync(path.join(target, 'adapter_config.json'))) {
    const c = readAdapterConfig(target);
    const f = new SafetensorsFile(path.join(target, 'adapter_model.safetensors'));
    const { params } = tensorTotals(f);
    const text =
      `PEFT LoRA adapter: r=${c.r}, alpha=${c.alpha}, rsLoRA=${c.useRslora}, targets ${JSON.stringify(c.targetModules)}\n` +
      `${f.names().length / 2} modules, ${params.toLocaleString('en')} parameters; base model ${c.baseModel ?? '(not recorded)'}`;
    return { kind: 'adapter', config: c, modules: f.names().length / 2, params, text };
  }
  const spec = loadSpec(target);
  const store = new TensorStore(target);
  const { bytes, dtypes, ...totals } = tensorTotals(store);
  let params = totals.params;
  // a bnb-4bit folder: count parameters from the config, not the packed bytes, and say how it is quantized
  const quant = openModelFolder(target).quant;
  let quantization: Record<string, unknown> | undefined;
  if (quant) {
    params = baseParams(spec);
    quantization = {
      ...quant,
      format: 'bnb-4bit',
      bitsPerParam: bitsPerParam(quant),
      quantizedParams: quantizedParams(spec),
      original: originalOf(target),
    };
  }
  let tokenizer: Record<string, unknown>;
  try {
    const t = TextTokenizer.load(target);
    tokenizer = { present: true, vocab: t.vocabSize, eos: t.eosId, bos: t.bosId, chatTemplate: t.hasChatTemplate() };
  } catch (caught) {
    const e = caught as NodeJS.ErrnoException;
    tokenizer = { present: false, error: e.message };
  }
  const text = [
    `${spec.modelType}: ${spec.layers} layers, hidden ${spec.hidden}, MLP ${spec.intermediate}, heads ${spec.heads} (kv ${spec.kvHeads}, dim ${spec.headDim}), vocab ${spec.vocabSize}`,
    `parameters: ${params.toLocaleString('en')} in ${store.files.length} file(s), ${formatBytes(bytes)}; dtypes ${Object.entries(dtypes)
      .map(([d, n]) => `${d} ${n.toLocaleString('en')}`)
      .join(', ')}`,
    `rope theta ${spec.rope.theta}${spec.rope.scaling ? `, scaling ${spec.rope.scaling.type} ×${spec.rope.scaling.factor}` : ''}; tied embeddings ${spec.tieEmbeddings}; q/k/v bias ${spec.qkvBias}; q/k norm ${spec.qkNorm}`,
    tokenizer.present
      ? `tokenizer: ${tokenizer.vocab} tokens, eos ${tokenizer.eos}, bos ${tokenizer.bos ?? 'none'}, chat template ${tokenizer.chatTemplate ? 'yes' : 'no'}`
      : `tokenizer: ${tokenizer.error}`,
    ...(quant
      ? [
          `quantized (bnb-4bit): ${quant.type.toUpperCase()}${quant.doubleQuant ? ' + double quant' : ''}, blocks of ${quant.blocksize}, ${bitsPerParam(quant).toFixed(3)} bits × ${quantizedParams(spec).toLocaleString('en')} linear-layer parameters; full-precision original: ${quantization!.original ?? 'unknown'}`,
        ]
      : []),
  ].join('\n');
  return {
    kind: 'model',
    spec,
    params,
    bytes,
    dtypes,
    quantization,
    files: store.files.map((f) => path.basename(f.file)),
    tokenizer,
    text,
  };
}

/** A run folder: its status, steps, losses, checkpoints and adapter. */
function describeRun(dir: string): Record<string, unknown> & { text: string } {
  const run = readJson(path.join(dir, 'run.json'));
  const rows = fs.existsSync(path.join(dir, 'metrics.jsonl'))
    ? fs
        .readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l))
    : [];
  const steps = rows.filter((r) => 'loss' in r);
  const evals = rows.filter((r) => 'eval_loss' in r);
  const ckDir = path.join(dir, 'checkpoints');
  const checkpoints = fs.existsSync(ckDir)
    ? fs
        .readdirSync(ckDir)
        .filter((n) => /^step-\d+$/.test(n))
        .sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)))
    : [];
  const adapter = fs.existsSync(path.join(dir, 'adapter', 'adapter_config.json')) ? path.join(dir, 'adapter') : null;
  const status = run.status ?? (steps.length ? 'stopped (resumable with --resume)' : 'not started');
  const f = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(4));
  const text = [
    `run ${dir}: ${status}, ${steps.length ? steps[steps.length - 1].step : 0} of ${run.totalSteps} steps on ${run.backend}`,
    `model ${run.model?.dir}; data ${run.config?.data} (${run.data?.trainWindows} train / ${run.data?.evalWindows} eval windows)`,
    `train loss ${f(steps[0]?.loss)} → ${f(steps[steps.length - 1]?.loss)}; eval loss ${f(evals[0]?.eval_loss)} → ${f(evals[evals.length - 1]?.eval_loss)}`,
    `checkpoints: ${checkpoints.join(', ') || 'none'}; adapter: ${adapter ?? 'not written yet'}`,
  ].join('\n');
  return {
    kind: 'run',
    status,
    config: run.config,
    steps: steps.length,
    totalSteps: run.totalSteps,
    lastStep: steps[steps.length - 1] ?? null,
    lastEval: evals[evals.length - 1] ?? null,
    checkpoints,
    adapter,
    text,
  };
}
