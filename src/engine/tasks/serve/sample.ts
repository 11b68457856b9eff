/** Choosing the next token from logits: greedy, or temperature with top-p (nucleus) sampling. */
import { Rng } from '../../core/rng';

/** Pick the next token from logits (the first `n` entries are the real vocabulary). */
export function sample(logits: Float32Array, n: number, temperature: number, topP: number, rng: Rng): number {
  if (temperature <= 0) {
    let best = 0;
    for (let i = 1; i < n; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  let max = -Infinity;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[i]);
  const p = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += p[i] = Math.exp((logits[i] - max) / temperature);
  const order = [...Array(n).keys()].sort((a, b) => p[b] - p[a] || a - b);
  let keep = 0;
  let mass = 0;
  while (keep < n && (keep === 0 || mass < topP * sum)) mass += p[order[keep++]];
  let u = rng.next() * mass;
  for (let i = 0; i < keep; i++) {
    u -= p[order[i]];
    if (u <= 0) return order[i];
  }
  return order[keep - 1];
}
