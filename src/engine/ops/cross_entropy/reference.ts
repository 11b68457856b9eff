/**
 * Cross-entropy of logits (N, V) against targets (N); a target < 0 is ignored. Returns the summed loss, the
 * number of scored rows, and dlogits = (softmax − onehot) · gradScale for scored rows (0 elsewhere).
 */
export function crossEntropy(logits: Float32Array, targets: Int32Array, V: number, gradScale: number) {
  const N = targets.length;
  const dlogits = new Float32Array(N * V);
  let loss = 0;
  let count = 0;
  for (let n = 0; n < N; n++) {
    const t = targets[n];
    if (t < 0) continue;
    const o = n * V;
    let max = -Infinity;
    for (let j = 0; j < V; j++) if (logits[o + j] > max) max = logits[o + j];
    let sum = 0;
    for (let j = 0; j < V; j++) sum += dlogits[o + j] = Math.exp(logits[o + j] - max);
    loss += max + Math.log(sum) - logits[o + t];
    count++;
    const k = gradScale / sum;
    for (let j = 0; j < V; j++) dlogits[o + j] *= k; // softmax · gradScale
    dlogits[o + t] -= gradScale;
  }
  return { loss, count, dlogits };
}
