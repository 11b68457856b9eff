// Every WebGPU kernel against its CPU twin (the reference ops) on shapes that are not tile multiples, forward and
// backward, 4-bit included; then whole-model loss and LoRA gradients, a 20-step training curve, and a soak run
// whose live GPU bytes must stay flat. On this machine the adapter is Mesa's lavapipe (Vulkan on the CPU); the
// tests skip, saying why, where no adapter exists.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CpuBackend } from '../src/engine/backend/cpu/cpu';
import { Backend, Tensor } from '../src/engine/core/backend';
import { WebGpuBackend } from '../src/engine/backend/webgpu/webgpu';
import { Rng } from '../src/engine/core/rng';
import { quantizeWeight } from '../src/engine/core/qweight';
import { makeDatasets, makeTinyModel } from '../src/engine/fixtures/model';
import { openModel } from '../src/engine/tasks/session';
import { LoraAdapter } from '../src/engine/model/lora';
import { defaultLoraConfig } from '../src/engine/model/lora-config';
import { train } from '../src/engine/tasks/train/trainer';
import { assertClose, tmpDir } from './helpers';

let gpu: WebGpuBackend | null = null;
let skip: string | false = false;
try {
  gpu = new WebGpuBackend();
} catch (e) {
  skip = `no WebGPU adapter: ${(e as Error).message}`;
  console.log(`# webgpu tests skipped: ${skip}`);
}
const cpu = new CpuBackend({ wasm: false });
const rng = new Rng(5);
const rand = (n: number, s = 1) => Float32Array.from({ length: n }, () => rng.normal() * s);

/** the same inputs on both backends; `f` runs the op on one; outputs compared */
function same(what: string, inputs: { data: Float32Array; shape: number[] }[], f: (be: Backend, t: Tensor[]) => Tensor | Tensor[], atol = 1e-5, rtol = 1e-4): void {
  const run = (be: Backend) => {
    const ts = inputs.map((i) => be.upload(i.data.slice(), i.shape, 'activations'));
    const out = f(be, ts);
    return (Array.isArray(out) ? out : [out]).map((o) => be.read(o).slice());
  };
  const want = run(cpu);
  const got = run(gpu!);
  want.forEach((w, i) => assertClose(got[i], w, atol, rtol, `${what} output ${i}`));
}
const T = (shape: number[], s = 1) => ({ data: rand(shape.reduce((a, b) => a * b, 1), s), shape });

test('matmul in every transpose, alpha/beta, 4-bit forward and backward', { skip }, () => {
  for (const [M, N, K] of [[1, 1, 1], [3, 5, 7], [17, 33, 20], [40, 9, 129]]) {
    for (const transA of [false, true])
      for (const transB of [false, true]) {
        const a = T(transA ? [K, M] : [M, K]), b = T(transB ? [N, K] : [K, N]), c = T([M, N]);
        same(`matmul ${M}×${N}×${K} tA=${transA} tB=${transB}`, [a, b, c], (be, [x, y, z]) => be.matmul(x, y, { transA, transB, alpha: 0.5, out: z, beta: 1 }, 'activations'));
      }
    const x = T([M, K]), w = T([N, K]), bias = T([N]);
    same(`linear ${M}×${N}×${K}`, [x, w, bias], (be, [xx, ww, bb]) => be.linear(xx, ww, bb));
  }
  for (const [R, C, bs, type, doubleQuant] of [[13, 29, 32, 'nf4', true], [40, 70, 64, 'fp4', false], [33, 64, 64, 'nf4', true], [300, 40, 32, 'nf4', true]] as const) {
    // (the last: more than 256 blocks, so the nested scales' second block is read)
    const q = quantizeWeight(rand(R * C), [R, C], { type, blocksize: bs, doubleQuant }, 'float32');
    for (const M of [1, 5, 37]) {
      const x = rand(M * C), dy = rand(M * R), into = rand(M * C);
      const go = (be: Backend) => {
        const w = be.uploadQuantized(q);
        const y = be.read(be.linear(be.upload(x.slice(), [M, C], 'activations'), w)).slice();
        const dx = be.read(be.linearBackward(be.upload(dy.slice(), [M, R], 'activations'), w, be.upload(into.slice(), [M, C], 'activations'))).slice();
        return [y, dx];
      };
      const [wy, wdx] = go(cpu), [gy, gdx] = go(gpu!);
      assertClose(gy, wy, 1e-5, 1e-4, `4-bit ${type} x·Wᵀ ${M}×${R}×${C}`);
      assertClose(gdx, wdx, 1e-5, 1e-4, `4-bit ${type} dY·W ${M}×${R}×${C}`);
    }
  }
});

