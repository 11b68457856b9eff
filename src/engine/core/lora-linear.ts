/**
 * A LoRA linear layer composed of the backend's plain ops, one call per product: the WebGPU backend's and the
 * reference CPU backend's linearLora (and the WebAssembly CPU backend's where it does not fuse: 4-bit weights,
 * decoding, products too large for its memory). ops/matmul/lora.ts is the CPU's fused version of the same sequence.
 */
import type { Backend, LoraPair, LoraSaved, Tensor } from './backend';

/** y = x·wᵀ + b + s·(drop(x)·Aᵀ)·Bᵀ */
export function linearLoraComposed(
  be: Backend,
  x: Tensor,
  w: Tensor,
  b: Tensor | undefined,
  lora: LoraPair,
  drop: { p: number; seed: number },
  save: boolean,
): { y: Tensor; saved: LoraSaved | null } {
  const y = be.linear(x, w, b);
  const { y: xd, mask } = be.dropout(x, drop.p, drop.seed);
  const h = be.matmul(xd, lora.A, { transB: true }, 'activations'); // (N, r)
  be.matmul(h, lora.B, { transB: true, alpha: lora.scale, out: y, beta: 1 }, 'activations');
  if (save) return { y, saved: { xd, mask, h } };
  be.free(h, xd === x ? null : xd, mask);
  return { y, saved: null };
}

/** dx (+)= dy·w + (s·dy·B·A)⊙mask, and the LoRA gradients: dB += s·dyᵀ·h, dA += (s·dy·B)ᵀ·xd */
export function linearLoraBackwardComposed(be: Backend, dy: Tensor, w: Tensor, lora: LoraPair, s: LoraSaved, into?: Tensor): Tensor {
  const { dA, dB } = loraGrads(lora);
  const dx = be.linearBackward(dy, w, into);
  be.matmul(dy, s.h, { transA: true, alpha: lora.scale, out: dB, beta: 1 }, 'lora');
  const dh = be.matmul(dy, lora.B, { alpha: lora.scale }, 'activations'); // (N, r)
  be.matmul(dh, s.xd, { transA: true, out: dA, beta: 1 }, 'lora');
  if (!s.mask) be.matmul(dh, lora.A, { out: dx, beta: 1 }, 'activations');
  else {
    const dxd = be.matmul(dh, lora.A, {}, 'activations');
    const dmasked = be.mul(dxd, s.mask);
    be.addInPlace(dx, dmasked);
    be.free(dxd, dmasked);
  }
  be.free(dh);
  return dx;
}

/** the gradient tensors of a pair, which must have been allocated (LoraAdapter.allocGrads) */
export function loraGrads(lora: LoraPair): { dA: Tensor; dB: Tensor } {
  if (!lora.dA || !lora.dB) throw new Error('internal: a LoRA backward pass without gradient tensors (allocGrads)');
  return { dA: lora.dA, dB: lora.dB };
}
