/// <reference types="@webgpu/types" />
/**
 * The WebGPU worker: owns the Dawn instance, the device and every buffer, and runs the ops the main thread posts,
 * in order. WebGPU is asynchronous and the engine's Backend is not, so the main thread posts ops without waiting
 * and blocks (Atomics.wait) only to read a tensor back; this thread does the async work (mapAsync) and wakes it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { KernelName, kernelSource } from '../../ops/kernels';
import type { Caps } from '../../ops/wgsl';
import { AdapterDesc, FLAG_BYTES, GpuInfo, ToGpu, WorkerStart } from './messages';
import { COMPUTE_LIMITS, ComputeLimits, planCaps } from './plan';

/** Dawn's Node binding: `create` makes the GPU object; `globals` are the WebGPU constants (GPUBufferUsage, …) */
interface Dawn {
  create(flags: string[]): GPU;
  globals: Record<string, unknown>;
}

let gpu: GPU; // the Dawn instance: kept referenced for the process's life (a collected instance crashes Dawn)
let device: GPUDevice;
let caps: Caps; // the kernels' variants and tile sizes on this device (plan.ts)
const buffers = new Map<number, GPUBuffer>();
const pipelines = new Map<KernelName, GPUComputePipeline>();
let encoder: GPUCommandEncoder | null = null;
let pass: GPUComputePassEncoder | null = null;
let spent: GPUBuffer[] = []; // parameter buffers to destroy once the queue is idle
let doomed: GPUBuffer[] = []; // freed buffers that the open encoder may still use: destroyed after its submit
let firstError: string | null = null;
const fail = (m: string) => {
  firstError ??= m;
};

function answer(sab: SharedArrayBuffer, state: 1 | 2, payload?: Uint8Array): void {
  const head = new Int32Array(sab, 0, 2);
  if (payload) new Uint8Array(sab, FLAG_BYTES, payload.length).set(payload);
  head[1] = payload?.length ?? 0;
  Atomics.store(head, 0, state);
  Atomics.notify(head, 0);
}
const errorAnswer = (sab: SharedArrayBuffer, m: string) => {
  const bytes = new TextEncoder().encode(m);
  answer(sab, 2, bytes.subarray(0, Math.max(0, sab.byteLength - FLAG_BYTES)));
};
const jsonAnswer = (sab: SharedArrayBuffer, info: GpuInfo) => answer(sab, 1, new TextEncoder().encode(JSON.stringify(info)));