test('norms, RoPE, SwiGLU, embedding, elementwise, copies, reductions, AdamW', { skip }, () => {
  const [N, C] = [7, 37];
  same('rmsnorm', [T([N, C]), T([C])], (be, [x, w]) => {
    const r = be.rmsnorm(x, w, 1e-5);
    return [r.y, r.rstd];
  });
  same('rmsnorm backward', [T([N, C]), T([N, C]), T([C])], (be, [dy, x, w]) => be.rmsnormBackward(dy, x, w, be.rmsnorm(x, w, 1e-5).rstd));
  const heads = 3, D = 8, P = 16;
  const pos = Int32Array.from({ length: N }, (_, i) => (i * 5) % P);
  for (const inverse of [false, true])
    same(`rope inverse=${inverse}`, [T([N, heads * D]), T([P, D / 2]), T([P, D / 2])], (be, [x, cos, sin]) => be.rope(x, heads, pos, { cos, sin }, inverse));
  same('swiglu', [T([N, C]), T([N, C])], (be, [g, u]) => be.swiglu(g, u));
  same('swiglu backward', [T([N, C]), T([N, C]), T([N, C])], (be, [dh, g, u]) => {
    const r = be.swigluBackward(dh, g, u);
    return [r.dgate, r.dup];
  });
  const ids = Int32Array.from([3, 0, 9, 9, 1]);
  same('embedding', [T([10, C])], (be, [tab]) => be.embedding(ids, tab));
  same('add, mul, axpy, scale', [T([N, C]), T([N, C])], (be, [a, b]) => {
    const s = be.add(a, b);
    const m = be.mul(a, b);
    be.addInPlace(s, m, -0.5);
    be.scaleInPlace(m, 3);
    return [s, m];
  });
  same('slice, set and concat rows', [T([N, C]), T([2, C])], (be, [a, b]) => {
    const s = be.sliceRows(a, 2, 3);
    be.setRows(a, 4, b);
    return [s, a, be.concatRows(a, b)];
  });
  same('dropout (same mask for a seed)', [T([N, C])], (be, [x]) => {
    const r = be.dropout(x, 0.3, 77);
    return [r.y, r.mask!];
  });
  const targets = Int32Array.from([2, -1, 0, 36, 5, 5, -1]);
  same('cross-entropy', [T([N, C], 3)], (be, [x]) => {
    const r = be.crossEntropy(x, targets, 0.25);
    return [r.loss, r.dlogits];
  }, 1e-4, 1e-4);
  same('sum of squares', [T([1000, 3])], (be, [x]) => be.sumSquares(x), 1e-3, 1e-5);
  same('adamw', [T([N, C]), T([N, C]), T([N, C], 0.1), { data: rand(N * C).map((v) => v * v), shape: [N, C] }], (be, [p, g, m, v]) => {
    be.adamw(p, g, m, v, { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: 3 });
    return [p, m, v];
  });
});

test('attention forward and backward: causal, grouped-query, sliding window, decoding offsets', { skip }, () => {
  for (const p of [
    { B: 2, Tq: 5, Tk: 5, H: 4, KV: 2, D: 8 },
    { B: 1, Tq: 9, Tk: 9, H: 2, KV: 2, D: 12, window: 3 },
    { B: 2, Tq: 1, Tk: 6, H: 4, KV: 1, D: 16 },
    { B: 1, Tq: 3, Tk: 7, H: 3, KV: 3, D: 5 },
    { B: 1, Tq: 70, Tk: 70, H: 2, KV: 1, D: 16, window: 40 }, // several query blocks and key tiles
    { B: 1, Tq: 4, Tk: 4, H: 1, KV: 1, D: 160 }, // past the tiled kernels' 128: the per-row ones
  ]) {
    const q = T([p.B * p.Tq, p.H * p.D]), k = T([p.B * p.Tk, p.KV * p.D]), v = T([p.B * p.Tk, p.KV * p.D]), dout = T([p.B * p.Tq, p.H * p.D]);
    same(`attention ${JSON.stringify(p)}`, [q, k, v, dout], (be, [qq, kk, vv, dd]) => {
      const f = be.attention(qq, kk, vv, p);
      const b = be.attentionBackward(dd, qq, kk, vv, f.saved, p);
      return [f.out, b.dq, b.dk, b.dv];
    }, 2e-5, 2e-4);
  }
});

