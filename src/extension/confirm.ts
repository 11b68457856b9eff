/** The right-click run's confirmation text. No `vscode` here: the tests check it as plain text. */
import type { EstimateResult, ScanResult, TrainSettings } from '../protocol';
import { deviceLabel, formatBytes, formatDuration, formatSkipped } from '../protocol/format';

export interface ConfirmFacts {
  settings: TrainSettings;
  scan: ScanResult;
  estimate: EstimateResult;
  /** from the last run's measured speed; null when there is none (or the step count is not known yet) */
  duration: { seconds: number; tokensPerS: number } | null;
}

export function confirmDetail({ settings: s, scan, estimate: est, duration }: ConfirmFacts): string {
  const skipped = formatSkipped(scan.skipped);
  const files = `${scan.files} ${scan.files === 1 ? 'file' : 'files'}`;
  const quant =
    s.quant === 'none'
      ? 'no quantization'
      : `${s.quant.toUpperCase()} base (block ${s.blocksize}${s.doubleQuant ? ', double quantization' : ''})`;
  const steps = s.steps
    ? `${s.steps} steps`
    : `${s.epochs ?? 1} epoch${(s.epochs ?? 1) === 1 ? '' : 's'} (the step count is known once the data is tokenized)`;
  const time = duration
    ? `${duration.seconds < 1 ? 'under a second' : `about ${formatDuration(duration.seconds)}`} at the last run's ${duration.tokensPerS.toFixed(0)} tokens/s`
    : s.steps
      ? 'unknown until a run on this machine has been measured'
      : 'unknown until the step count is known';
  return [
    `Model: ${s.model}`,
    `Data: ${files} (${formatBytes(scan.bytes)}) from ${s.data}${skipped ? `; ${skipped}` : ''}`,
    `LoRA r=${s.rank}, alpha ${s.alpha}, ${s.targets}; ${quant}`,
    `Training: ${steps}; seq ${s.seqLen} × batch ${s.batch}${s.gradAccum > 1 ? ` × ${s.gradAccum} accumulated` : ''}, lr ${s.lr}`,
    `Expected duration: ${time}`,
    `Memory estimate: ${formatBytes(est.bytes.total)} of ${formatBytes(est.device.bytes)} (${deviceLabel(est.device.name)})${est.fits ? '' : ' — does NOT fit'}`,
  ].join('\n');
}