function describe(a: GPUAdapter): AdapterDesc {
  const name = (a.info.description || `${a.info.vendor} ${a.info.device}`).replace(/\s+/g, ' ').trim();
  // software rasterizers run on the CPU: slower than lorakit's own WebAssembly kernels
  const fallback = (a as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false;
  const cpu = fallback || /llvmpipe|lavapipe|swiftshader|software|warp/i.test(`${name} ${a.info.device} ${a.info.architecture}`);
  return {
    name,
    vendor: a.info.vendor,
    type: cpu ? 'cpu' : 'gpu',
    features: [...a.features],
    maxStorageBufferBindingSize: a.limits.maxStorageBufferBindingSize,
    maxBufferSize: a.limits.maxBufferSize,
    subgroupMinSize: a.info.subgroupMinSize ?? 0,
    subgroupMaxSize: a.info.subgroupMaxSize ?? 0,
  };
}

async function init(): Promise<void> {
  const { sab, want, probe, features, limits: lower } = workerData as WorkerStart;
  try {
    const { create, globals } = loadDawn();
    Object.assign(globalThis, globals);
    gpu = create([]);
    (globalThis as { __lorakitDawn?: GPU }).__lorakitDawn = gpu;
    const found: GPUAdapter[] = [];
    for (const pref of ['high-performance', 'low-power', undefined] as const) {
      const a = await gpu.requestAdapter(pref ? { powerPreference: pref } : undefined);
      if (a && !found.some((f) => f.info.description === a.info.description && f.info.device === a.info.device)) found.push(a);
    }
    if (!found.length) return jsonAnswer(sab, { adapters: [], chosen: null });
    // a hardware adapter first, the high-performance (discrete) one before the low-power one (found in that order)
    const chosen = want
      ? found.find((a) => describe(a).name.toLowerCase().includes(want.toLowerCase()))
      : (found.find((a) => describe(a).type === 'gpu') ?? found[0]);
    if (!chosen) return jsonAnswer(sab, { adapters: found.map(describe), chosen: null, error: `no adapter matches --device ${want}` });
    if (probe) return jsonAnswer(sab, { adapters: found.map(describe), chosen: describe(chosen) });
    // shader-f16 and subgroups where the adapter has them (and they are not turned off); the compute limits at the
    // adapter's maximum (or lower when asked), since the tiles are sized from them
    const optional: GPUFeatureName[] = [
      ...(features?.f16 !== false ? (['shader-f16'] as const) : []),
      ...(features?.subgroups !== false ? (['subgroups'] as const) : []),
    ];
    const compute = Object.fromEntries(COMPUTE_LIMITS.map((k) => [k, Math.min(chosen.limits[k], lower?.[k] ?? Infinity)]));
    device = await chosen.requestDevice({
      requiredFeatures: optional.filter((f) => chosen.features.has(f)),
      requiredLimits: {
        maxStorageBufferBindingSize: chosen.limits.maxStorageBufferBindingSize,
        maxBufferSize: chosen.limits.maxBufferSize,
        maxStorageBuffersPerShaderStage: Math.min(10, chosen.limits.maxStorageBuffersPerShaderStage),
        ...compute,
      },
    });
    device.addEventListener('uncapturederror', (e) => fail(`WebGPU error: ${(e as GPUUncapturedErrorEvent).error?.message ?? e}`));
    void device.lost.then((i) => fail(`the GPU device was lost (${i.reason}: ${i.message})`));
    const l = device.limits;
    const limits = {
      maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
      maxBufferSize: l.maxBufferSize,
      ...(Object.fromEntries(COMPUTE_LIMITS.map((k) => [k, l[k]])) as ComputeLimits),
    };
    caps = planCaps(limits, {
      f16: device.features.has('shader-f16'),
      // the subgroup reductions count and name the subgroups by WGSL's subgroup_id and num_subgroups
      subgroups: device.features.has('subgroups') && !!gpu.wgslLanguageFeatures?.has('subgroup_id'),
      sg: chosen.info.subgroupMinSize ?? 0,
    });
    jsonAnswer(sab, { adapters: found.map(describe), chosen: describe(chosen), limits, features: [...device.features], caps });
  } catch (e) {
    errorAnswer(sab, `WebGPU could not start: ${(e as Error).message}`);
  }
}

/**
 * Dawn's Node binding: the `webgpu` package when it is installed (npm, the CLI), else the platform's dawn.node that
 * `npm run package` copies beside this bundle (dist/webgpu-native/<platform>-<arch>/), which the .vsix carries.
 */
function loadDawn(): Dawn {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- optional, found at run time (not bundled)
    return require('webgpu') as Dawn;
  } catch (e) {
    const arch = process.platform === 'darwin' ? 'universal' : process.arch;
    const native = path.join(__dirname, 'webgpu-native', `${process.platform}-${arch}`, 'dawn.node');
    if (!fs.existsSync(native))
      throw new Error(`the webgpu module is not installed and ${native} is missing (${(e as Error).message})`, { cause: e });
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a native binding at a path known only at run time
    return require(native) as Dawn;
  }
}

function pipeline(name: KernelName): GPUComputePipeline {
  let p = pipelines.get(name);
  if (p) return p;
  const code = kernelSource(name, caps);
  const module = device.createShaderModule({ code, label: name });
  void module.getCompilationInfo().then((info) => {
    const errs = info.messages.filter((m) => m.type === 'error');
    if (errs.length)
      fail(
        `WGSL kernel "${name}" does not compile:\n${errs.map((m) => `  line ${m.lineNum}:${m.linePos}: ${m.message}`).join('\n')}\n--- WGSL ---\n${code}`,
      );
  });
  p = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: name });
  pipelines.set(name, p);
  return p;
}

