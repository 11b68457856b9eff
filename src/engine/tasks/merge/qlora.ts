/**
 * Merging adapters trained on a 4-bit base. By default the merge goes into full-precision weights: the model given,
 * or, when that is a bnb-4bit folder, the full-precision original it was quantized from (recorded by `lorakit
 * quantize`). That avoids the loss PEFT users meet when merging into re-quantized weights. With `requantize`, the
 * merged model is written in the bnb-4bit layout, and the eval loss of both merges is reported.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CpuBackend } from '../../backend/cpu/cpu';
import { UserError } from '../../core/errors';
import { evaluateFile, evaluateWindows } from '../evaluate';
import { prepareData } from '../../data/dataset';
import { MergeOptions, MergeReport, checkMergeOut, mergeAdapters } from './merge';
import { openModel } from '../session';
import { readJson } from '../../core/fsx';
import { bnbKind } from '../../formats/bnb';
import { SOURCE_FILE, quantizeModel } from '../quantize';
import { QuantConfig } from '../../core/qweight';
import { openModelFolder } from '../../formats/model-folder';
import { resolveModel } from '../../formats/hf-cache';

export interface QMergeOptions extends MergeOptions {
  /** write the merged model as bnb-4bit with this quantization (true: the base's, the run's, or NF4 + DQ) */
  requantize?: QuantConfig | true;
  /** data to compare the two merges on (default: the eval split of the adapter's run, when it has one) */
  data?: string;
}

export interface QMergeReport extends MergeReport {
  /** the weights the adapters were added to, and why those */
  mergedInto: { dir: string; kind: 'full precision' | 'full-precision original of the 4-bit base' | 'dequantized 4-bit base' };
  requantized?: {
    quant: QuantConfig;
    evalLoss?: { fullPrecision: number; requantized: number; difference: number; tokens: number; data: string };
  };
}

/** the run folder an adapter came from (its parent, holding run.json), if any */
function runOf(adapterDir: string): any | null {
  const f = path.join(path.dirname(path.resolve(adapterDir)), 'run.json');
  try {
    return fs.existsSync(f) ? readJson(f) : null;
  } catch {
    return null;
  }
}

/** where a bnb-4bit folder's full-precision original is, if `lorakit quantize` recorded it and it is still there */
export function originalOf(dir: string): string | null {
  const f = path.join(dir, SOURCE_FILE);
  if (!fs.existsSync(f)) return null;
  const src = readJson(f).source;
  if (typeof src !== 'string' || !fs.existsSync(path.join(src, 'config.json'))) return null;
  if (bnbKind(readJson(path.join(src, 'config.json')))) return null;
  return src;
}

export function mergeQLoRA(o: QMergeOptions): QMergeReport {
  const model = path.resolve(resolveModel(o.model));
  // the output may be inside neither the model given nor (below) the original merged into, by any spelling
  checkMergeOut(o.out, model);
  const quantized = bnbKind(readJson(path.join(model, 'config.json'))) === '4bit';
  let base = model;
  let kind: QMergeReport['mergedInto']['kind'] = 'full precision';
  if (quantized) {
    const original = originalOf(model);
    if (original) {
      base = original;
      kind = 'full-precision original of the 4-bit base';
    } else if (o.requantize) kind = 'dequantized 4-bit base';
    else
      throw new UserError(
        'the base is 4-bit (bnb) and its full-precision original is unknown. Merging into dequantized 4-bit weights loses quality, ' +
          'so lorakit does not choose that for you: pass the original with --model, or add --requantize to merge into the dequantized weights and write a 4-bit model',
        o.model,
      );
  }
  if (!o.requantize) return { ...mergeAdapters({ ...o, model: base }), mergedInto: { dir: base, kind } };

  const run = runOf(o.adapters[0].dir);
  const quant: QuantConfig =
    o.requantize !== true
      ? o.requantize
      : (openModelFolder(model).quant ?? run?.config?.quant ?? { type: 'nf4', blocksize: 64, doubleQuant: true });
  const out = path.resolve(o.out);
  checkMergeOut(o.out, base);
  const full = `${out}.full-precision.${process.pid}.tmp`;
  try {
    const merged = mergeAdapters({ ...o, model: base, out: full });
    quantizeModel(full, out, quant, undefined, null);
    const report: QMergeReport = { ...merged, out, mergedInto: { dir: base, kind }, requantized: { quant } };
    const evalLoss = compareMerges(full, out, o.data, run);
    if (evalLoss) report.requantized!.evalLoss = evalLoss;
    return report;
  } finally {
    fs.rmSync(full, { recursive: true, force: true });
  }
}

/** eval loss of the full-precision and the requantized merge, on --data or the run's eval split */
function compareMerges(
  full: string,
  requantized: string,
  data: string | undefined,
  run: any | null,
): NonNullable<QMergeReport['requantized']>['evalLoss'] | undefined {
  const be = new CpuBackend();
  const loss = (dir: string) => {
    const m = openModel(dir, be);
    if (data) return evaluateFile(m.model, m.tokenizer, data, { modelDir: dir });
    const c = run.config;
    const prepared = prepareData(c.data, m.tokenizer, m.model.spec.vocabSize, c.seqLen, c.evalSplit, c.seed);
    return evaluateWindows(m.model, prepared.eval, c.batch);
  };
  if (!data && !(run?.config?.data && run.config.evalSplit > 0 && fs.existsSync(run.config.data))) return undefined;
  const a = loss(full),
    b = loss(requantized);
  return {
    fullPrecision: a.loss,
    requantized: b.loss,
    difference: b.loss - a.loss,
    tokens: b.tokens,
    data: data ?? `${run.config.data} (the run's eval split)`,
  };
}
