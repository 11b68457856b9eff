;; Attention's softmax on the CPU, in place on the scores: the causal (and sliding-window) mask, its backward, and
;; the probabilities rebuilt from the saved log-sum-exp. reference.ts is the spec.
  ;; Attention probabilities in place: Tq rows of Tk scores (row stride ld floats); row i sees keys
  ;; [max(0, hi − window + 1), hi] with hi = i + Tk − Tq (window 0: no window); scores are scaled by s.
  ;; Each row's (max·s, Σexp) goes to $stats as an f64 pair.
  (func $softmax_causal (export "softmax_causal") (param $p i32) (param $Tq i32) (param $Tk i32) (param $ld i32) (param $window i32) (param $s f32) (param $stats i32)
    (local $i i32) (local $row i32) (local $lo i32) (local $hi i32) (local $m f32) (local $sum f64)
    (block $d (loop $l
      (br_if $d (i32.ge_s (local.get $i) (local.get $Tq)))
      (local.set $row (i32.add (local.get $p) (i32.shl (i32.mul (local.get $i) (local.get $ld)) (i32.const 2))))
      (local.set $hi (i32.add (i32.add (local.get $i) (i32.sub (local.get $Tk) (local.get $Tq))) (i32.const 1)))
      (local.set $lo (i32.const 0))
      (if (i32.gt_s (local.get $window) (i32.const 0))
        (then (if (i32.gt_s (i32.sub (local.get $hi) (local.get $window)) (i32.const 0))
          (then (local.set $lo (i32.sub (local.get $hi) (local.get $window)))))))
      (local.set $m (call $rowmax (local.get $row) (local.get $lo) (local.get $hi)))
      (local.set $sum (call $expsum (local.get $row) (local.get $lo) (local.get $hi) (local.get $m) (local.get $s)))
      (call $scale (local.get $row) (local.get $lo) (local.get $hi) (f32.demote_f64 (f64.div (f64.const 1) (local.get $sum))))
      ;; (max·s, Σ) per row, f64 pairs: the backward pass rebuilds P from them
      (f64.store (i32.add (local.get $stats) (i32.shl (local.get $i) (i32.const 4))) (f64.promote_f32 (f32.mul (local.get $m) (local.get $s))))
      (f64.store offset=8 (i32.add (local.get $stats) (i32.shl (local.get $i) (i32.const 4))) (local.get $sum))
      (call $zero (local.get $row) (i32.const 0) (local.get $lo))
      (call $zero (local.get $row) (local.get $hi) (local.get $Tk))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
  )

  ;; The softmax backward in place: dS = P ⊙ (dP − Σⱼ dP·P) · s, for Tq rows (dP stride ldd, P stride ldp), over each
  ;; row's causally visible keys; dS is zero past them.
  (func $softmax_backward (export "softmax_backward") (param $dp i32) (param $ldd i32) (param $pp i32) (param $ldp i32) (param $Tq i32) (param $Tk i32) (param $s f32)
    (local $i i32) (local $j i32) (local $d i32) (local $q i32) (local $acc v128) (local $dot f32) (local $dv v128) (local $sv v128) (local $hi i32)
    (local.set $sv (f32x4.splat (local.get $s)))
    (block $done (loop $rows
      (br_if $done (i32.ge_s (local.get $i) (local.get $Tq)))
      (local.set $d (i32.add (local.get $dp) (i32.shl (i32.mul (local.get $i) (local.get $ldd)) (i32.const 2))))
      (local.set $q (i32.add (local.get $pp) (i32.shl (i32.mul (local.get $i) (local.get $ldp)) (i32.const 2))))
      ;; row i sees keys [0, i + Tk − Tq]: P is zero past them, and dP there may not have been computed
      (local.set $hi (i32.add (local.get $i) (i32.add (i32.sub (local.get $Tk) (local.get $Tq)) (i32.const 1))))
      (if (i32.gt_s (local.get $hi) (local.get $Tk)) (then (local.set $hi (local.get $Tk))))
      (local.set $acc (v128.const f32x4 0 0 0 0))
      (local.set $j (i32.const 0))
      (block $d1 (loop $l1
        (br_if $d1 (i32.gt_s (i32.add (local.get $j) (i32.const 4)) (local.get $hi)))
        (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul
          (v128.load (i32.add (local.get $d) (i32.shl (local.get $j) (i32.const 2))))
          (v128.load (i32.add (local.get $q) (i32.shl (local.get $j) (i32.const 2)))))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $l1)))
      (local.set $dot (f32.add (f32.add (f32x4.extract_lane 0 (local.get $acc)) (f32x4.extract_lane 1 (local.get $acc)))
                               (f32.add (f32x4.extract_lane 2 (local.get $acc)) (f32x4.extract_lane 3 (local.get $acc)))))
      (block $d2 (loop $l2
        (br_if $d2 (i32.ge_s (local.get $j) (local.get $hi)))
        (local.set $dot (f32.add (local.get $dot) (f32.mul
          (f32.load (i32.add (local.get $d) (i32.shl (local.get $j) (i32.const 2))))
          (f32.load (i32.add (local.get $q) (i32.shl (local.get $j) (i32.const 2)))))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $l2)))
      (local.set $dv (f32x4.splat (local.get $dot)))
      (local.set $j (i32.const 0))
      (block $d3 (loop $l3
        (br_if $d3 (i32.gt_s (i32.add (local.get $j) (i32.const 4)) (local.get $hi)))
        (v128.store (i32.add (local.get $d) (i32.shl (local.get $j) (i32.const 2)))
          (f32x4.mul (f32x4.mul (v128.load (i32.add (local.get $q) (i32.shl (local.get $j) (i32.const 2))))
            (f32x4.sub (v128.load (i32.add (local.get $d) (i32.shl (local.get $j) (i32.const 2)))) (local.get $dv))) (local.get $sv)))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $l3)))
      (block $d4 (loop $l4
        (br_if $d4 (i32.ge_s (local.get $j) (local.get $hi)))
        (f32.store (i32.add (local.get $d) (i32.shl (local.get $j) (i32.const 2)))
          (f32.mul (f32.mul (f32.load (i32.add (local.get $q) (i32.shl (local.get $j) (i32.const 2))))
            (f32.sub (f32.load (i32.add (local.get $d) (i32.shl (local.get $j) (i32.const 2)))) (local.get $dot))) (local.get $s)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $l4)))
      (call $zero (local.get $d) (local.get $hi) (local.get $Tk))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $rows)))
  )

  ;; Rebuild probabilities from scores in place: P = exp(S·s − lse) on the visible keys, 0 elsewhere, with
  ;; lse (f32 per row, at $lse) from the forward pass. Same mask as softmax_causal.
  (func $softmax_recompute (export "softmax_recompute") (param $p i32) (param $Tq i32) (param $Tk i32) (param $ld i32) (param $window i32) (param $s f32) (param $lse i32)
    (local $i i32) (local $row i32) (local $lo i32) (local $hi i32) (local $j i32) (local $a i32) (local $l f32) (local $lv v128) (local $sv v128)
    (local.set $sv (f32x4.splat (local.get $s)))
    (block $d (loop $l
      (br_if $d (i32.ge_s (local.get $i) (local.get $Tq)))
      (local.set $row (i32.add (local.get $p) (i32.shl (i32.mul (local.get $i) (local.get $ld)) (i32.const 2))))
      (local.set $hi (i32.add (i32.add (local.get $i) (i32.sub (local.get $Tk) (local.get $Tq))) (i32.const 1)))
      (local.set $lo (i32.const 0))
      (if (i32.gt_s (local.get $window) (i32.const 0))
        (then (if (i32.gt_s (i32.sub (local.get $hi) (local.get $window)) (i32.const 0))
          (then (local.set $lo (i32.sub (local.get $hi) (local.get $window)))))))
      (local.set $l (f32.load (i32.add (local.get $lse) (i32.shl (local.get $i) (i32.const 2)))))
      (local.set $lv (f32x4.splat (local.get $l)))
      (local.set $j (local.get $lo))
      (block $d1 (loop $l1
        (br_if $d1 (i32.gt_s (i32.add (local.get $j) (i32.const 4)) (local.get $hi)))
        (local.set $a (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
        (v128.store (local.get $a) (call $exp4 (f32x4.sub (f32x4.mul (v128.load (local.get $a)) (local.get $sv)) (local.get $lv))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $l1)))
      (block $d2 (loop $l2
        (br_if $d2 (i32.ge_s (local.get $j) (local.get $hi)))
        (local.set $a (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))
        (f32.store (local.get $a) (call $exp1 (f32.sub (f32.mul (f32.load (local.get $a)) (local.get $s)) (local.get $l))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $l2)))
      (call $zero (local.get $row) (i32.const 0) (local.get $lo))
      (call $zero (local.get $row) (local.get $hi) (local.get $Tk))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
  )