function endPass(): void {
  if (pass) pass.end();
  pass = null;
}
function flush(): void {
  endPass();
  if (encoder) device.queue.submit([encoder.finish()]);
  encoder = null;
  // destroying after the submit is allowed: the submitted work still sees the buffer
  for (const b of doomed) b.destroy();
  doomed = [];
}
const enc = () => (encoder ??= device.createCommandEncoder());

function run(m: Extract<ToGpu, { op: 'run' }>): void {
  const p = pipeline(m.kernel);
  const u = device.createBuffer({ size: 64, usage: GPUBufferUsage.UNIFORM, mappedAtCreation: true });
  new Uint32Array(u.getMappedRange()).set(m.params.slice(0, 16));
  u.unmap();
  spent.push(u);
  const entries = [{ binding: 0, resource: { buffer: u } }, ...m.bufs.map((id, i) => ({ binding: i + 1, resource: { buffer: buf(id) } }))];
  const bg = device.createBindGroup({ layout: p.getBindGroupLayout(0), entries });
  pass ??= enc().beginComputePass();
  pass.setPipeline(p);
  pass.setBindGroup(0, bg);
  pass.dispatchWorkgroups(...m.grid);
}

function buf(id: number): GPUBuffer {
  const b = buffers.get(id);
  if (!b) throw new Error(`internal: GPU buffer ${id} is not live`);
  return b;
}

async function handle(m: ToGpu): Promise<void> {
  switch (m.op) {
    case 'alloc': {
      const b = device.createBuffer({
        size: Math.max(4, Math.ceil(m.bytes / 4) * 4),
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      });
      buffers.set(m.id, b);
      if (m.data) {
        flush();
        writePadded(b, 0, m.data);
      }
      return;
    }
    case 'free': {
      const b = buffers.get(m.id);
      buffers.delete(m.id);
      if (!b) return;
      if (encoder) doomed.push(b);
      else b.destroy();
      return;
    }
    case 'write':
      flush();
      writePadded(buf(m.id), m.offset ?? 0, m.data);
      return;
    case 'copy':
      endPass();
      enc().copyBufferToBuffer(buf(m.src), m.srcOff, buf(m.dst), m.dstOff, m.bytes);
      return;
    case 'run':
      return run(m);
    case 'lose': // tests: the device goes away as a driver reset would take it
      flush();
      device.destroy();
      return;
    case 'destroy':
      flush();
      await device.queue.onSubmittedWorkDone();
      for (const b of buffers.values()) b.destroy();
      buffers.clear();
      device.destroy();
      // let the lost promise settle (and its callback run) before the worker is ended: Dawn settling it while the
      // worker is being terminated aborts the whole process (napi_throw FATAL), seen as a flaky crash at exit
      await device.lost;
      return answer(m.sab, 1);
    case 'read': {
      flush();
      const size = Math.max(4, Math.ceil(m.bytes / 4) * 4);
      const staging = device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      const e = device.createCommandEncoder();
      e.copyBufferToBuffer(buf(m.id), 0, staging, 0, size);
      device.queue.submit([e.finish()]);
      await staging.mapAsync(GPUMapMode.READ);
      spent.forEach((b) => b.destroy());
      spent = [];
      if (firstError) {
        staging.destroy();
        return errorAnswer(m.sab, firstError);
      }
      new Uint8Array(m.sab, FLAG_BYTES, m.bytes).set(new Uint8Array(staging.getMappedRange(), 0, m.bytes));
      staging.destroy();
      return answer(m.sab, 1);
    }
  }
}

/** queue.writeBuffer needs a multiple of 4 bytes */
function writePadded(b: GPUBuffer, offset: number, data: ArrayBufferView): void {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (bytes.length % 4 === 0) return device.queue.writeBuffer(b, offset, bytes as Uint8Array<ArrayBuffer>);
  const p = new Uint8Array(Math.ceil(bytes.length / 4) * 4);
  p.set(bytes);
  device.queue.writeBuffer(b, offset, p);
}

let chain: Promise<void> = init();
parentPort!.on('message', (m: ToGpu) => {
  chain = chain
    .then(() => handle(m))
    .catch((e: Error) => {
      fail(`${m.op}: ${e.message}`);
      if ('sab' in m) errorAnswer(m.sab, firstError!); // the caller is waiting: wake it with the error
    });
});
