/**
 * Finding the weight at fault when a model's numbers are NaN or infinite: each floating-point tensor of the folder
 * (and of the adapter) is read once and scanned. Only called after a non-finite loss or logit, so it costs nothing
 * on the normal path.
 */
import * as path from 'node:path';
import { UserError } from '../core/errors';
import { SafetensorsFile, TensorStore } from '../formats/safetensors';

const FLOAT = new Set(['F32', 'F16', 'BF16']);

/** the first tensor holding NaN or ±Inf, with its file, or undefined when every weight is finite */
export function firstNonFinite(src: TensorStore | SafetensorsFile): { name: string; file: string; value: number } | undefined {
  for (const name of src.names()) {
    const info = src.info(name);
    if (!FLOAT.has(info.dtype)) continue;
    const x = src.readF32(name);
    for (let i = 0; i < x.length; i++)
      if (!Number.isFinite(x[i]))
        return { name, file: 'file' in info ? (info as { file: string }).file : (src as SafetensorsFile).file, value: x[i] };
  }
  return undefined;
}

/**
 * The error for a non-finite result (`what`: "the eval loss", "the logits"): names the weight that holds NaN/Inf
 * in the model folder or the adapter when there is one.
 */
export function nonFiniteError(what: string, modelDir?: string, adapterDir?: string): UserError {
  const sources: (TensorStore | SafetensorsFile)[] = [];
  if (modelDir) sources.push(new TensorStore(modelDir));
  if (adapterDir) sources.push(new SafetensorsFile(path.join(adapterDir, 'adapter_model.safetensors')));
  for (const s of sources) {
    const bad = firstNonFinite(s);
    if (bad) return new UserError(`${what} is not finite: tensor "${bad.name}" holds ${bad.value} (the weights are damaged)`, bad.file);
  }
  return new UserError(`${what} is not finite, though every stored weight is (the model overflows on this input)`, modelDir);
}
