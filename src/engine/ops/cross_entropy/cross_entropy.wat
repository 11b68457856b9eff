  ;; Cross-entropy: N rows of V logits at $x become (softmax − onehot)·g in place for rows whose target (i32 at
  ;; $t) is ≥ 0, zeros otherwise; each row's max and Σexp(x − max) go to $stats (f64 pairs) for the loss.
  (func (export "cross_entropy") (param $x i32) (param $N i32) (param $V i32) (param $t i32) (param $g f32) (param $stats i32)
    (call $ce_rows (local.get $x) (i32.const 0) (local.get $N) (local.get $N) (local.get $V) (local.get $t) (local.get $g) (local.get $stats))
  )

  ;; The same on all threads: each takes $chunk rows at a time from the counter at $ctr ($g as its f32 bits).
  (func (export "cross_entropy_steal") (param $x i32) (param $N i32) (param $V i32) (param $t i32) (param $g i32) (param $stats i32)
    (param $ctr i32) (param $chunk i32)
    (local $lo i32) (local $hi i32)
    (block $d (loop $l
      (local.set $lo (i32.mul (i32.atomic.rmw.add (local.get $ctr) (i32.const 1)) (local.get $chunk)))
      (br_if $d (i32.ge_u (local.get $lo) (local.get $N)))
      (local.set $hi (i32.add (local.get $lo) (local.get $chunk)))
      (if (i32.gt_u (local.get $hi) (local.get $N)) (then (local.set $hi (local.get $N))))
      (call $ce_rows (local.get $x) (local.get $lo) (local.get $hi) (local.get $N) (local.get $V) (local.get $t)
        (f32.reinterpret_i32 (local.get $g)) (local.get $stats))
      (br $l)))
  )

  ;; rows [$n, $end) of the N
  (func $ce_rows (param $x i32) (param $n i32) (param $end i32) (param $N i32) (param $V i32) (param $t i32) (param $g f32) (param $stats i32)
    (local $row i32) (local $m f32) (local $sum f64) (local $tg i32) (local $a i32)
    (block $d (loop $l
      (br_if $d (i32.ge_s (local.get $n) (local.get $end)))
      (local.set $row (i32.add (local.get $x) (i32.shl (i32.mul (local.get $n) (local.get $V)) (i32.const 2))))
      (local.set $tg (i32.load (i32.add (local.get $t) (i32.shl (local.get $n) (i32.const 2)))))
      (if (i32.lt_s (local.get $tg) (i32.const 0))
        (then (call $zero (local.get $row) (i32.const 0) (local.get $V)))
        (else
          (local.set $m (call $rowmax (local.get $row) (i32.const 0) (local.get $V)))
          (f64.store (i32.add (local.get $stats) (i32.shl (local.get $n) (i32.const 4))) (f64.promote_f32 (local.get $m)))
          (f64.store offset=8 (i32.add (local.get $stats) (i32.shl (local.get $n) (i32.const 4)))
            (f64.promote_f32 (f32.load (i32.add (local.get $row) (i32.shl (local.get $tg) (i32.const 2))))))
          (local.set $sum (call $expsum (local.get $row) (i32.const 0) (local.get $V) (local.get $m) (f32.const 1)))
          (call $scale (local.get $row) (i32.const 0) (local.get $V) (f32.demote_f64 (f64.div (f64.promote_f32 (local.get $g)) (local.get $sum))))
          (local.set $a (i32.add (local.get $row) (i32.shl (local.get $tg) (i32.const 2))))
          (f32.store (local.get $a) (f32.sub (f32.load (local.get $a)) (local.get $g)))
          ;; the sum replaces the max slot's partner: stats[n] = (max, logit[target]), sums[n] after the pairs
          (f64.store (i32.add (i32.add (local.get $stats) (i32.shl (local.get $N) (i32.const 4))) (i32.shl (local.get $n) (i32.const 3))) (local.get $sum))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $l)))
  )
