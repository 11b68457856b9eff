;; RoPE on the CPU, rows shared among the threads, in reference.ts's arithmetic (f64 products and sums rounded
;; once to f32), so the results are the spec's bit for bit.
;; Parameters at $p: x out N heads D pos cos sin inverse (i32); cos/sin are (positions, D/2) tables.
  (func (export "rope_steal") (param $p i32) (param $ctr i32) (param $chunk i32)
    (local $lo i32) (local $N i32)
    (local.set $N (i32.load offset=8 (local.get $p)))
    (block $d (loop $l
      (local.set $lo (i32.mul (i32.atomic.rmw.add (local.get $ctr) (i32.const 1)) (local.get $chunk)))
      (br_if $d (i32.ge_u (local.get $lo) (local.get $N)))
      (call $rope_rows (local.get $p) (local.get $lo) (call $minu (i32.add (local.get $lo) (local.get $chunk)) (local.get $N)))
      (br $l)))
  )

  (func $rope_rows (param $p i32) (param $n i32) (param $end i32)
    (local $x i32) (local $out i32) (local $heads i32) (local $D i32) (local $h2 i32) (local $t i32) (local $h i32)
    (local $i i32) (local $o i32) (local $a f64) (local $b f64) (local $c f64) (local $s f64)
    (local.set $heads (i32.load offset=12 (local.get $p)))
    (local.set $D (i32.load offset=16 (local.get $p)))
    (local.set $h2 (i32.shr_u (local.get $D) (i32.const 1)))
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get $n) (local.get $end)))
      ;; table row of this row's position, in bytes
      (local.set $t (i32.shl (i32.mul (i32.load (i32.add (i32.load offset=20 (local.get $p)) (i32.shl (local.get $n) (i32.const 2))))
        (local.get $h2)) (i32.const 2)))
      (local.set $h (i32.const 0))
      (block $hd (loop $hl
        (br_if $hd (i32.ge_u (local.get $h) (local.get $heads)))
        (local.set $o (i32.shl (i32.mul (i32.add (i32.mul (local.get $n) (local.get $heads)) (local.get $h)) (local.get $D)) (i32.const 2)))
        (local.set $x (i32.add (i32.load offset=0 (local.get $p)) (local.get $o)))
        (local.set $out (i32.add (i32.load offset=4 (local.get $p)) (local.get $o)))
        (local.set $i (i32.const 0))
        (block $id (loop $il
          (br_if $id (i32.ge_u (local.get $i) (local.get $h2)))
          (local.set $c (f64.promote_f32 (f32.load (i32.add (i32.add (i32.load offset=24 (local.get $p)) (local.get $t)) (i32.shl (local.get $i) (i32.const 2))))))
          (local.set $s (f64.promote_f32 (f32.load (i32.add (i32.add (i32.load offset=28 (local.get $p)) (local.get $t)) (i32.shl (local.get $i) (i32.const 2))))))
          (if (i32.load offset=32 (local.get $p)) (then (local.set $s (f64.neg (local.get $s)))))
          (local.set $a (f64.promote_f32 (f32.load (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2))))))
          (local.set $b (f64.promote_f32 (f32.load (i32.add (local.get $x) (i32.shl (i32.add (local.get $i) (local.get $h2)) (i32.const 2))))))
          (f32.store (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2)))
            (f32.demote_f64 (f64.sub (f64.mul (local.get $a) (local.get $c)) (f64.mul (local.get $b) (local.get $s)))))
          (f32.store (i32.add (local.get $out) (i32.shl (i32.add (local.get $i) (local.get $h2)) (i32.const 2)))
            (f32.demote_f64 (f64.add (f64.mul (local.get $b) (local.get $c)) (f64.mul (local.get $a) (local.get $s)))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br $il)))
        (local.set $h (i32.add (local.get $h) (i32.const 1)))
        (br $hl)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $l)))
  )
