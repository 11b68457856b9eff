// The FMA variant of the CPU kernels (scripts/wat-fuse.mjs): which mul-adds become relaxed_madd / relaxed_nmadd,
// which stay (operands that may not change places, a − a·b's other order), and that every line keeps its number.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fuseMulAdds, hasLoopMulAdds } from '../../scripts/wat-fuse.mjs';

const squash = (s: string) => s.replace(/\s+/g, ' ').replace(/ \)/g, ')').trim();

test('mul-adds fuse in either operand order, a − a·b becomes relaxed_nmadd, and a·b − c stays', () => {
  const src = `
  (func $f (param $a v128) (param $b v128) (param $c v128) (result v128)
    (f32x4.add (local.get $c) (f32x4.mul (local.get $a) (local.get $b)))
    (f32x4.add (f32x4.mul (local.get $a) (local.get $b)) (local.get $c))
    (f32x4.sub (local.get $c) (f32x4.mul (local.get $a) (local.get $b)))
    (f32x4.sub (f32x4.mul (local.get $a) (local.get $b)) (local.get $c))
    (f32x4.add (f32x4.mul (local.get $a) (local.get $b)) (f32x4.mul (local.get $c) (local.get $c)))
    (f64x2.add (local.get $c) (f64x2.mul (local.get $a) (local.get $b))))`;
  const r = fuseMulAdds(src);
  assert.deepEqual([r.madd, r.nmadd, r.kept], [3, 1, 0]);
  assert.equal(
    squash(r.text),
    squash(`
  (func $f (param $a v128) (param $b v128) (param $c v128) (result v128)
    (f32x4.relaxed_madd (local.get $a) (local.get $b) (local.get $c))
    (f32x4.relaxed_madd (local.get $a) (local.get $b) (local.get $c))
    (f32x4.relaxed_nmadd (local.get $a) (local.get $b) (local.get $c))
    (f32x4.sub (f32x4.mul (local.get $a) (local.get $b)) (local.get $c))
    (f32x4.relaxed_madd (local.get $a) (local.get $b) (f32x4.mul (local.get $c) (local.get $c)))
    (f64x2.add (local.get $c) (f64x2.mul (local.get $a) (local.get $b))))`),
  );
});

test('nested mul-adds fuse inside out; comments, strings and line numbers survive', () => {
  const src = `(func (export "a (f32x4.add") ;; (f32x4.add (local.get 0) (f32x4.mul (local.get 1) (local.get 2)))
  (; (f32x4.add (local.get 0) (f32x4.mul (local.get 1) (local.get 2))) ;)
  (f32x4.add
    (f32x4.add (f32x4.mul (local.get $y) (local.get $z)) ;; y·z + x
      (local.get $x))
    (v128.const f32x4 1 1 1 1)))`;
  const r = fuseMulAdds(src);
  assert.equal(r.madd, 1);
  assert.equal(r.text.split('\n').length, src.split('\n').length, 'every line keeps its number');
  assert.ok(r.text.startsWith('(func (export "a (f32x4.add") ;; (f32x4.add (local.get 0)'), 'the string and the comments as they were');
  assert.match(
    squash(r.text),
    /\(f32x4\.add \(f32x4\.relaxed_madd \(local\.get \$y\) \(local\.get \$z\) \(local\.get \$x\)\) \(v128\.const f32x4 1 1 1 1\)\)\)$/,
  );
});

test('an addend that would move past a write it depends on stays unfused', () => {
  // X = (local.tee $a …) runs before the product reads $a: moving it after would change the product
  const tee = fuseMulAdds('(f32x4.add (local.tee $a (local.get $c)) (f32x4.mul (local.get $a) (local.get $b)))');
  assert.deepEqual([tee.madd, tee.kept], [0, 1]);
  // a call may write the memory the addend loads
  const call = fuseMulAdds('(f32x4.add (v128.load (local.get $p)) (f32x4.mul (call $f (local.get $p)) (local.get $b)))');
  assert.deepEqual([call.madd, call.kept], [0, 1]);
  // but a call may move past a local read (it cannot write this function's locals), and loads past loads
  assert.equal(fuseMulAdds('(f32x4.add (local.get $acc) (f32x4.mul (call $f (local.get $p)) (local.get $b)))').madd, 1);
  assert.equal(fuseMulAdds('(f32x4.add (v128.load (local.get $o)) (f32x4.mul (local.get $s) (v128.load (local.get $p))))').madd, 1);
  // (mul A B) first: nothing moves, so it fuses whatever A, B and X do
  assert.equal(fuseMulAdds('(f32x4.add (f32x4.mul (local.tee $a (local.get $c)) (local.get $b)) (call $g))').madd, 1);
});

test('hasLoopMulAdds: a loop that multiplies and adds f32x4, flat or folded', () => {
  assert.ok(hasLoopMulAdds('(func (loop $l (local.set $x (f32x4.add (local.get $x) (f32x4.mul (local.get $a) (local.get $b))))))'));
  assert.ok(hasLoopMulAdds('(func (loop $l local.get $a local.get $b f32x4.mul local.get $x f32x4.add local.set $x))'));
  assert.ok(!hasLoopMulAdds('(func (local.set $x (f32x4.add (local.get $x) (f32x4.mul (local.get $a) (local.get $b)))))'), 'not in a loop');
  assert.ok(!hasLoopMulAdds('(func (loop $l (local.set $x (f32x4.mul (local.get $x) (local.get $a)))))'));
});

test("the kernels' hot loops fuse: the FMA build's count by fragment (node scripts/wat.mjs --json)", () => {
  const r = spawnSync(process.execPath, ['scripts/wat.mjs', '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const fused = JSON.parse(r.stdout) as Record<string, { madd: number; nmadd: number; kept: number }>;
  for (const f of [
    'matmul/gemm.wat',
    'matmul/gemv.wat',
    'qmatmul/qgemv.wat',
    'attention/decode.wat',
    'attention/softmax.wat',
    'simd-math.wat',
  ])
    assert.ok(fused[f]?.madd > 0, `${f}: ${JSON.stringify(fused[f])}`);
  assert.ok(fused['simd-math.wat'].nmadd > 0, "exp's range reduction x − n·ln2 is an nmadd");
});
