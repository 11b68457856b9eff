;; RMSNorm on the CPU, rows shared among the threads, in reference.ts's arithmetic (f64, element by element in the
;; same order), so the results are the spec's bit for bit.
;; Forward parameters at $p: x w y rstd N C (i32), eps (f64 at +24). Backward: dy x w rstd dx N C (i32).
  (func (export "rmsnorm_steal") (param $p i32) (param $ctr i32) (param $chunk i32)
    (local $lo i32) (local $N i32)
    (local.set $N (i32.load offset=16 (local.get $p)))
    (block $d (loop $l
      (local.set $lo (i32.mul (i32.atomic.rmw.add (local.get $ctr) (i32.const 1)) (local.get $chunk)))
      (br_if $d (i32.ge_u (local.get $lo) (local.get $N)))
      (call $rmsnorm_rows (local.get $p) (local.get $lo) (call $minu (i32.add (local.get $lo) (local.get $chunk)) (local.get $N)))
      (br $l)))
  )

  (func $rmsnorm_rows (param $p i32) (param $n i32) (param $end i32)
    (local $x i32) (local $w i32) (local $y i32) (local $C i32) (local $c i32) (local $o i32)
    (local $ss f64) (local $r f64) (local $v f64)
    (local.set $w (i32.load offset=4 (local.get $p)))
    (local.set $C (i32.load offset=20 (local.get $p)))
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get $n) (local.get $end)))
      (local.set $o (i32.shl (i32.mul (local.get $n) (local.get $C)) (i32.const 2)))
      (local.set $x (i32.add (i32.load offset=0 (local.get $p)) (local.get $o)))
      (local.set $y (i32.add (i32.load offset=8 (local.get $p)) (local.get $o)))
      (local.set $ss (f64.const 0))
      (local.set $c (i32.const 0))
      (block $sd (loop $sl
        (br_if $sd (i32.ge_u (local.get $c) (local.get $C)))
        (local.set $v (f64.promote_f32 (f32.load (i32.add (local.get $x) (i32.shl (local.get $c) (i32.const 2))))))
        (local.set $ss (f64.add (local.get $ss) (f64.mul (local.get $v) (local.get $v))))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $sl)))
      ;; r = 1 / sqrt(ss / C + eps), kept as f32 (rstd) but used at f64 here, as the spec does
      (local.set $r (f64.div (f64.const 1)
        (f64.sqrt (f64.add (f64.div (local.get $ss) (f64.convert_i32_u (local.get $C))) (f64.load offset=24 (local.get $p))))))
      (f32.store (i32.add (i32.load offset=12 (local.get $p)) (i32.shl (local.get $n) (i32.const 2))) (f32.demote_f64 (local.get $r)))
      (local.set $c (i32.const 0))
      (block $yd (loop $yl
        (br_if $yd (i32.ge_u (local.get $c) (local.get $C)))
        ;; y = fround(x·r)·w
        (f32.store (i32.add (local.get $y) (i32.shl (local.get $c) (i32.const 2)))
          (f32.demote_f64 (f64.mul
            (f64.promote_f32 (f32.demote_f64 (f64.mul
              (f64.promote_f32 (f32.load (i32.add (local.get $x) (i32.shl (local.get $c) (i32.const 2)))))
              (local.get $r))))
            (f64.promote_f32 (f32.load (i32.add (local.get $w) (i32.shl (local.get $c) (i32.const 2))))))))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $yl)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $l)))
  )

  (func (export "rmsnorm_backward_steal") (param $p i32) (param $ctr i32) (param $chunk i32)
    (local $lo i32) (local $N i32)
    (local.set $N (i32.load offset=20 (local.get $p)))
    (block $d (loop $l
      (local.set $lo (i32.mul (i32.atomic.rmw.add (local.get $ctr) (i32.const 1)) (local.get $chunk)))
      (br_if $d (i32.ge_u (local.get $lo) (local.get $N)))
      (call $rmsnorm_backward_rows (local.get $p) (local.get $lo) (call $minu (i32.add (local.get $lo) (local.get $chunk)) (local.get $N)))
      (br $l)))
  )

  (func $rmsnorm_backward_rows (param $p i32) (param $n i32) (param $end i32)
    (local $dy i32) (local $x i32) (local $w i32) (local $dx i32) (local $C i32) (local $c i32) (local $o i32) (local $a i32)
    (local $r f64) (local $dot f64) (local $k f64) (local $dw f64)
    (local.set $w (i32.load offset=8 (local.get $p)))
    (local.set $C (i32.load offset=24 (local.get $p)))
    (block $d (loop $l
      (br_if $d (i32.ge_u (local.get $n) (local.get $end)))
      (local.set $o (i32.shl (i32.mul (local.get $n) (local.get $C)) (i32.const 2)))
      (local.set $dy (i32.add (i32.load offset=0 (local.get $p)) (local.get $o)))
      (local.set $x (i32.add (i32.load offset=4 (local.get $p)) (local.get $o)))
      (local.set $dx (i32.add (i32.load offset=16 (local.get $p)) (local.get $o)))
      (local.set $r (f64.promote_f32 (f32.load (i32.add (i32.load offset=12 (local.get $p)) (i32.shl (local.get $n) (i32.const 2))))))
      ;; dot = Σ dy·w·x
      (local.set $dot (f64.const 0))
      (local.set $c (i32.const 0))
      (block $sd (loop $sl
        (br_if $sd (i32.ge_u (local.get $c) (local.get $C)))
        (local.set $a (i32.shl (local.get $c) (i32.const 2)))
        (local.set $dot (f64.add (local.get $dot)
          (f64.mul (f64.mul (f64.promote_f32 (f32.load (i32.add (local.get $dy) (local.get $a))))
                            (f64.promote_f32 (f32.load (i32.add (local.get $w) (local.get $a)))))
                   (f64.promote_f32 (f32.load (i32.add (local.get $x) (local.get $a)))))))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $sl)))
      (local.set $k (f64.div (f64.mul (f64.mul (f64.mul (local.get $r) (local.get $r)) (local.get $r)) (local.get $dot))
        (f64.convert_i32_u (local.get $C))))
      ;; dx = dy·w·r − k·x
      (local.set $c (i32.const 0))
      (block $xd (loop $xl
        (br_if $xd (i32.ge_u (local.get $c) (local.get $C)))
        (local.set $a (i32.shl (local.get $c) (i32.const 2)))
        (local.set $dw (f64.mul (f64.mul (f64.promote_f32 (f32.load (i32.add (local.get $dy) (local.get $a))))
                                         (f64.promote_f32 (f32.load (i32.add (local.get $w) (local.get $a)))))
                                (local.get $r)))
        (f32.store (i32.add (local.get $dx) (local.get $a))
          (f32.demote_f64 (f64.sub (local.get $dw) (f64.mul (local.get $k) (f64.promote_f32 (f32.load (i32.add (local.get $x) (local.get $a))))))))
        (local.set $c (i32.add (local.get $c) (i32.const 1)))
        (br $xl)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $l)))
  )
