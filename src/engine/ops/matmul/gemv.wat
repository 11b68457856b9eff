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
  ;; in place, four rows at a time (one f32x4 accumulator each, so four independent chains). Threads take chunks of
  ;; $chunk rows from the counter at $ctr; in a group that runs past its chunk the missing rows repeat the chunk's
  ;; last row and are not stored. Every row is summed in the same order whatever its group or thread: lanes k mod 4,
  ;; (l0 + l1) + (l2 + l3), then the K mod 4 tail in order; so the result does not depend on the thread count, and a
  ;; bf16 W gives exactly what its f32 widening gives.
  (func (export "gemv_steal") (param $x i32) (param $M i32) (param $w i32) (param $kind i32) (param $K i32) (param $N i32)
        (param $y i32) (param $ctr i32) (param $chunk i32)
    (local $n i32) (local $n1 i32) (local $last i32) (local $rs i32) (local $sh i32) (local $m i32) (local $xr i32)
    (local $k i32) (local $k4 i32) (local $o i32) (local $r0 i32) (local $r1 i32) (local $r2 i32) (local $r3 i32)
    (local $xv v128) (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $s0 f32) (local $s1 f32) (local $s2 f32) (local $s3 f32) (local $xs f32) (local $yo i32)
    (local.set $sh (select (i32.const 1) (i32.const 2) (local.get $kind)))  ;; log2 of the element size
    (local.set $rs (i32.shl (local.get $K) (local.get $sh)))
    (local.set $k4 (i32.and (local.get $K) (i32.const -4)))
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
          (local.set $k (i32.const 0))
          (if (i32.eqz (local.get $kind))
            (then
              (block $kd (loop $kl
                (br_if $kd (i32.ge_u (local.get $k) (local.get $k4)))
                (local.set $o (i32.shl (local.get $k) (i32.const 2)))
                (local.set $xv (v128.load (i32.add (local.get $xr) (local.get $o))))
                (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (v128.load (i32.add (local.get $r0) (local.get $o))) (local.get $xv))))
                (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (v128.load (i32.add (local.get $r1) (local.get $o))) (local.get $xv))))
                (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (v128.load (i32.add (local.get $r2) (local.get $o))) (local.get $xv))))
                (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (v128.load (i32.add (local.get $r3) (local.get $o))) (local.get $xv))))
                (local.set $k (i32.add (local.get $k) (i32.const 4)))
                (br $kl))))
            (else (if (i32.eq (local.get $kind) (i32.const 1))
              (then
                (block $kd (loop $kl
                  (br_if $kd (i32.ge_u (local.get $k) (local.get $k4)))
                  (local.set $o (i32.shl (local.get $k) (i32.const 1)))
                  (local.set $xv (v128.load (i32.add (local.get $xr) (i32.shl (local.get $k) (i32.const 2)))))
                  (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (i32x4.shl (v128.load16x4_u (i32.add (local.get $r0) (local.get $o))) (i32.const 16)) (local.get $xv))))
                  (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (i32x4.shl (v128.load16x4_u (i32.add (local.get $r1) (local.get $o))) (i32.const 16)) (local.get $xv))))
                  (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (i32x4.shl (v128.load16x4_u (i32.add (local.get $r2) (local.get $o))) (i32.const 16)) (local.get $xv))))
                  (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (i32x4.shl (v128.load16x4_u (i32.add (local.get $r3) (local.get $o))) (i32.const 16)) (local.get $xv))))
                  (local.set $k (i32.add (local.get $k) (i32.const 4)))
                  (br $kl))))
              (else
                (block $kd (loop $kl
                  (br_if $kd (i32.ge_u (local.get $k) (local.get $k4)))
                  (local.set $o (i32.shl (local.get $k) (i32.const 1)))
                  (local.set $xv (v128.load (i32.add (local.get $xr) (i32.shl (local.get $k) (i32.const 2)))))
                  (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (call $f16x4 (i32.add (local.get $r0) (local.get $o))) (local.get $xv))))
                  (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (call $f16x4 (i32.add (local.get $r1) (local.get $o))) (local.get $xv))))
                  (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (call $f16x4 (i32.add (local.get $r2) (local.get $o))) (local.get $xv))))
                  (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (call $f16x4 (i32.add (local.get $r3) (local.get $o))) (local.get $xv))))
                  (local.set $k (i32.add (local.get $k) (i32.const 4)))
                  (br $kl)))))))
          (local.set $s0 (call $hsum (local.get $a0))) (local.set $s1 (call $hsum (local.get $a1)))
          (local.set $s2 (call $hsum (local.get $a2))) (local.set $s3 (call $hsum (local.get $a3)))
          (block $td (loop $tl
            (br_if $td (i32.ge_u (local.get $k) (local.get $K)))
            (local.set $xs (f32.load (i32.add (local.get $xr) (i32.shl (local.get $k) (i32.const 2)))))
            (local.set $o (i32.shl (local.get $k) (local.get $sh)))
            (local.set $s0 (f32.add (local.get $s0) (f32.mul (call $wval (i32.add (local.get $r0) (local.get $o)) (local.get $kind)) (local.get $xs))))
            (local.set $s1 (f32.add (local.get $s1) (f32.mul (call $wval (i32.add (local.get $r1) (local.get $o)) (local.get $kind)) (local.get $xs))))
            (local.set $s2 (f32.add (local.get $s2) (f32.mul (call $wval (i32.add (local.get $r2) (local.get $o)) (local.get $kind)) (local.get $xs))))
            (local.set $s3 (f32.add (local.get $s3) (f32.mul (call $wval (i32.add (local.get $r3) (local.get $o)) (local.get $kind)) (local.get $xs))))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $tl)))
          ;; y[m][n + i] for the rows of this group that are in the chunk
          (local.set $yo (i32.add (local.get $y) (i32.shl (i32.add (i32.mul (local.get $m) (local.get $N)) (local.get $n)) (i32.const 2))))
          (f32.store (local.get $yo) (local.get $s0))
          (if (i32.le_u (i32.add (local.get $n) (i32.const 1)) (local.get $last)) (then (f32.store offset=4 (local.get $yo) (local.get $s1))))
          (if (i32.le_u (i32.add (local.get $n) (i32.const 2)) (local.get $last)) (then (f32.store offset=8 (local.get $yo) (local.get $s2))))
          (if (i32.le_u (i32.add (local.get $n) (i32.const 3)) (local.get $last)) (then (f32.store offset=12 (local.get $yo) (local.get $s3))))
          (local.set $m (i32.add (local.get $m) (i32.const 1)))
          (br $ms)))
        (local.set $n (i32.add (local.get $n) (i32.const 4)))
        (br $groups)))
      (br $next)))
  )

  (func $minu (param $a i32) (param $b i32) (result i32)
    (select (local.get $a) (local.get $b) (i32.lt_u (local.get $a) (local.get $b))))

  ;; (l0 + l1) + (l2 + l3)
  (func $hsum (param $a v128) (result f32)
    (f32.add (f32.add (f32x4.extract_lane 0 (local.get $a)) (f32x4.extract_lane 1 (local.get $a)))
             (f32.add (f32x4.extract_lane 2 (local.get $a)) (f32x4.extract_lane 3 (local.get $a)))))

  ;; one weight at $p as f32 ($kind: 0 f32, 1 bf16, 2 f16 bits)
  (func $wval (param $p i32) (param $kind i32) (result f32)
    (if (result f32) (i32.eqz (local.get $kind))
      (then (f32.load (local.get $p)))
      (else (if (result f32) (i32.eq (local.get $kind) (i32.const 1))
        (then (f32.reinterpret_i32 (i32.shl (i32.load16_u (local.get $p)) (i32.const 16))))
        (else (f32x4.extract_lane 0 (call $f16x4 (local.get $p))))))))
