;; Attention for a few query rows over a long K/V (decoding, batch 1): per (query row, head) the scores against every
;; visible key, the softmax with softmax.wat's helpers (Cephes exp, Σ in f64), and the probability-weighted sum of V,
;; reading K and V in place (a resident KV cache) with no packing. The general path (attention.ts) packs K and V per
;; head and runs gemms: right for prefill and training, a copy of the whole cache per token when decoding.

  ;; $p: [q (Tq, H·D), k (Tk rows, stride ldk floats), v (likewise), out (Tq, H·D), stats (f64 pairs per item),
  ;; scratch (Tk floats a thread), Tq, Tk, H, KV, D, window, scale (f32 bits), ctr, ldk]. Threads take items
  ;; i·H + h one at a time. Scores are dot products over D in four f32x4 sums (d ≡ j mod 4 groups), (a0 + a1) +
  ;; (a2 + a3), lanes (l0 + l1) + (l2 + l3); the output adds p_j·v_j over the keys in order.
  (func (export "attn_decode_steal") (param $p i32) (param $thread i32)
    (local $q i32) (local $k i32) (local $v i32) (local $out i32) (local $stats i32) (local $sc i32) (local $Tq i32)
    (local $Tk i32) (local $H i32) (local $KV i32) (local $D i32) (local $window i32) (local $s f32) (local $ctr i32)
    (local $ldk i32) (local $item i32) (local $i i32) (local $h i32) (local $lo i32) (local $hi i32) (local $j i32)
    (local $qh i32) (local $kh i32) (local $vh i32) (local $o i32) (local $kr i32) (local $d i32) (local $D16 i32)
    (local $m f32) (local $sum f64) (local $pj v128) (local $t f32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local.set $q (i32.load offset=0 (local.get $p))) (local.set $k (i32.load offset=4 (local.get $p)))
    (local.set $v (i32.load offset=8 (local.get $p))) (local.set $out (i32.load offset=12 (local.get $p)))
    (local.set $stats (i32.load offset=16 (local.get $p))) (local.set $Tq (i32.load offset=24 (local.get $p)))
    (local.set $Tk (i32.load offset=28 (local.get $p))) (local.set $H (i32.load offset=32 (local.get $p)))
    (local.set $KV (i32.load offset=36 (local.get $p))) (local.set $D (i32.load offset=40 (local.get $p)))
    (local.set $window (i32.load offset=44 (local.get $p))) (local.set $s (f32.load offset=48 (local.get $p)))
    (local.set $ctr (i32.load offset=52 (local.get $p))) (local.set $ldk (i32.shl (i32.load offset=56 (local.get $p)) (i32.const 2)))
    (local.set $sc (i32.add (i32.load offset=20 (local.get $p)) (i32.mul (local.get $thread) (i32.shl (i32.add (local.get $Tk) (i32.const 4)) (i32.const 2)))))
    (local.set $D16 (i32.and (local.get $D) (i32.const -16)))
    (block $done (loop $next
      (local.set $item (i32.atomic.rmw.add (local.get $ctr) (i32.const 1)))
      (br_if $done (i32.ge_u (local.get $item) (i32.mul (local.get $Tq) (local.get $H))))
      (local.set $i (i32.div_u (local.get $item) (local.get $H)))
      (local.set $h (i32.sub (local.get $item) (i32.mul (local.get $i) (local.get $H))))
      ;; query row i sits at position Tk − Tq + i: it sees keys [lo, hi)
      (local.set $hi (i32.add (i32.sub (local.get $Tk) (local.get $Tq)) (i32.add (local.get $i) (i32.const 1))))
      (local.set $lo (i32.const 0))
      (if (i32.gt_s (local.get $window) (i32.const 0))
        (then (if (i32.gt_s (i32.sub (local.get $hi) (local.get $window)) (i32.const 0))
          (then (local.set $lo (i32.sub (local.get $hi) (local.get $window)))))))
      (local.set $qh (i32.add (local.get $q) (i32.shl (i32.mul (local.get $item) (local.get $D)) (i32.const 2))))
      (local.set $o (i32.add (local.get $out) (i32.shl (i32.mul (local.get $item) (local.get $D)) (i32.const 2))))
      ;; kv head h / (H / KV), D floats into each key row
      (local.set $kh (i32.shl (i32.mul (i32.div_u (local.get $h) (i32.div_u (local.get $H) (local.get $KV))) (local.get $D)) (i32.const 2)))
      (local.set $vh (i32.add (local.get $v) (local.get $kh)))
      (local.set $kh (i32.add (local.get $k) (local.get $kh)))
      ;; scores
      (local.set $j (local.get $lo))
      (block $sd (loop $sl
        (br_if $sd (i32.ge_s (local.get $j) (local.get $hi)))
        (local.set $kr (i32.add (local.get $kh) (i32.mul (local.get $j) (local.get $ldk))))
        (local.set $a0 (v128.const i32x4 0 0 0 0)) (local.set $a1 (v128.const i32x4 0 0 0 0))
        (local.set $a2 (v128.const i32x4 0 0 0 0)) (local.set $a3 (v128.const i32x4 0 0 0 0))
        (local.set $d (i32.const 0))
        (block $dd (loop $dl
          (br_if $dd (i32.ge_u (local.get $d) (local.get $D16)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load offset=0 (i32.add (local.get $kr) (i32.shl (local.get $d) (i32.const 2)))) (v128.load offset=0 (i32.add (local.get $qh) (i32.shl (local.get $d) (i32.const 2)))))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (v128.load offset=16 (i32.add (local.get $kr) (i32.shl (local.get $d) (i32.const 2)))) (v128.load offset=16 (i32.add (local.get $qh) (i32.shl (local.get $d) (i32.const 2)))))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (v128.load offset=32 (i32.add (local.get $kr) (i32.shl (local.get $d) (i32.const 2)))) (v128.load offset=32 (i32.add (local.get $qh) (i32.shl (local.get $d) (i32.const 2)))))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (v128.load offset=48 (i32.add (local.get $kr) (i32.shl (local.get $d) (i32.const 2)))) (v128.load offset=48 (i32.add (local.get $qh) (i32.shl (local.get $d) (i32.const 2)))))))
          (local.set $d (i32.add (local.get $d) (i32.const 16)))
          (br $dl)))
        (local.set $t (call $hsum (f32x4.add (f32x4.add (local.get $a0) (local.get $a1)) (f32x4.add (local.get $a2) (local.get $a3)))))
        (block $td (loop $tl
          (br_if $td (i32.ge_u (local.get $d) (local.get $D)))
          (local.set $t (f32.add (local.get $t) (f32.mul (f32.load (i32.add (local.get $kr) (i32.shl (local.get $d) (i32.const 2))))
            (f32.load (i32.add (local.get $qh) (i32.shl (local.get $d) (i32.const 2)))))))
          (local.set $d (i32.add (local.get $d) (i32.const 1)))
          (br $tl)))
        (f32.store (i32.add (local.get $sc) (i32.shl (local.get $j) (i32.const 2))) (local.get $t))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $sl)))
      ;; softmax over [lo, hi), as softmax_causal; (max·s, Σ) kept for the log-sum-exp
      (local.set $m (call $rowmax (local.get $sc) (local.get $lo) (local.get $hi)))
      (local.set $sum (call $expsum (local.get $sc) (local.get $lo) (local.get $hi) (local.get $m) (local.get $s)))
      (call $scale (local.get $sc) (local.get $lo) (local.get $hi) (f32.demote_f64 (f64.div (f64.const 1) (local.get $sum))))
      (f64.store (i32.add (local.get $stats) (i32.shl (local.get $item) (i32.const 4))) (f64.promote_f32 (f32.mul (local.get $m) (local.get $s))))
      (f64.store offset=8 (i32.add (local.get $stats) (i32.shl (local.get $item) (i32.const 4))) (local.get $sum))
      ;; out = Σ_j p_j · v_j, keys in order (D a multiple of 4)
      (call $zero (local.get $o) (i32.const 0) (local.get $D))
      (local.set $j (local.get $lo))
      (block $od (loop $ol
        (br_if $od (i32.ge_s (local.get $j) (local.get $hi)))
        (local.set $pj (f32x4.splat (f32.load (i32.add (local.get $sc) (i32.shl (local.get $j) (i32.const 2))))))
        (local.set $kr (i32.add (local.get $vh) (i32.mul (local.get $j) (local.get $ldk))))
        (local.set $d (i32.const 0))
        (block $vd (loop $vl
          (br_if $vd (i32.ge_u (local.get $d) (local.get $D)))
          (v128.store (i32.add (local.get $o) (i32.shl (local.get $d) (i32.const 2)))
            (f32x4.add (v128.load (i32.add (local.get $o) (i32.shl (local.get $d) (i32.const 2))))
              (f32x4.mul (local.get $pj) (v128.load (i32.add (local.get $kr) (i32.shl (local.get $d) (i32.const 2)))))))
          (local.set $d (i32.add (local.get $d) (i32.const 4)))
          (br $vl)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $ol)))
      (br $next)))
  )
