// 4-bit quantization: bitsandbytes' rules (ties, nibble order, tails, zero blocks, double quantization), the fused
// dequant-matmul kernel against dequantize-then-multiply, and the bnb layout's reader on good and broken files.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import {
  DYNAMIC_MAP,
  FP4,
  NF4,
  QuantType,
  checkBlocksize,
  dequantize4bit,
  doubleQuantize,
  nestedToAbsmax,
  quantize4bit,
} from '../../src/engine/core/blockwise';
import { bitsPerParam, quantBytes, quantBytesFor, quantizeWeight } from '../../src/engine/core/qweight';
import { pyFloat, quantStateJson } from '../../src/engine/formats/bnb';
import { Rng } from '../../src/engine/core/rng';

const rng = new Rng(7);
const randn = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
const nibble = (p: Uint8Array, i: number) => (i & 1 ? p[i >> 1] & 15 : p[i >> 1] >> 4);
const f32mid = (a: number, b: number) => Math.fround(Math.fround(a + b) / 2);

test('NF4: values on a midpoint take the lower code, element 2j is the high nibble, odd tails pad with code 7', () => {
  // one block of 64 with absmax 1: every midpoint, a hair above it, and the code values themselves
  const x = new Float32Array(64);
  x[0] = 1;
  for (let i = 0; i < 15; i++) {
    const m = f32mid(NF4[i], NF4[i + 1]);
    x[1 + i] = m; // exactly on the midpoint: lower code
    x[16 + i] = m + Math.abs(m) * 2 ** -23 + 1e-30; // just above: upper code
    x[31 + i] = NF4[i];
  }
  const { packed, absmax } = quantize4bit(x, 64, 'nf4');
  assert.equal(absmax[0], 1);
  assert.equal(nibble(packed, 0), 15);
  for (let i = 0; i < 15; i++) {
    assert.equal(nibble(packed, 1 + i), i, `midpoint ${i}`);
    assert.equal(nibble(packed, 16 + i), i + 1, `above midpoint ${i}`);
    assert.equal(nibble(packed, 31 + i), i, `code value ${i}`);
  }
  assert.equal(packed[0] >> 4, 15, 'element 0 in the high nibble');
  // odd length 5: third byte's low nibble is the pad, code 7 (0.0)
  const odd = quantize4bit(new Float32Array([1, -1, 0.5, -0.5, 0.25]), 64, 'nf4');
  assert.equal(odd.packed.length, 3);
  assert.equal(odd.packed[2] & 15, 7);
  assert.deepEqual(
    [...odd.packed]
      .map((b) => [b >> 4, b & 15])
      .flat()
      .slice(0, 5),
    [15, 0, 12, 2, 10],
  );
});

