/**
 * Learning-rate schedules with Hugging Face's semantics: the rate for optimizer step s (0-based) rises linearly
 * over `warmup` steps from 0, then follows cosine, linear or constant decay to the end.
 */
import { TRAIN_FIELDS, type ScheduleName, type TrainConfig } from '../../config';
import { Rng } from '../../core/rng';

export function lrAt(s: number, total: number, warmup: number, peak: number, kind: ScheduleName): number {
  if (s < warmup) return (peak * s) / Math.max(1, warmup);
  if (kind === 'constant') return peak;
  const progress = (s - warmup) / Math.max(1, total - warmup);
  if (kind === 'linear') return peak * Math.max(0, 1 - progress);
  return peak * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}

/** warmup given as a fraction of the run (< 1) or a number of steps (≥ 1), as asked */
export function warmupAsked(warmup: number, total: number): number {
  return warmup < 1 ? Math.ceil(warmup * total) : Math.floor(warmup);
}

/**
 * The order an epoch visits the n training windows in: a Fisher–Yates shuffle seeded by the run's seed and the
 * epoch. A run's cursor simply goes on into the next epoch's order (export-job's lorakit_order.py reproduces this).
 */
export function epochOrder(n: number, seed: number, epoch: number): number[] {
  return new Rng((seed + 1) * 1000003 + epoch).shuffle([...Array(n).keys()]);
}

/** A run's optimizer steps: --steps, or --epochs over the training windows (every step takes batch × grad-accum windows). */
export function totalStepsFor(cfg: TrainConfig, trainWindows: number): number {
  return cfg.steps ?? Math.max(1, Math.ceil(((cfg.epochs ?? TRAIN_FIELDS.epochs.default) * trainWindows) / (cfg.batch * cfg.gradAccum)));
}

/** how often a run evaluates: --eval-every, else five times a run */
export function evalEveryFor(cfg: TrainConfig, totalSteps: number): number {
  return cfg.evalEvery ?? Math.max(1, Math.floor(totalSteps / 5));
}

/**
 * The warm-up steps of a run: as asked, but never the whole run, so that the last step runs at the peak rate (or
 * on its decay). Without the cap, `--steps 1` with the default 3% warm-up rounded up to one step at lr 0: a run that
 * changed nothing.
 */
export function warmupSteps(warmup: number, total: number): number {
  return Math.max(0, Math.min(warmupAsked(warmup, total), total - 1));
}
