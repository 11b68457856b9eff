// Training on WebGPU (each kernel's parity is in test/ops/): whole-model loss and LoRA gradients, a 20-step training
// curve, and a soak run whose live GPU bytes must stay flat; the paged optimizer, a lost device, half-precision weights. On this machine the adapter is Mesa's lavapipe (Vulkan on the CPU); the
// tests skip, saying why, where no adapter exists.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CpuBackend } from '../../src/engine/backend/cpu/cpu';
import { Backend } from '../../src/engine/core/backend';
import { WebGpuBackend } from '../../src/engine/backend/webgpu/webgpu';
import { DEFAULT_LIMITS } from '../../src/engine/backend/webgpu/plan';
import { Rng } from '../../src/engine/core/rng';
import { makeDatasets, makeTinyModel } from '../../src/engine/fixtures/model';
import { openModel } from '../../src/engine/tasks/session';
import { LoraAdapter } from '../../src/engine/model/lora';
import { defaultLoraConfig } from '../../src/engine/formats/lora-config';
import { train } from '../../src/engine/tasks/train/trainer';
import { assertClose, tmpDir } from '../helpers';

let gpu: WebGpuBackend | null = null;
let skip: string | false = false;
try {
  gpu = new WebGpuBackend();
} catch (e) {
  skip = `no WebGPU adapter: ${(e as Error).message}`;
  console.log(`# webgpu tests skipped: ${skip}`);
}
const cpu = new CpuBackend({ wasm: false });

test(
  'whole model (dropout 0.1): loss and every LoRA gradient, on an f32 base, an NF4 + DQ base, with weights split across bindings, and on the plain kernels',
  { skip },
  () => {
    const dir = path.join(tmpDir('gpu-model'), 'm');
    makeTinyModel(dir, { modelType: 'qwen2', layers: 2 });
    // a 40 KiB binding limit: the embedding table and LM head (384 × 64 f32 = 96 KiB each) are held as three row blocks
    const split = new WebGpuBackend({ maxBinding: 40 << 10 });
    // no shader-f16, no subgroups, tiles for WebGPU's default limits
    const plain = new WebGpuBackend({ features: { f16: false, subgroups: false }, limits: DEFAULT_LIMITS });
    for (const [quant, dev] of [
      [null, gpu!],
      [{ type: 'nf4' as const, blocksize: 64, doubleQuant: true }, gpu!],
      [null, split],
      [null, plain],
    ] as const) {
      const res = [cpu, dev].map((be) => {
        const { model } = openModel(dir, be, undefined, quant);
        model.adapter = LoraAdapter.create(model.spec, defaultLoraConfig({ dropout: 0.1 }), be, new Rng(3));
        const r = new Rng(9);
        for (const mod of model.adapter.modules.values())
          be.write(
            mod.B,
            Float32Array.from({ length: mod.B.shape[0] * mod.B.shape[1] }, () => 0.05 * r.normal()),
          );
        model.adapter.allocGrads(be);
        const ids = Int32Array.from({ length: 2 * 13 }, (_, i) => (i * 37) % model.spec.vocabSize);
        const { loss } = model.lossAndGrad(ids, ids, 2, 13, 1 / 26, 42);
        return { loss: be.read(loss)[0], grads: model.adapter.params().map((p) => be.read(p.g()!).slice()) };
      });
      assert.ok(Math.abs(res[0].loss - res[1].loss) < 1e-4 * res[0].loss, `${quant?.type ?? 'f32'}: loss ${res[0].loss} vs ${res[1].loss}`);
      res[0].grads.forEach((g, i) => assertClose(res[1].grads[i], g, 1e-6, 2e-3, `${quant?.type ?? 'f32'} grad ${i}`));
    }
    split.dispose();
    plain.dispose();
  },
);

test.after(() => WebGpuBackend.disposeAll());

test('20 training steps on webgpu follow the cpu loss curve; a soak run keeps live GPU bytes flat', { skip }, async () => {
  const root = tmpDir('gpu-train');
  const model = path.join(root, 'm');
  makeTinyModel(model, { modelType: 'llama' });
  const ds = makeDatasets(path.join(root, 'd'), 384);
  const curve = async (be: Backend, out: string) => {
    const losses: number[] = [];
    await train(
      {
        model,
        data: ds.text,
        out: path.join(root, out),
        lora: defaultLoraConfig({ r: 4, dropout: 0 }),
        seqLen: 32,
        batch: 2,
        gradAccum: 1,
        lr: 5e-3,
        steps: 20,
        warmup: 0,
        schedule: 'constant',
        evalSplit: 0.1,
        seed: 0,
        keepCheckpoints: 1,
        maxGradNorm: 1,
        weightDecay: 0,
        backend: 'cpu',
      },
      { backend: be, events: { onStep: (m) => losses.push(m.loss) } },
    );
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
    const r = await train(
      {
        model,
        data: ds.text,
        out: path.join(root, String(pagedOptimizer)),
        lora: defaultLoraConfig({ r: 4, dropout: 0 }),
        seqLen: 32,
        batch: 2,
        gradAccum: 1,
        lr: 5e-3,
        steps: 6,
        warmup: 0,
        schedule: 'constant',
        evalSplit: 0.1,
        seed: 0,
        keepCheckpoints: 1,
        maxGradNorm: 1,
        weightDecay: 0.01,
        backend: 'webgpu',
        pagedOptimizer,
      },
      { backend: be, events: { onStep: (m) => losses.push(m.loss) } },
    );
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

test(
  'a device lost mid-run stops the run with one clear error; the last checkpoint is kept and --resume finishes on the CPU',
  { skip },
  async () => {
    const root = tmpDir('gpu-lost');
    const model = path.join(root, 'm');
    makeTinyModel(model, { modelType: 'llama' });
    const ds = makeDatasets(path.join(root, 'd'), 384);
    const out = path.join(root, 'run');
    const cfg = {
      model,
      data: ds.text,
      out,
      lora: defaultLoraConfig({ r: 4, dropout: 0 }),
      seqLen: 32,
      batch: 2,
      gradAccum: 1,
      lr: 5e-3,
      steps: 10,
      warmup: 0,
      schedule: 'constant' as const,
      evalSplit: 0.1,
      seed: 0,
      keepCheckpoints: 2,
      maxGradNorm: 1,
      weightDecay: 0,
      backend: 'webgpu' as const,
      checkpointEvery: 3,
    };
    const be = new WebGpuBackend();
    await assert.rejects(train(cfg, { backend: be, events: { onStep: (m) => m.step === 5 && be.loseDeviceForTest() } }), (e: Error) =>
      /device was lost|lost|destroyed/i.test(e.message),
    );
    be.dispose();
    assert.ok(fs.existsSync(path.join(out, 'checkpoints', 'step-3', 'adapter_model.safetensors')), 'the step-3 checkpoint is kept');
    assert.ok(!fs.existsSync(path.join(out, 'adapter')));
    const logs: string[] = [];
    const r = await train({ ...cfg, backend: 'cpu' }, { resume: true, events: { onLog: (l) => logs.push(l) } });
    assert.equal(r.status, 'completed');
    assert.ok(logs.some((l) => /resumed from .*step-3/.test(l)));
    assert.ok(fs.existsSync(path.join(r.adapterDir!, 'adapter_model.safetensors')));
  },
);

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
      for (const mod of model.adapter.modules.values())
        be.write(
          mod.B,
          Float32Array.from({ length: mod.B.shape[0] * mod.B.shape[1] }, () => 0.05 * r.normal()),
        );
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