test('whole model: loss and every LoRA gradient, on an f32 base, an NF4 + DQ base, and with weights split across bindings', { skip }, () => {
  const dir = path.join(tmpDir('gpu-model'), 'm');
  makeTinyModel(dir, { modelType: 'qwen2', layers: 2 });
  // a 40 KiB binding limit: the embedding table and LM head (384 × 64 f32 = 96 KiB each) are held as three row blocks
  const split = new WebGpuBackend({ maxBinding: 40 << 10 });
  for (const [quant, dev] of [[null, gpu!], [{ type: 'nf4' as const, blocksize: 64, doubleQuant: true }, gpu!], [null, split]] as const) {
    const res = [cpu, dev].map((be) => {
      const { model } = openModel(dir, be, undefined, quant);
      model.adapter = LoraAdapter.create(model.spec, defaultLoraConfig({ dropout: 0.1 }), be, new Rng(3));
      const r = new Rng(9);
      for (const mod of model.adapter.modules.values()) be.write(mod.B, Float32Array.from({ length: mod.B.shape[0] * mod.B.shape[1] }, () => 0.05 * r.normal()));
      model.adapter.allocGrads(be);
      const ids = Int32Array.from({ length: 2 * 13 }, (_, i) => (i * 37) % model.spec.vocabSize);
      const { loss } = model.lossAndGrad(ids, ids, 2, 13, 1 / 26, 42);
      return { loss: be.read(loss)[0], grads: model.adapter.params().map((p) => be.read(p.g()!).slice()) };
    });
    assert.ok(Math.abs(res[0].loss - res[1].loss) < 1e-4 * res[0].loss, `${quant?.type ?? 'f32'}: loss ${res[0].loss} vs ${res[1].loss}`);
    res[0].grads.forEach((g, i) => assertClose(res[1].grads[i], g, 1e-6, 2e-3, `${quant?.type ?? 'f32'} grad ${i}`));
  }
  split.dispose();
});

test.after(() => WebGpuBackend.disposeAll());

test('20 training steps on webgpu follow the cpu loss curve; a soak run keeps live GPU bytes flat', { skip }, async () => {
  const root = tmpDir('gpu-train');
  const model = path.join(root, 'm');
  makeTinyModel(model, { modelType: 'llama' });
  const ds = makeDatasets(path.join(root, 'd'), 384);
  const curve = async (be: Backend, out: string) => {
    const losses: number[] = [];
    await train({
      model, data: ds.text, out: path.join(root, out), lora: defaultLoraConfig({ r: 4, dropout: 0 }), seqLen: 32, batch: 2, gradAccum: 1, lr: 5e-3,
      steps: 20, warmup: 0, schedule: 'constant', evalSplit: 0.1, seed: 0, keepCheckpoints: 1, maxGradNorm: 1, weightDecay: 0, backend: 'cpu',
    }, { backend: be, events: { onStep: (m) => losses.push(m.loss) } });
    return losses;
  };
  const a = await curve(new CpuBackend({ wasm: false }), 'cpu');
  const b = await curve(gpu!, 'gpu');
  // f32 on both, different summation orders: the curves agree to float rounding, which grows slowly with steps
  a.forEach((l, i) => assert.ok(Math.abs(l - b[i]) < 1e-3 * l, `step ${i + 1}: cpu ${l} vs webgpu ${b[i]}`));
  assert.ok(b[19] < b[0], 'the loss falls');

  // soak: steps with forced garbage collection between them; live GPU bytes must not grow
  assert.equal(typeof (globalThis as any).gc, 'function', 'the tests run with --expose-gc');
  const { model: m } = openModel(model, gpu!);
  m.adapter = LoraAdapter.create(m.spec, defaultLoraConfig({ r: 4 }), gpu!, new Rng(1));
  m.adapter.allocGrads(gpu!);
  const ids = Int32Array.from({ length: 64 }, (_, i) => (i * 7) % m.spec.vocabSize);
  let base = 0;
  for (let s = 0; s < 300; s++) {
    m.adapter.zeroGrads(gpu!);
    const r = m.lossAndGrad(ids, ids, 2, 32, 1 / 64, s);
    gpu!.read(r.loss);
    gpu!.free(r.loss);
    (globalThis as any).gc?.();
    if (s === 10) base = gpu!.mem.total();
    if (s > 10) assert.equal(gpu!.mem.total(), base, `live GPU bytes at step ${s}`);
  }
});

test('the paged optimizer (moments in host memory) trains exactly as the resident one, holding less on the device', { skip }, async () => {
  const root = tmpDir('gpu-paged');
  const model = path.join(root, 'm');
  makeTinyModel(model, { modelType: 'llama' });
  const ds = makeDatasets(path.join(root, 'd'), 384);
  const run = async (pagedOptimizer: boolean) => {
    const be = new WebGpuBackend();
    const losses: number[] = [];
    const r = await train({
      model, data: ds.text, out: path.join(root, String(pagedOptimizer)), lora: defaultLoraConfig({ r: 4, dropout: 0 }), seqLen: 32, batch: 2, gradAccum: 1, lr: 5e-3,
      steps: 6, warmup: 0, schedule: 'constant', evalSplit: 0.1, seed: 0, keepCheckpoints: 1, maxGradNorm: 1, weightDecay: 0.01, backend: 'webgpu', pagedOptimizer,
    }, { backend: be, events: { onStep: (m) => losses.push(m.loss) } });
    const peak = be.mem.peak.optimizer;
    be.dispose();
    return { losses, peak, adapter: fs.readFileSync(path.join(r.adapterDir!, 'adapter_model.safetensors')) };
  };
  const resident = await run(false);
  const paged = await run(true);
  assert.deepEqual(paged.losses, resident.losses);
  assert.ok(paged.adapter.equals(resident.adapter), 'the same adapter, bit for bit');
  assert.ok(paged.peak < resident.peak / 4, `device optimizer bytes: paged ${paged.peak}, resident ${resident.peak}`);
});