test('blocks: partial last block, an all-zero block, the reciprocal scale and bf16-sized inputs', () => {
  const x = randn(64 * 3 + 17);
  x.fill(0, 64, 128); // block 1 all zero
  const { packed, absmax } = quantize4bit(x, 64, 'nf4');
  assert.equal(absmax.length, 4);
  assert.equal(absmax[1], 0);
  for (let i = 64; i < 128; i++) assert.equal(nibble(packed, i), 7);
  let m = 0;
  for (let i = 192; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  assert.equal(absmax[3], Math.fround(m), 'the tail block has its own absmax');
  // each code is the nearest to x·fround(1/absmax)
  const y = dequantize4bit(packed, absmax, 64, 'nf4', x.length);
  for (let i = 0; i < x.length; i++) {
    const b = Math.floor(i / 64);
    if (absmax[b] === 0) {
      assert.equal(y[i], 0);
      continue;
    }
    const v = Math.fround(x[i] * Math.fround(1 / absmax[b]));
    const best = Math.min(...[...NF4].map((c) => Math.abs(c - v)));
    assert.ok(Math.abs(NF4[nibble(packed, i)] - v) <= best + 1e-7, `element ${i}`);
    assert.equal(y[i], Math.fround(NF4[nibble(packed, i)] * absmax[b]));
  }
  assert.throws(() => quantize4bit(new Float32Array([1, NaN]), 64, 'nf4'), /not a number/);
  assert.throws(() => quantize4bit(new Float32Array([1, Infinity]), 64, 'nf4'), /infinite/);
  for (const bad of [16, 48, 8192, 0]) assert.throws(() => checkBlocksize(bad), /power of two from 32 to 4096/);
});

test('FP4: the sorted-table search of bitsandbytes, including its two zeros', () => {
  const x = new Float32Array([1, 0, 1e-4, -1e-4, -1, 0.25, -0.25, f32mid(FP4[7], FP4[4]) /* 0.25..0.333 tie */]);
  const { packed } = quantize4bit(x, 32, 'fp4');
  const codes = [...x].map((_, i) => nibble(packed, i));
  // 0 → code 0; a tiny positive value lands past both zeros (code 8, also 0.0); a tiny negative one on code 9 or 0
  assert.deepEqual(codes.slice(0, 7), [3, 0, 8, 0, 11, 7, 15]);
  assert.equal(codes[7], 7, 'the tie between 0.25 and 0.333 takes the lower value');
});

test('double quantization: offset is the f32 mean, codes index the dynamic map, decoded scales are close', () => {
  assert.equal(DYNAMIC_MAP.length, 256);
  for (let i = 1; i < 256; i++) assert.ok(DYNAMIC_MAP[i] > DYNAMIC_MAP[i - 1], 'sorted');
  assert.equal(DYNAMIC_MAP[255], 1);
  const absmax = Float32Array.from(randn(1000), (v) => Math.abs(v) + 0.1);
  const d = doubleQuantize(absmax);
  assert.equal(d.absmax.length, 4);
  const mean = absmax.reduce((a, b) => a + b, 0) / absmax.length;
  assert.ok(Math.abs(d.offset - mean) < 1e-6);
  const back = nestedToAbsmax(d);
  for (let i = 0; i < absmax.length; i++) {
    const scale = d.absmax[Math.floor(i / 256)];
    assert.ok(Math.abs(back[i] - absmax[i]) <= scale * 0.02 + 1e-7, `absmax ${i}: ${back[i]} vs ${absmax[i]}`);
  }
});

test('stored bits per parameter: 4.127 for NF4 + DQ at block 64, and bytes held match the analytic count', () => {
  assert.equal(bitsPerParam({ type: 'nf4', blocksize: 64, doubleQuant: true }).toFixed(3), '4.127');
  assert.equal(bitsPerParam({ type: 'nf4', blocksize: 64, doubleQuant: false }), 4.5);
  for (const doubleQuant of [false, true])
    for (const [r, c, bs] of [
      [96, 64, 64],
      [37, 29, 32],
      [512, 300, 128],
    ]) {
      const cfg = { type: 'nf4' as QuantType, blocksize: bs, doubleQuant };
      const q = quantizeWeight(randn(r * c), [r, c], cfg, 'float32');
      assert.equal(quantBytes(q), quantBytesFor(r * c, cfg));
    }
});

test('quant_state JSON is json.dumps of bitsandbytes fields, floats written as Python writes them', () => {
  for (const [x, s] of [
    [0.1, '0.1'],
    [1, '1.0'],
    [1e-5, '1e-05'],
    [0.0001, '0.0001'],
    [1.5e16, '1.5e+16'],
    [123456.5, '123456.5'],
    [Math.fround(0.0123), '0.012299999594688416'],
    [-2.5e-7, '-2.5e-07'],
    [1e16, '1e+16'],
    [0, '0.0'],
  ] as [number, string][])
    assert.equal(pyFloat(x), s);
  const q = quantizeWeight(randn(64 * 4), [4, 64], { type: 'nf4', blocksize: 64, doubleQuant: true }, 'bfloat16');
  const j = quantStateJson(q);
  assert.match(
    j,
    /^\{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": \[4, 64\], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": [0-9.e-]+\}$/,
  );
  assert.equal(JSON.parse(j).nested_offset, q.nested!.offset);
});
