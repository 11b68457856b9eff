/** The files of a run folder besides checkpoints: metrics.jsonl cut back on resume, and the adapter's README. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../../core/fsx';
import { VERSION } from '../../core/version';
import type { TrainConfig } from '../../config';

/** On resume, drop metric rows past the checkpoint so the file tells one consistent story. */
export function keepMetricsThrough(file: string, step: number): void {
  if (!fs.existsSync(file)) return;
  if (step === 0) {
    fs.rmSync(file);
    return;
  }
  const rows = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => {
      if (!l.trim()) return false;
      try {
        return JSON.parse(l).step <= step;
      } catch {
        return false;
      }
    });
  writeFileAtomic(file, rows.map((l) => l + '\n').join(''));
}

/** the run's numbers the README quotes */
interface RunSummary {
  steps: number;
  firstLoss?: number;
  finalLoss?: number;
  firstEvalLoss?: number;
  finalEvalLoss?: number;
}

export function adapterReadme(cfg: TrainConfig, r: RunSummary): string {
  return `# LoRA adapter (lorakit ${VERSION})

Base model: ${path.resolve(cfg.model)}
Data: ${path.resolve(cfg.data)}
r=${cfg.lora.r}, lora_alpha=${cfg.lora.alpha}, dropout=${cfg.lora.dropout}, rsLoRA=${cfg.lora.useRslora}
Steps: ${r.steps}, lr ${cfg.lr} (${cfg.schedule}), seq_len ${cfg.seqLen}, batch ${cfg.batch} × accum ${cfg.gradAccum}
Train loss: ${r.firstLoss?.toFixed(4)} → ${r.finalLoss?.toFixed(4)}; eval loss: ${r.firstEvalLoss?.toFixed(4) ?? '-'} → ${r.finalEvalLoss?.toFixed(4) ?? '-'}

Load with PEFT: \`PeftModel.from_pretrained(base, "<this folder>")\`.
`;
}