test('a device lost mid-run stops the run with one clear error; the last checkpoint is kept and --resume finishes on the CPU', { skip }, async () => {
  const root = tmpDir('gpu-lost');
  const model = path.join(root, 'm');
  makeTinyModel(model, { modelType: 'llama' });
  const ds = makeDatasets(path.join(root, 'd'), 384);
  const out = path.join(root, 'run');
  const cfg = {
    model, data: ds.text, out, lora: defaultLoraConfig({ r: 4, dropout: 0 }), seqLen: 32, batch: 2, gradAccum: 1, lr: 5e-3, steps: 10, warmup: 0,
    schedule: 'constant' as const, evalSplit: 0.1, seed: 0, keepCheckpoints: 2, maxGradNorm: 1, weightDecay: 0, backend: 'webgpu' as const, checkpointEvery: 3,
  };
  const be = new WebGpuBackend();
  await assert.rejects(
    train(cfg, { backend: be, events: { onStep: (m) => m.step === 5 && be.loseDeviceForTest() } }),
    (e: Error) => /device was lost|lost|destroyed/i.test(e.message),
  );
  be.dispose();
  assert.ok(fs.existsSync(path.join(out, 'checkpoints', 'step-3', 'adapter_model.safetensors')), 'the step-3 checkpoint is kept');
  assert.ok(!fs.existsSync(path.join(out, 'adapter')));
  const logs: string[] = [];
  const r = await train({ ...cfg, backend: 'cpu' }, { resume: true, events: { onLog: (l) => logs.push(l) } });
  assert.equal(r.status, 'completed');
  assert.ok(logs.some((l) => /resumed from .*step-3/.test(l)));
  assert.ok(fs.existsSync(path.join(r.adapterDir!, 'adapter_model.safetensors')));
});

test('bf16 and f16 weights stay half precision on the device (half the bytes), with the same loss and gradients', { skip }, () => {
  for (const dtype of ['BF16', 'F16'] as const) {
    const dir = path.join(tmpDir('gpu-half'), 'm');
    makeTinyModel(dir, { modelType: 'llama', dtype, tied: dtype === 'F16' });
    const split = new WebGpuBackend({ maxBinding: 36 << 10 }); // the 48 KiB half-precision embedding in row blocks too
    const res = [cpu, gpu!, split].map((be) => {
      const before = be.mem.live.weights;
      const { model } = openModel(dir, be);
      const held = be.mem.live.weights - before;
      model.adapter = LoraAdapter.create(model.spec, defaultLoraConfig({ dropout: 0 }), be, new Rng(3));
      const r = new Rng(9);
      for (const mod of model.adapter.modules.values()) be.write(mod.B, Float32Array.from({ length: mod.B.shape[0] * mod.B.shape[1] }, () => 0.05 * r.normal()));
      model.adapter.allocGrads(be);
      const ids = Int32Array.from({ length: 2 * 11 }, (_, i) => (i * 37) % model.spec.vocabSize);
      const { loss } = model.lossAndGrad(ids, ids, 2, 11, 1 / 22, 1);
      return { held, loss: be.read(loss)[0], grads: model.adapter.params().map((p) => be.read(p.g()!).slice()) };
    });
    split.dispose();
    for (const r of res.slice(1)) {
      assert.ok(Math.abs(r.held - res[0].held) <= 64, `${dtype}: held weight bytes ${r.held} on the GPU vs ${res[0].held} on the CPU`);
      assert.ok(Math.abs(r.loss - res[0].loss) < 1e-4 * res[0].loss, `${dtype}: loss ${r.loss} vs ${res[0].loss}`);
      res[0].grads.forEach((g, i) => assertClose(r.grads[i], g, 1e-6, 2e-3, `${dtype} grad ${i}`));
    }
  }
});

test('--device naming no adapter is one clear error', { skip }, () => {
  assert.throws(() => new WebGpuBackend({ device: 'no-such-gpu' }), /no adapter matches --device no-such-gpu/);
});
