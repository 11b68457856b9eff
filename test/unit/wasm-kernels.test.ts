// Which build of the WebAssembly kernels runs (ops/wasm-kernels.ts): FMA (relaxed SIMD) wherever it runs, which here
// means always (the tests run with --experimental-wasm-relaxed-simd, and a process without it turns it on itself),
// the plain build when asked for ({ fma: false }, LORAKIT_SIMD=plain), and the plain build where relaxed SIMD is
// missing. Also `lorakit info --json`'s "simd" from a Node started without the flag.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { WasmRuntime } from '../../src/engine/ops/wasm';
import { RELAXED_SIMD_FLAG, chooseKernels, relaxedSimd } from '../../src/engine/ops/wasm-kernels';
import { CpuBackend } from '../../src/engine/backend/cpu/cpu';
import { UserError } from '../../src/engine/core/errors';
import { makeTinyModel } from '../../src/engine/fixtures/model';
import { tmpDir } from '../helpers';

/** run f with LORAKIT_SIMD set to v (undefined: unset) */
function withSimdEnv<T>(v: string | undefined, f: () => T): T {
  const keep = process.env.LORAKIT_SIMD;
  if (v === undefined) delete process.env.LORAKIT_SIMD;
  else process.env.LORAKIT_SIMD = v;
  try {
    return f();
  } finally {
    if (keep === undefined) delete process.env.LORAKIT_SIMD;
    else process.env.LORAKIT_SIMD = keep;
  }
}

const fmaOf = (opts?: { fma?: boolean }) => {
  const rt = new WasmRuntime(1, opts);
  rt.dispose();
  return rt.fma;
};

test('the tests run with relaxed SIMD on, so the runtime takes the FMA kernels by default; { fma: false } takes the plain ones', () => {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 22) assert.ok(process.execArgv.includes(RELAXED_SIMD_FLAG), `scripts/test.mjs starts the tests with ${RELAXED_SIMD_FLAG}`);
  assert.equal(relaxedSimd(), true);
  withSimdEnv(undefined, () => {
    assert.equal(fmaOf(), true);
    assert.equal(fmaOf({ fma: false }), false);
    assert.equal(fmaOf({ fma: true }), true);
    const be = new CpuBackend({ threads: 2 });
    assert.match(be.name, /^cpu \(WebAssembly SIMD \+ FMA, 2 threads\)$/);
    be.dispose();
    const plain = new CpuBackend({ threads: 1, fma: false });
    assert.match(plain.name, /^cpu \(WebAssembly SIMD, 1 thread\)$/);
    plain.dispose();
  });
});

test('LORAKIT_SIMD=plain|fma|auto picks the build; an explicit option wins; anything else is a user error', () => {
  withSimdEnv('plain', () => {
    assert.equal(fmaOf(), false);
    assert.equal(fmaOf({ fma: true }), true, 'the option wins over the environment');
  });
  withSimdEnv('fma', () => {
    assert.equal(fmaOf(), true);
    assert.equal(fmaOf({ fma: false }), false);
  });
  withSimdEnv('auto', () => assert.equal(fmaOf(), true));
  withSimdEnv('fast', () =>
    assert.throws(
      () => fmaOf(),
      (e: unknown) => e instanceof UserError && /LORAKIT_SIMD is "fast"/.test(String(e)),
    ),
  );
});

test('where WebAssembly lacks relaxed SIMD: the plain kernels, and a clear error when FMA is demanded', () => {
  const missing = () => false;
  assert.equal(chooseKernels(undefined, missing).fma, false);
  assert.equal(chooseKernels(false, missing).fma, false);
  assert.throws(
    () => chooseKernels(true, missing),
    (e: unknown) => e instanceof UserError && /relaxed SIMD/.test(String(e)),
  );
  // the plain build never asks (nor turns on the flag)
  const never = () => assert.fail('asked for relaxed SIMD');
  assert.equal(chooseKernels(false, never).fma, false);
  // both builds are valid modules here, and not the same bytes
  const plain = chooseKernels(false).bytes,
    fma = chooseKernels(true).bytes;
  assert.ok(WebAssembly.validate(plain) && WebAssembly.validate(fma));
  assert.notDeepEqual(plain, fma);
});

test('lorakit info --json reports the kernels, from a Node started without the flag (the CLI turns relaxed SIMD on itself)', () => {
  const model = path.join(tmpDir('simd'), 'model');
  makeTinyModel(model, {});
  const info = (simd?: string) => {
    const env: NodeJS.ProcessEnv = { ...process.env, LORAKIT_THREADS: '1' };
    delete env.LORAKIT_SIMD;
    if (simd) env.LORAKIT_SIMD = simd;
    // spawnSync passes no execArgv: a plain `node bin/lorakit.js`
    const r = spawnSync(process.execPath, [path.resolve('bin/lorakit.js'), 'info', '--model', model, '--json'], { encoding: 'utf8', env });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout).simd;
  };
  assert.equal(info(), 'relaxed (FMA)');
  assert.equal(info('plain'), 'plain');
});
