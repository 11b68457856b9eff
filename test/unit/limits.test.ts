// Resource limits that used to fail deep inside a kernel (issue 10 #13): the WebAssembly arena refuses to pass
// what its 32-bit offsets can address, with a clear error, instead of wrapping to a negative offset.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { WasmRuntime, ARENA_LIMIT } from '../../src/engine/ops/wasm';
import { UserError } from '../../src/engine/core/errors';

test('the WebAssembly arena refuses an allocation past 2 GiB with a user error (was: memory access out of bounds)', () => {
  const rt = new WasmRuntime(1);
  try {
    const small = rt.alloc(1000);
    assert.ok(small > 0);
    assert.throws(
      () => rt.alloc(ARENA_LIMIT / 4),
      (e: unknown) => e instanceof UserError && /more than the 2\.0 GiB|GiB it can address/.test((e as Error).message),
    );
    assert.ok(rt.bytes() < 1 << 30, 'nothing was grown for the refused allocation');
  } finally {
    rt.dispose();
  }
});
