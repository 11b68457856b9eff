/** What a training run reports: each step's and each evaluation's metrics, the events carrying them, the result. */
import type { MemFigures } from '../../core/backend';

export interface StepMetrics {
  step: number;
  total_steps: number;
  loss: number;
  lr: number;
  grad_norm: number;
  tokens_per_s: number;
  step_ms: number;
  mem: MemFigures;
  elapsed_s: number;
}

export interface EvalMetrics {
  step: number;
  eval_loss: number;
  eval_perplexity: number;
  eval_tokens: number;
}

export interface TrainEvents {
  onLog?: (line: string) => void;
  onStep?: (m: StepMetrics) => void;
  onEval?: (m: EvalMetrics) => void;
  onCheckpoint?: (dir: string, step: number) => void;
}

export interface TrainResult {
  status: 'completed' | 'cancelled';
  runDir: string;
  adapterDir?: string;
  lastCheckpoint?: string;
  steps: number;
  firstLoss?: number;
  finalLoss?: number;
  firstEvalLoss?: number;
  finalEvalLoss?: number;
  peakMem: MemFigures;
  trainableParams: number;
  backend: string;
}
