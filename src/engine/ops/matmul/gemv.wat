;; Matrix-vector products for decoding (x·Wᵀ with a few rows of x), over the same memory as gemm.wat. W is read once,
;; in place, as stored (f32, bf16 or f16 bits), so a decode step is bound by how fast the memory streams the weights.

  ;; The bench's bandwidth probe (src/bench/decode.ts): threads take chunks of $chunk bytes (a multiple of 64) of
  ;; [$base, $base + $bytes) from the counter at $ctr and stream them through v128 loads into four accumulators, as
  ;; the decode kernels stream their weights; each thread's sum goes to $out + 16·$thread so that no load is dead.
  (func (export "read_steal") (param $base i32) (param $bytes i32) (param $chunk i32) (param $ctr i32) (param $out i32)
        (param $thread i32)
    (local $p i32) (local $end i32) (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (block $done (loop $next
      (local.set $p (i32.mul (i32.atomic.rmw.add (local.get $ctr) (i32.const 1)) (local.get $chunk)))
      (br_if $done (i32.ge_u (local.get $p) (local.get $bytes)))
      (local.set $end (i32.add (local.get $p) (local.get $chunk)))
      (if (i32.gt_u (local.get $end) (local.get $bytes)) (then (local.set $end (local.get $bytes))))
      (local.set $p (i32.add (local.get $base) (local.get $p)))
      (local.set $end (i32.add (local.get $base) (local.get $end)))
      (block $cdone (loop $c
        (br_if $cdone (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $a0 (i32x4.add (local.get $a0) (v128.load offset=0 (local.get $p))))
        (local.set $a1 (i32x4.add (local.get $a1) (v128.load offset=16 (local.get $p))))
        (local.set $a2 (i32x4.add (local.get $a2) (v128.load offset=32 (local.get $p))))
        (local.set $a3 (i32x4.add (local.get $a3) (v128.load offset=48 (local.get $p))))
        (local.set $p (i32.add (local.get $p) (i32.const 64)))
        (br $c)))
      (br $next)))
    (v128.store (i32.add (local.get $out) (i32.shl (local.get $thread) (i32.const 4)))
      (i32x4.add (i32x4.add (local.get $a0) (local.get $a1)) (i32x4.add (local.get $a2) (local.get $a3))))
  )

  ;; y (M × N) = x (M × K) · Wᵀ for small M (decoding): W (N × K; $kind: 0 f32, 1 bf16, 2 f16 bits) is read once,
  ;; in place, row after row (one sequential stream: interleaving several rows' streams halves what the memory
  ;; delivers), 16 weights a step into four f32x4 accumulators. Threads take chunks of $chunk rows from the counter at
  ;; $ctr. Every row is summed in one order whatever its thread: accumulator j takes the 4-groups k ≡ j (mod 4) of
  ;; the 16-steps and then the remaining 4-groups in turn, (a0 + a1) + (a2 + a3), lanes (l0 + l1) + (l2 + l3), then
  ;; the K mod 4 tail in order. So the result does not depend on the thread count, and a bf16 or f16 W gives exactly
  ;; what its f32 widening gives.
  (func (export "gemv_steal") (param $x i32) (param $M i32) (param $w i32) (param $kind i32) (param $K i32) (param $N i32)
        (param $y i32) (param $ctr i32) (param $chunk i32)
    (local $n i32) (local $n1 i32) (local $sh i32) (local $rs i32) (local $m i32) (local $xr i32) (local $row i32)
    (local $k i32) (local $wk i32) (local $xk i32) (local $j i32) (local $s f32)
    (local $z v128) (local $v v128) (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local.set $sh (select (i32.const 1) (i32.const 2) (local.get $kind)))  ;; log2 of the element size
    (local.set $rs (i32.shl (local.get $K) (local.get $sh)))
    (block $done (loop $next
      (local.set $n (i32.mul (i32.atomic.rmw.add (local.get $ctr) (i32.const 1)) (local.get $chunk)))
      (br_if $done (i32.ge_u (local.get $n) (local.get $N)))
      (local.set $n1 (i32.add (local.get $n) (local.get $chunk)))
      (if (i32.gt_u (local.get $n1) (local.get $N)) (then (local.set $n1 (local.get $N))))
      (block $rdone (loop $rows
        (br_if $rdone (i32.ge_u (local.get $n) (local.get $n1)))
        (local.set $row (i32.add (local.get $w) (i32.mul (local.get $n) (local.get $rs))))
        (local.set $m (i32.const 0))
        (block $mdone (loop $ms
          (br_if $mdone (i32.ge_u (local.get $m) (local.get $M)))
          (local.set $xr (i32.add (local.get $x) (i32.shl (i32.mul (local.get $m) (local.get $K)) (i32.const 2))))
          (local.set $a0 (v128.const i32x4 0 0 0 0)) (local.set $a1 (v128.const i32x4 0 0 0 0))
          (local.set $a2 (v128.const i32x4 0 0 0 0)) (local.set $a3 (v128.const i32x4 0 0 0 0))
          (local.set $k (i32.const 0))
          (local.set $wk (local.get $row))
          (local.set $xk (local.get $xr))
          (if (i32.eqz (local.get $kind))
            (then
              (block $kd (loop $kl
                (br_if $kd (i32.gt_u (i32.add (local.get $k) (i32.const 16)) (local.get $K)))
                  (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load offset=0 (local.get $wk)) (v128.load offset=0 (local.get $xk)))))
                  (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (v128.load offset=16 (local.get $wk)) (v128.load offset=16 (local.get $xk)))))
                  (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (v128.load offset=32 (local.get $wk)) (v128.load offset=32 (local.get $xk)))))
                  (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (v128.load offset=48 (local.get $wk)) (v128.load offset=48 (local.get $xk)))))
                (local.set $wk (i32.add (local.get $wk) (i32.const 64)))
                (local.set $xk (i32.add (local.get $xk) (i32.const 64)))
                (local.set $k (i32.add (local.get $k) (i32.const 16)))
                (br $kl))))
            (else (if (i32.eq (local.get $kind) (i32.const 1))
              (then
                ;; bf16: 8 weights a load, widened in order by interleaving them with zero halves
                (block $kd (loop $kl
                  (br_if $kd (i32.gt_u (i32.add (local.get $k) (i32.const 16)) (local.get $K)))
                  (local.set $v (v128.load (local.get $wk)))
                  (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (i8x16.shuffle 16 17 0 1 18 19 2 3 20 21 4 5 22 23 6 7 (local.get $v) (local.get $z)) (v128.load offset=0 (local.get $xk)))))
                  (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (i8x16.shuffle 24 25 8 9 26 27 10 11 28 29 12 13 30 31 14 15 (local.get $v) (local.get $z)) (v128.load offset=16 (local.get $xk)))))
                  (local.set $v (v128.load offset=16 (local.get $wk)))
                  (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (i8x16.shuffle 16 17 0 1 18 19 2 3 20 21 4 5 22 23 6 7 (local.get $v) (local.get $z)) (v128.load offset=32 (local.get $xk)))))
                  (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (i8x16.shuffle 24 25 8 9 26 27 10 11 28 29 12 13 30 31 14 15 (local.get $v) (local.get $z)) (v128.load offset=48 (local.get $xk)))))
                  (local.set $wk (i32.add (local.get $wk) (i32.const 32)))
                  (local.set $xk (i32.add (local.get $xk) (i32.const 64)))
                  (local.set $k (i32.add (local.get $k) (i32.const 16)))
                  (br $kl))))
              (else
                (block $kd (loop $kl
                  (br_if $kd (i32.gt_u (i32.add (local.get $k) (i32.const 16)) (local.get $K)))
                  (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (call $f16x4 (i32.add (local.get $wk) (i32.const 0))) (v128.load offset=0 (local.get $xk)))))
                  (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (call $f16x4 (i32.add (local.get $wk) (i32.const 8))) (v128.load offset=16 (local.get $xk)))))
                  (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (call $f16x4 (i32.add (local.get $wk) (i32.const 16))) (v128.load offset=32 (local.get $xk)))))
                  (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (call $f16x4 (i32.add (local.get $wk) (i32.const 24))) (v128.load offset=48 (local.get $xk)))))
                  (local.set $wk (i32.add (local.get $wk) (i32.const 32)))
                  (local.set $xk (i32.add (local.get $xk) (i32.const 64)))
                  (local.set $k (i32.add (local.get $k) (i32.const 16)))
                  (br $kl)))))))
          ;; the remaining 4-groups into a0, a1, a2 in turn
          (local.set $j (i32.const 0))
          (block $gd (loop $gl
            (br_if $gd (i32.gt_u (i32.add (local.get $k) (i32.const 4)) (local.get $K)))
            (local.set $v (f32x4.mul (call $w4 (local.get $wk) (local.get $kind)) (v128.load (local.get $xk))))
            (if (i32.eqz (local.get $j)) (then (local.set $a0 (f32x4.add (local.get $a0) (local.get $v))))
              (else (if (i32.eq (local.get $j) (i32.const 1)) (then (local.set $a1 (f32x4.add (local.get $a1) (local.get $v))))
                (else (local.set $a2 (f32x4.add (local.get $a2) (local.get $v)))))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (local.set $wk (i32.add (local.get $wk) (i32.shl (i32.const 4) (local.get $sh))))
            (local.set $xk (i32.add (local.get $xk) (i32.const 16)))
            (local.set $k (i32.add (local.get $k) (i32.const 4)))
            (br $gl)))
          (local.set $s (call $hsum (f32x4.add (f32x4.add (local.get $a0) (local.get $a1)) (f32x4.add (local.get $a2) (local.get $a3)))))
          (block $td (loop $tl
            (br_if $td (i32.ge_u (local.get $k) (local.get $K)))
            (local.set $s (f32.add (local.get $s) (f32.mul (f32x4.extract_lane 0 (call $w4 (local.get $wk) (local.get $kind))) (f32.load (local.get $xk)))))
            (local.set $wk (i32.add (local.get $wk) (i32.shl (i32.const 1) (local.get $sh))))
            (local.set $xk (i32.add (local.get $xk) (i32.const 4)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $tl)))
          (f32.store (i32.add (local.get $y) (i32.shl (i32.add (i32.mul (local.get $m) (local.get $N)) (local.get $n)) (i32.const 2))) (local.get $s))
          (local.set $m (i32.add (local.get $m) (i32.const 1)))
          (br $ms)))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $rows)))
      (br $next)))
  )

  ;; y (M × N) = x (M × K) · Wᵀ for short rows (K ≤ 64, K mod 4 = 0: LoRA's B, K = r): four rows at a time, each
  ;; summed into one f32x4 over its 4-groups in order, then the four reduced together by a transpose, (l0 + l1) +
  ;; (l2 + l3) per row, so a row's sum does not depend on its group (and a half-float W gives what its widening
  ;; gives). A group past its chunk repeats the chunk's last row and does not store it. Arguments as gemv_steal's.
  (func (export "gemv_short_steal") (param $x i32) (param $M i32) (param $w i32) (param $kind i32) (param $K i32) (param $N i32)
        (param $y i32) (param $ctr i32) (param $chunk i32)
    (local $n i32) (local $n1 i32) (local $last i32) (local $rs i32) (local $m i32) (local $xr i32) (local $o i32)
    (local $r0 i32) (local $r1 i32) (local $r2 i32) (local $r3 i32) (local $yo i32) (local $xv v128) (local $sh i32) (local $ow i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local.set $sh (select (i32.const 1) (i32.const 2) (local.get $kind)))  ;; log2 of the element size
    (local.set $rs (i32.shl (local.get $K) (local.get $sh)))
    (block $done (loop $next
      (local.set $n (i32.mul (i32.atomic.rmw.add (local.get $ctr) (i32.const 1)) (local.get $chunk)))
      (br_if $done (i32.ge_u (local.get $n) (local.get $N)))
      (local.set $n1 (i32.add (local.get $n) (local.get $chunk)))
      (if (i32.gt_u (local.get $n1) (local.get $N)) (then (local.set $n1 (local.get $N))))
      (local.set $last (i32.sub (local.get $n1) (i32.const 1)))
      (block $gdone (loop $groups
        (br_if $gdone (i32.ge_u (local.get $n) (local.get $n1)))
        (local.set $r0 (i32.add (local.get $w) (i32.mul (local.get $n) (local.get $rs))))
        (local.set $r1 (i32.add (local.get $w) (i32.mul (call $minu (i32.add (local.get $n) (i32.const 1)) (local.get $last)) (local.get $rs))))
        (local.set $r2 (i32.add (local.get $w) (i32.mul (call $minu (i32.add (local.get $n) (i32.const 2)) (local.get $last)) (local.get $rs))))
        (local.set $r3 (i32.add (local.get $w) (i32.mul (call $minu (i32.add (local.get $n) (i32.const 3)) (local.get $last)) (local.get $rs))))
        (local.set $m (i32.const 0))
        (block $mdone (loop $ms
          (br_if $mdone (i32.ge_u (local.get $m) (local.get $M)))
          (local.set $xr (i32.add (local.get $x) (i32.shl (i32.mul (local.get $m) (local.get $K)) (i32.const 2))))
          (local.set $a0 (v128.const i32x4 0 0 0 0)) (local.set $a1 (v128.const i32x4 0 0 0 0))
          (local.set $a2 (v128.const i32x4 0 0 0 0)) (local.set $a3 (v128.const i32x4 0 0 0 0))
          (local.set $o (i32.const 0))
          (local.set $ow (i32.const 0))
          (if (i32.eqz (local.get $kind)) (then
          (block $kd (loop $kl
            (br_if $kd (i32.ge_u (local.get $ow) (local.get $rs)))
            (local.set $xv (v128.load (i32.add (local.get $xr) (local.get $o))))
            (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load (i32.add (local.get $r0) (local.get $ow))) (local.get $xv))))
            (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (v128.load (i32.add (local.get $r1) (local.get $ow))) (local.get $xv))))
            (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (v128.load (i32.add (local.get $r2) (local.get $ow))) (local.get $xv))))
            (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (v128.load (i32.add (local.get $r3) (local.get $ow))) (local.get $xv))))
            (local.set $o (i32.add (local.get $o) (i32.const 16)))
            (local.set $ow (i32.add (local.get $ow) (i32.shl (i32.const 4) (local.get $sh))))
            (br $kl))))
          (else (if (i32.eq (local.get $kind) (i32.const 1)) (then
          (block $kd (loop $kl
            (br_if $kd (i32.ge_u (local.get $ow) (local.get $rs)))
            (local.set $xv (v128.load (i32.add (local.get $xr) (local.get $o))))
            (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (i32x4.shl (v128.load16x4_u (i32.add (local.get $r0) (local.get $ow))) (i32.const 16)) (local.get $xv))))
            (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (i32x4.shl (v128.load16x4_u (i32.add (local.get $r1) (local.get $ow))) (i32.const 16)) (local.get $xv))))
            (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (i32x4.shl (v128.load16x4_u (i32.add (local.get $r2) (local.get $ow))) (i32.const 16)) (local.get $xv))))
            (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (i32x4.shl (v128.load16x4_u (i32.add (local.get $r3) (local.get $ow))) (i32.const 16)) (local.get $xv))))
            (local.set $o (i32.add (local.get $o) (i32.const 16)))
            (local.set $ow (i32.add (local.get $ow) (i32.shl (i32.const 4) (local.get $sh))))
            (br $kl))))
          (else
          (block $kd (loop $kl
            (br_if $kd (i32.ge_u (local.get $ow) (local.get $rs)))
            (local.set $xv (v128.load (i32.add (local.get $xr) (local.get $o))))
            (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (call $f16x4 (i32.add (local.get $r0) (local.get $ow))) (local.get $xv))))
            (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (call $f16x4 (i32.add (local.get $r1) (local.get $ow))) (local.get $xv))))
            (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (call $f16x4 (i32.add (local.get $r2) (local.get $ow))) (local.get $xv))))
            (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (call $f16x4 (i32.add (local.get $r3) (local.get $ow))) (local.get $xv))))
            (local.set $o (i32.add (local.get $o) (i32.const 16)))
            (local.set $ow (i32.add (local.get $ow) (i32.shl (i32.const 4) (local.get $sh))))
            (br $kl)))))))
          ;; transpose: u_j = lane j of each row; the row sums are (u0 + u1) + (u2 + u3)
          (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $a0) (local.get $a1)))
          (local.set $t1 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $a0) (local.get $a1)))
          (local.set $t2 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $a2) (local.get $a3)))
          (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $a2) (local.get $a3)))
          (local.set $xv (f32x4.add
            (f32x4.add (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t2))
                       (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t2)))
            (f32x4.add (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t1) (local.get $t3))
                       (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t1) (local.get $t3)))))
          (local.set $yo (i32.add (local.get $y) (i32.shl (i32.add (i32.mul (local.get $m) (local.get $N)) (local.get $n)) (i32.const 2))))
          (if (i32.le_u (i32.add (local.get $n) (i32.const 3)) (local.get $last))
            (then (v128.store (local.get $yo) (local.get $xv)))
            (else
              (f32.store (local.get $yo) (f32x4.extract_lane 0 (local.get $xv)))
              (if (i32.le_u (i32.add (local.get $n) (i32.const 1)) (local.get $last)) (then (f32.store offset=4 (local.get $yo) (f32x4.extract_lane 1 (local.get $xv)))))
              (if (i32.le_u (i32.add (local.get $n) (i32.const 2)) (local.get $last)) (then (f32.store offset=8 (local.get $yo) (f32x4.extract_lane 2 (local.get $xv)))))))
          (local.set $m (i32.add (local.get $m) (i32.const 1)))
          (br $ms)))
        (local.set $n (i32.add (local.get $n) (i32.const 4)))
        (br $groups)))
      (br $next)))
  )

  (func $minu (param $a i32) (param $b i32) (result i32)
    (select (local.get $a) (local.get $b) (i32.lt_u (local.get $a) (local.get $b))))

  ;; four weights at $p as f32x4 ($kind: 0 f32, 1 bf16, 2 f16 bits; lanes past the row's end are read but unused)
  (func $w4 (param $p i32) (param $kind i32) (result v128)
    (if (result v128) (i32.eqz (local.get $kind))
      (then (v128.load (local.get $p)))
      (else (if (result v128) (i32.eq (local.get $kind) (i32.const 1))
        (then (i32x4.shl (v128.load16x4_u (local.get $p)) (i32.const 16)))
        (else (call $f16x4 (local.get $p)))))))

  ;; (l0 + l1) + (l2 + l3)
  (func $hsum (param $a v128) (result f32)
    (f32.add (f32.add (f32x4.extract_lane 0 (local.get $a)) (f32x4.extract_lane 1 (local.get $a)))
             (f32.add (f32x4.extract_lane 2 (local.get $a)) (f32x4.extract_lane 3 (local.get $a)))))
