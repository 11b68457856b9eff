;; out = a + b over n floats (n a multiple of 4), on all threads: each takes $chunk values (a multiple of 4) at a
;; time from the counter at $ctr. An f32 sum is correctly rounded, so this is reference.ts's add bit for bit.
  (func (export "add_steal") (param $a i32) (param $b i32) (param $out i32) (param $n i32) (param $ctr i32) (param $chunk i32)
    (local $lo i32) (local $o i32) (local $e i32)
    (block $d (loop $l
      (local.set $lo (i32.mul (i32.atomic.rmw.add (local.get $ctr) (i32.const 1)) (local.get $chunk)))
      (br_if $d (i32.ge_u (local.get $lo) (local.get $n)))
      (local.set $o (i32.shl (local.get $lo) (i32.const 2)))
      (local.set $e (i32.shl (call $minu (i32.add (local.get $lo) (local.get $chunk)) (local.get $n)) (i32.const 2)))
      (block $vd (loop $vl
        (br_if $vd (i32.ge_u (local.get $o) (local.get $e)))
        (v128.store (i32.add (local.get $out) (local.get $o))
          (f32x4.add (v128.load (i32.add (local.get $a) (local.get $o))) (v128.load (i32.add (local.get $b) (local.get $o)))))
        (local.set $o (i32.add (local.get $o) (i32.const 16)))
        (br $vl)))
      (br $l)))
  )
