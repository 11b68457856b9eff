// The WebGPU kernels' plan (backend/webgpu/plan.ts): tile sizes from an adapter's limits, features on or off, and
// every kernel's workgroup memory and size within the limits it was planned for. Pure: no adapter needed.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { DEFAULT_LIMITS, PLAIN_CAPS, planCaps } from '../../src/engine/backend/webgpu/plan';
import { KERNELS, KernelName, kernelSource } from '../../src/engine/ops/kernels';

const limits = (storage: number, invocations = 256) => ({
  maxComputeWorkgroupStorageSize: storage,
  maxComputeInvocationsPerWorkgroup: invocations,
  maxComputeWorkgroupSizeX: invocations,
  maxComputeWorkgroupSizeY: invocations,
});
const on = { f16: true, subgroups: true, sg: 32 };

test('tiles grow with the workgroup storage: the defaults, 32 KiB (lavapipe), 48 KiB (NVIDIA)', () => {
  const pick = (s: number) => {
    const c = planCaps(limits(s, 1024), on);
    return [c.mmBK, c.attnKT, c.kvQT, c.kvKB, c.rowWg];
  };
  // bk·64·8 ≤ storage; kt·128·8 ≤ storage; qt·(128·8 + 8) ≤ storage; capped at 64, 32, 32
  assert.deepEqual(pick(16384), [32, 16, 15, 64, 256]);
  assert.deepEqual(pick(32768), [64, 32, 31, 64, 256]);
  assert.deepEqual(pick(49152), [64, 32, 32, 64, 256]);
  assert.deepEqual([PLAIN_CAPS.mmBK, PLAIN_CAPS.attnKT, PLAIN_CAPS.kvQT], [32, 16, 15]);
});

test('features follow the device: off when not granted, subgroups only with 4 to 128 lanes', () => {
  assert.equal(planCaps(DEFAULT_LIMITS, { ...on, f16: false }).f16, false);
  assert.equal(planCaps(DEFAULT_LIMITS, { ...on, subgroups: false }).subgroups, false);
  assert.equal(planCaps(DEFAULT_LIMITS, { ...on, sg: 1 }).subgroups, false); // a subgroup of one lane reduces nothing
  assert.equal(planCaps(DEFAULT_LIMITS, { ...on, sg: 0 }).subgroups, false); // the adapter did not say
  assert.equal(planCaps(DEFAULT_LIMITS, { ...on, sg: 8 }).subgroups, true);
  assert.equal(planCaps(DEFAULT_LIMITS, { ...on, sg: 256 }).subgroups, false);
  assert.equal(PLAIN_CAPS.f16 || PLAIN_CAPS.subgroups, false);
});

/** bytes of workgroup memory a WGSL module declares (f32/u32 4 bytes, f16 2) */
function workgroupBytes(wgsl: string): number {
  let total = 0;
  for (const m of wgsl.matchAll(/var<workgroup>\s+\w+\s*:\s*([^;]+);/g)) {
    const dims = [...m[1].matchAll(/,\s*(\d+)>/g)].map((d) => Number(d[1]));
    total += dims.reduce((a, b) => a * b, 1) * (/\bf16\b/.test(m[1]) ? 2 : 4);
  }
  return total;
}

test('the workgroup memory the plain kernels stage at the default limits, by hand', () => {
  // A and B slices 32 deep of 64 rows; K and V tiles of 16 keys of a 128-wide head; q and dout tiles of 15 rows + lse, dots
  assert.equal(workgroupBytes(kernelSource('matmul', PLAIN_CAPS)), 2 * 32 * 64 * 4);
  assert.equal(workgroupBytes(kernelSource('attention_tiled', PLAIN_CAPS)), 2 * 16 * 128 * 4);
  assert.equal(workgroupBytes(kernelSource('attention_bwd_kv_tiled', PLAIN_CAPS)), 2 * 15 * 128 * 4 + 2 * 15 * 4);
  // an f16 weight's B slice in f16
  assert.equal(workgroupBytes(kernelSource('matmul_f16', { ...PLAIN_CAPS, f16: true })), 32 * 64 * 4 + 32 * 64 * 2);
});

test("every kernel's workgroup memory and size fit the limits it was planned for, on every path", () => {
  for (const [storage, inv, feats] of [
    [16384, 256, { f16: false, subgroups: false, sg: 1 }],
    [16384, 256, { f16: true, subgroups: true, sg: 4 }],
    [32768, 1024, { f16: true, subgroups: true, sg: 8 }],
    [49152, 1024, { f16: true, subgroups: true, sg: 32 }],
    [65536, 1024, { f16: true, subgroups: true, sg: 64 }],
  ] as const) {
    const caps = planCaps(limits(storage, inv), feats);
    for (const name of Object.keys(KERNELS) as KernelName[]) {
      // the backend runs these only on a device with the feature
      if ((name.endsWith('_f16') && !caps.f16) || (name.endsWith('_sg') && !caps.subgroups)) continue;
      const wgsl = kernelSource(name, caps);
      const bytes = workgroupBytes(wgsl);
      assert.ok(bytes <= storage, `${name}: ${bytes} B of workgroup memory at a ${storage} B limit`);
      const size = /@workgroup_size\(([^)]*)\)/.exec(wgsl)![1].split(',').map(Number);
      const n = size.reduce((a, b) => a * b, 1);
      assert.ok(n <= inv && size[0] <= inv, `${name}: workgroup of ${size} at ${inv} invocations`);
      if (!caps.subgroups)
        assert.ok(!/\bsubgroup[A-Z]\w*\(|@builtin\((num_)?subgroup|enable subgroups/.test(wgsl), `${name}: subgroups without the feature`);
      if (!caps.f16) assert.ok(!/\bf16\b/.test(wgsl), `${name}: f16 without shader-f16`);
    }
  }
});
