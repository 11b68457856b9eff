;; The 4-bit (NF4/FP4) matrix-vector product of decoding, over the same memory as the other kernels: x·Wᵀ for a few
;; rows of x and a W (R × C) whose blocks lie inside its rows (C a multiple of the block size, blocks of ≥ 32). The
;; codes are read once, in place, 16 bytes (32 elements) a load, and turned into their table values with no gather:
;; the 16-value f32 table is held as four byte planes (byte b of every value), an i8x16.swizzle of each plane by the
;; codes gives that byte of 16 values, and two rounds of byte and 16-bit interleaves assemble the 16 floats. x comes
;; permuted by 32-element groups (the 16 even elements, then the 16 odd ones: the high and low nibbles of 16 bytes),
;; so that the floats meet their x in order. Each block's sum of table value × x is scaled by its absmax once.
;; The general layout (blocks straddling rows) is qgemv_steal's in qgemm.wat.

  ;; $p: [x (permuted, M × C), M, q, sc (f32 scales, or the u8 codes of double-quantized ones), nested absmax, map
  ;; (256 f32), offset (f32 bits), nested blocksize (in blocks), log2 blocksize, R, C, y (M × R), ctr, chunk, planes
  ;; (64 bytes), dq]. Threads take $chunk rows of W from the counter. Per row and row of x, in order: per 32-element
  ;; group four f32x4 sums (even elements, then odd), per block (s0 + s1) + (s2 + s3) times the block's scale added
  ;; into an f32x4, whose lanes are summed (l0 + l1) + (l2 + l3): the same order on any thread count.
  (func (export "qgemv_fast_steal") (param $p i32) (param $thread i32)
    (local $x i32) (local $M i32) (local $q i32) (local $sc i32) (local $nabs i32) (local $map i32) (local $off f32)
    (local $nb i32) (local $bsl i32) (local $R i32) (local $C i32) (local $y i32) (local $ctr i32) (local $chunk i32)
    (local $dq i32) (local $n i32) (local $n1 i32) (local $m i32) (local $xr i32) (local $pc i32) (local $b i32)
    (local $bend i32) (local $gend i32) (local $s f32)
    (local $pl i32) (local $mask v128) (local $P0 v128) (local $P1 v128) (local $P2 v128) (local $P3 v128) (local $v v128)
    (local $hi v128) (local $lo v128) (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128)
    (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local $a0 v128) (local $sh v128) (local $sl v128) (local $acc v128)
    (local.set $x (i32.load offset=0 (local.get $p))) (local.set $M (i32.load offset=4 (local.get $p)))
    (local.set $q (i32.load offset=8 (local.get $p))) (local.set $sc (i32.load offset=12 (local.get $p)))
    (local.set $nabs (i32.load offset=16 (local.get $p))) (local.set $map (i32.load offset=20 (local.get $p)))
    (local.set $off (f32.load offset=24 (local.get $p))) (local.set $nb (i32.load offset=28 (local.get $p)))
    (local.set $bsl (i32.load offset=32 (local.get $p))) (local.set $R (i32.load offset=36 (local.get $p)))
    (local.set $C (i32.load offset=40 (local.get $p))) (local.set $y (i32.load offset=44 (local.get $p)))
    (local.set $ctr (i32.load offset=48 (local.get $p))) (local.set $chunk (i32.load offset=52 (local.get $p)))
    (local.set $pl (i32.load offset=56 (local.get $p)))
    (local.set $P0 (v128.load offset=0 (local.get $pl))) (local.set $P1 (v128.load offset=16 (local.get $pl)))
    (local.set $P2 (v128.load offset=32 (local.get $pl))) (local.set $P3 (v128.load offset=48 (local.get $pl)))
    (local.set $dq (i32.load offset=60 (local.get $p)))
    (local.set $mask (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))
    (block $done (loop $next
      (local.set $n (i32.mul (i32.atomic.rmw.add (local.get $ctr) (i32.const 1)) (local.get $chunk)))
      (br_if $done (i32.ge_u (local.get $n) (local.get $R)))
      (local.set $n1 (i32.add (local.get $n) (local.get $chunk)))
      (if (i32.gt_u (local.get $n1) (local.get $R)) (then (local.set $n1 (local.get $R))))
      (block $rdone (loop $rows
        (br_if $rdone (i32.ge_u (local.get $n) (local.get $n1)))
        (local.set $m (i32.const 0))
        (block $mdone (loop $ms
          (br_if $mdone (i32.ge_u (local.get $m) (local.get $M)))
          (local.set $xr (i32.add (local.get $x) (i32.shl (i32.mul (local.get $m) (local.get $C)) (i32.const 2))))
          (local.set $pc (i32.add (local.get $q) (i32.shr_u (i32.mul (local.get $n) (local.get $C)) (i32.const 1))))
          (local.set $b (i32.shr_u (i32.mul (local.get $n) (local.get $C)) (local.get $bsl)))
          (local.set $bend (i32.add (local.get $b) (i32.shr_u (local.get $C) (local.get $bsl))))
          (local.set $acc (v128.const i32x4 0 0 0 0))
          (block $bdone (loop $blocks
            (br_if $bdone (i32.ge_u (local.get $b) (local.get $bend)))
            (local.set $s (if (result f32) (local.get $dq)
              (then (f32.add (f32.mul
                (f32.load (i32.add (local.get $map) (i32.shl (i32.load8_u (i32.add (local.get $sc) (local.get $b))) (i32.const 2))))
                (f32.load (i32.add (local.get $nabs) (i32.shl (i32.div_u (local.get $b) (local.get $nb)) (i32.const 2)))))
                (local.get $off)))
              (else (f32.load (i32.add (local.get $sc) (i32.shl (local.get $b) (i32.const 2)))))))
            (local.set $a0 (v128.const i32x4 0 0 0 0))
            (local.set $gend (i32.add (local.get $pc) (i32.shl (i32.const 1) (i32.sub (local.get $bsl) (i32.const 1)))))
            (block $gdone (loop $groups
              (br_if $gdone (i32.ge_u (local.get $pc) (local.get $gend)))
              (local.set $v (v128.load (local.get $pc)))
              (local.set $hi (v128.and (i16x8.shr_u (local.get $v) (i32.const 4)) (local.get $mask)))
              (local.set $lo (v128.and (local.get $v) (local.get $mask)))
              (local.set $b0 (i8x16.swizzle (local.get $P0) (local.get $hi)))
              (local.set $b1 (i8x16.swizzle (local.get $P1) (local.get $hi)))
              (local.set $b2 (i8x16.swizzle (local.get $P2) (local.get $hi)))
              (local.set $b3 (i8x16.swizzle (local.get $P3) (local.get $hi)))
              (local.set $t0 (i8x16.shuffle 0 16 1 17 2 18 3 19 4 20 5 21 6 22 7 23 (local.get $b0) (local.get $b1)))
              (local.set $t1 (i8x16.shuffle 8 24 9 25 10 26 11 27 12 28 13 29 14 30 15 31 (local.get $b0) (local.get $b1)))
              (local.set $t2 (i8x16.shuffle 0 16 1 17 2 18 3 19 4 20 5 21 6 22 7 23 (local.get $b2) (local.get $b3)))
              (local.set $t3 (i8x16.shuffle 8 24 9 25 10 26 11 27 12 28 13 29 14 30 15 31 (local.get $b2) (local.get $b3)))
              (local.set $sh (f32x4.add
                (f32x4.add (f32x4.mul (i8x16.shuffle 0 1 16 17 2 3 18 19 4 5 20 21 6 7 22 23 (local.get $t0) (local.get $t2)) (v128.load offset=0 (local.get $xr)))
                           (f32x4.mul (i8x16.shuffle 8 9 24 25 10 11 26 27 12 13 28 29 14 15 30 31 (local.get $t0) (local.get $t2)) (v128.load offset=16 (local.get $xr))))
                (f32x4.add (f32x4.mul (i8x16.shuffle 0 1 16 17 2 3 18 19 4 5 20 21 6 7 22 23 (local.get $t1) (local.get $t3)) (v128.load offset=32 (local.get $xr)))
                           (f32x4.mul (i8x16.shuffle 8 9 24 25 10 11 26 27 12 13 28 29 14 15 30 31 (local.get $t1) (local.get $t3)) (v128.load offset=48 (local.get $xr))))))
              (local.set $b0 (i8x16.swizzle (local.get $P0) (local.get $lo)))
              (local.set $b1 (i8x16.swizzle (local.get $P1) (local.get $lo)))
              (local.set $b2 (i8x16.swizzle (local.get $P2) (local.get $lo)))
              (local.set $b3 (i8x16.swizzle (local.get $P3) (local.get $lo)))
              (local.set $t0 (i8x16.shuffle 0 16 1 17 2 18 3 19 4 20 5 21 6 22 7 23 (local.get $b0) (local.get $b1)))
              (local.set $t1 (i8x16.shuffle 8 24 9 25 10 26 11 27 12 28 13 29 14 30 15 31 (local.get $b0) (local.get $b1)))
              (local.set $t2 (i8x16.shuffle 0 16 1 17 2 18 3 19 4 20 5 21 6 22 7 23 (local.get $b2) (local.get $b3)))
              (local.set $t3 (i8x16.shuffle 8 24 9 25 10 26 11 27 12 28 13 29 14 30 15 31 (local.get $b2) (local.get $b3)))
              (local.set $sl (f32x4.add
                (f32x4.add (f32x4.mul (i8x16.shuffle 0 1 16 17 2 3 18 19 4 5 20 21 6 7 22 23 (local.get $t0) (local.get $t2)) (v128.load offset=64 (local.get $xr)))
                           (f32x4.mul (i8x16.shuffle 8 9 24 25 10 11 26 27 12 13 28 29 14 15 30 31 (local.get $t0) (local.get $t2)) (v128.load offset=80 (local.get $xr))))
                (f32x4.add (f32x4.mul (i8x16.shuffle 0 1 16 17 2 3 18 19 4 5 20 21 6 7 22 23 (local.get $t1) (local.get $t3)) (v128.load offset=96 (local.get $xr)))
                           (f32x4.mul (i8x16.shuffle 8 9 24 25 10 11 26 27 12 13 28 29 14 15 30 31 (local.get $t1) (local.get $t3)) (v128.load offset=112 (local.get $xr))))))
              (local.set $a0 (f32x4.add (local.get $a0) (f32x4.add (local.get $sh) (local.get $sl))))
              (local.set $xr (i32.add (local.get $xr) (i32.const 128)))
              (local.set $pc (i32.add (local.get $pc) (i32.const 16)))
              (br $groups)))
            (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul
              (local.get $a0)
              (f32x4.splat (local.get $s)))))
            (local.set $b (i32.add (local.get $b) (i32.const 1)))
            (br $blocks)))
          (f32.store (i32.add (local.get $y) (i32.shl (i32.add (i32.mul (local.get $m) (local.get $R)) (local.get $n)) (i32.const 2)))
            (call $hsum (local.get $acc)))
          (local.set $m (i32.add (local.get $m) (i32.const 1)))
          (br $ms)))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $rows)))
      (br $next)))
  )
