;; The CPU backend's hot loop: C += Apack · Bpack with a 4×8 register tile of f32x4 accumulators.
;;
;; Layouts (all f32, little-endian, in one shared memory so worker threads split the work):
;;   A:     lda = 0: packed, ceil(M/4) panels, panel i = K rows of 4 floats (k-major): A[4i+r][k] at (i*K + k)*4 + r
;;          lda > 0: row-major with a row stride of lda bytes, read in place (rows past M repeat row M−1)
;;   Bpack: ceil(N/8) panels, panel j = K rows of 8 floats (k-major): B[k][8j+c] at (j*K + k)*8 + c
;;   C:     row-major, Mp × Np (padded to 4 and 8), row stride Np floats
;; Panels [i0,i1) × [j0,j1) are computed; the first K block overwrites C (so C needs no clearing) unless acc = 1,
;; when the product is added to what C holds.
;; K is cut into blocks of 256 and rows into blocks of 16 panels so that a B sub-panel (8 KiB) stays in L1
;; and an A block (64 KiB) in L2.
(module
  (import "env" "memory" (memory 1 65536 shared))
  (func $gemm (export "gemm")
    (param $pa i32) (param $pb i32) (param $pc i32) (param $K i32) (param $Np i32)
    (param $i0 i32) (param $i1 i32) (param $j0 i32) (param $j1 i32) (param $lda i32) (param $M i32) (param $acc i32)
    (local $r1 i32) (local $r2 i32) (local $r3 i32) (local $row i32)
    (local $k0 i32) (local $kl i32) (local $ib i32) (local $ie i32) (local $i i32) (local $j i32)
    (local $ap i32) (local $bp i32) (local $cp i32) (local $kend i32) (local $rs i32)
    (local $a v128) (local $b0 v128) (local $b1 v128)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (local.set $rs (i32.shl (local.get $Np) (i32.const 2)))  ;; C row stride in bytes
    (local.set $k0 (i32.const 0))
    (block $kdone (loop $kloop
      (br_if $kdone (i32.ge_u (local.get $k0) (local.get $K)))
      (local.set $kl (i32.sub (local.get $K) (local.get $k0)))
      (if (i32.gt_u (local.get $kl) (i32.const 256)) (then (local.set $kl (i32.const 256))))
      (local.set $ib (local.get $i0))
      (block $idone (loop $iloop
        (br_if $idone (i32.ge_u (local.get $ib) (local.get $i1)))
        (local.set $ie (i32.add (local.get $ib) (i32.const 16)))
        (if (i32.gt_u (local.get $ie) (local.get $i1)) (then (local.set $ie (local.get $i1))))
        (local.set $j (local.get $j0))
        (block $jdone (loop $jloop
          (br_if $jdone (i32.ge_u (local.get $j) (local.get $j1)))
          (local.set $i (local.get $ib))
          (block $pdone (loop $ploop
            (br_if $pdone (i32.ge_u (local.get $i) (local.get $ie)))
            ;; C tile address: row 4i, column 8j
            (local.set $cp (i32.add (local.get $pc)
              (i32.add (i32.mul (i32.shl (local.get $i) (i32.const 2)) (local.get $rs))
                       (i32.shl (local.get $j) (i32.const 5)))))
            (if (i32.and (i32.eqz (local.get $k0)) (i32.eqz (local.get $acc)))
              (then
                (local.set $c00 (v128.const i32x4 0 0 0 0)) (local.set $c01 (v128.const i32x4 0 0 0 0))
                (local.set $c10 (v128.const i32x4 0 0 0 0)) (local.set $c11 (v128.const i32x4 0 0 0 0))
                (local.set $c20 (v128.const i32x4 0 0 0 0)) (local.set $c21 (v128.const i32x4 0 0 0 0))
                (local.set $c30 (v128.const i32x4 0 0 0 0)) (local.set $c31 (v128.const i32x4 0 0 0 0)))
              (else
                (local.set $c00 (v128.load (local.get $cp)))
                (local.set $c01 (v128.load offset=16 (local.get $cp)))
                (local.set $c10 (v128.load (i32.add (local.get $cp) (local.get $rs))))
                (local.set $c11 (v128.load offset=16 (i32.add (local.get $cp) (local.get $rs))))
                (local.set $c20 (v128.load (i32.add (local.get $cp) (i32.shl (local.get $rs) (i32.const 1)))))
                (local.set $c21 (v128.load offset=16 (i32.add (local.get $cp) (i32.shl (local.get $rs) (i32.const 1)))))
                (local.set $c30 (v128.load (i32.add (local.get $cp) (i32.mul (local.get $rs) (i32.const 3)))))
                (local.set $c31 (v128.load offset=16 (i32.add (local.get $cp) (i32.mul (local.get $rs) (i32.const 3)))))))
            (if (i32.eqz (local.get $lda))
              (then
            (local.set $ap (i32.add (local.get $pa) (i32.shl (i32.add (i32.mul (local.get $i) (local.get $K)) (local.get $k0)) (i32.const 4))))
            (local.set $bp (i32.add (local.get $pb) (i32.shl (i32.add (i32.mul (local.get $j) (local.get $K)) (local.get $k0)) (i32.const 5))))
            (local.set $kend (i32.add (local.get $bp) (i32.shl (local.get $kl) (i32.const 5))))
            (loop $kk
              (local.set $b0 (v128.load (local.get $bp)))
              (local.set $b1 (v128.load offset=16 (local.get $bp)))
              (local.set $a (v128.load32_splat (local.get $ap)))
              (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $a) (local.get $b0))))
              (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $a) (local.get $b1))))
              (local.set $a (v128.load32_splat offset=4 (local.get $ap)))
              (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $a) (local.get $b0))))
              (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $a) (local.get $b1))))
              (local.set $a (v128.load32_splat offset=8 (local.get $ap)))
              (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $a) (local.get $b0))))
              (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $a) (local.get $b1))))
              (local.set $a (v128.load32_splat offset=12 (local.get $ap)))
              (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $a) (local.get $b0))))
              (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $a) (local.get $b1))))
              (local.set $ap (i32.add (local.get $ap) (i32.const 16)))
              (local.set $bp (i32.add (local.get $bp) (i32.const 32)))
              (br_if $kk (i32.lt_u (local.get $bp) (local.get $kend))))
              )
              (else
            (local.set $bp (i32.add (local.get $pb) (i32.shl (i32.add (i32.mul (local.get $j) (local.get $K)) (local.get $k0)) (i32.const 5))))
            (local.set $kend (i32.add (local.get $bp) (i32.shl (local.get $kl) (i32.const 5))))
            ;; row pointers of rows 4i..4i+3 at column k0; rows past M repeat the last row (their C rows are padding)
            (local.set $row (i32.shl (local.get $i) (i32.const 2)))
            (local.set $ap (i32.add (local.get $pa) (i32.add (i32.mul (local.get $row) (local.get $lda)) (i32.shl (local.get $k0) (i32.const 2)))))
            (local.set $r1 (local.get $ap)) (local.set $r2 (local.get $ap)) (local.set $r3 (local.get $ap))
            (if (i32.lt_u (i32.add (local.get $row) (i32.const 1)) (local.get $M)) (then (local.set $r1 (i32.add (local.get $ap) (local.get $lda)))))
            (if (i32.lt_u (i32.add (local.get $row) (i32.const 2)) (local.get $M)) (then (local.set $r2 (i32.add (local.get $ap) (i32.shl (local.get $lda) (i32.const 1))))))
            (if (i32.lt_u (i32.add (local.get $row) (i32.const 3)) (local.get $M)) (then (local.set $r3 (i32.add (local.get $ap) (i32.mul (local.get $lda) (i32.const 3))))))
            (loop $kd
              (local.set $b0 (v128.load (local.get $bp)))
              (local.set $b1 (v128.load offset=16 (local.get $bp)))
              (local.set $a (v128.load32_splat (local.get $ap)))
              (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $a) (local.get $b0))))
              (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $a) (local.get $b1))))
              (local.set $a (v128.load32_splat (local.get $r1)))
              (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $a) (local.get $b0))))
              (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $a) (local.get $b1))))
              (local.set $a (v128.load32_splat (local.get $r2)))
              (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $a) (local.get $b0))))
              (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $a) (local.get $b1))))
              (local.set $a (v128.load32_splat (local.get $r3)))
              (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $a) (local.get $b0))))
              (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $a) (local.get $b1))))
              (local.set $ap (i32.add (local.get $ap) (i32.const 4)))
              (local.set $r1 (i32.add (local.get $r1) (i32.const 4)))
              (local.set $r2 (i32.add (local.get $r2) (i32.const 4)))
              (local.set $r3 (i32.add (local.get $r3) (i32.const 4)))
              (local.set $bp (i32.add (local.get $bp) (i32.const 32)))
              (br_if $kd (i32.lt_u (local.get $bp) (local.get $kend))))
              ))
            (v128.store (local.get $cp) (local.get $c00))
            (v128.store offset=16 (local.get $cp) (local.get $c01))
            (v128.store (i32.add (local.get $cp) (local.get $rs)) (local.get $c10))
            (v128.store offset=16 (i32.add (local.get $cp) (local.get $rs)) (local.get $c11))
            (v128.store (i32.add (local.get $cp) (i32.shl (local.get $rs) (i32.const 1))) (local.get $c20))
            (v128.store offset=16 (i32.add (local.get $cp) (i32.shl (local.get $rs) (i32.const 1))) (local.get $c21))
            (v128.store (i32.add (local.get $cp) (i32.mul (local.get $rs) (i32.const 3))) (local.get $c30))
            (v128.store offset=16 (i32.add (local.get $cp) (i32.mul (local.get $rs) (i32.const 3))) (local.get $c31))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $ploop)))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $jloop)))
        (local.set $ib (local.get $ie))
        (br $iloop)))
      (local.set $k0 (i32.add (local.get $k0) (local.get $kl)))
      (br $kloop)))
  )

  ;; Pack op(B) = Wᵀ for W (N rows × K, row stride $lds bytes, at $src) into 8-column panels, k-major, at $dst.
  ;; Rows of W past N give zero columns. Four k at a time: 8 row loads, two 4×4 transposes, 8 stores.
  (func (export "pack_bt") (param $src i32) (param $K i32) (param $N i32) (param $dst i32) (param $lds i32)
    (local $p i32) (local $panels i32) (local $k i32) (local $c i32) (local $row i32) (local $rs i32)
    (local $s0 i32) (local $s1 i32) (local $s2 i32) (local $s3 i32) (local $s4 i32) (local $s5 i32) (local $s6 i32) (local $s7 i32)
    (local $d i32) (local $k4 i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local.set $rs (local.get $lds))
    (local.set $panels (i32.shr_u (i32.add (local.get $N) (i32.const 7)) (i32.const 3)))
    (local.set $k4 (i32.and (local.get $K) (i32.const -4)))
    (local.set $p (i32.const 0))
    (block $pdone (loop $ploop
      (br_if $pdone (i32.ge_u (local.get $p) (local.get $panels)))
      (local.set $d (i32.add (local.get $dst) (i32.mul (local.get $p) (i32.shl (local.get $K) (i32.const 5)))))
      (if (i32.le_u (i32.shl (i32.add (local.get $p) (i32.const 1)) (i32.const 3)) (local.get $N))
        (then
          ;; a full panel: rows 8p..8p+7
          (local.set $s0 (i32.add (local.get $src) (i32.mul (i32.shl (local.get $p) (i32.const 3)) (local.get $rs))))
          (local.set $s1 (i32.add (local.get $s0) (local.get $rs)))
          (local.set $s2 (i32.add (local.get $s1) (local.get $rs)))
          (local.set $s3 (i32.add (local.get $s2) (local.get $rs)))
          (local.set $s4 (i32.add (local.get $s3) (local.get $rs)))
          (local.set $s5 (i32.add (local.get $s4) (local.get $rs)))
          (local.set $s6 (i32.add (local.get $s5) (local.get $rs)))
          (local.set $s7 (i32.add (local.get $s6) (local.get $rs)))
          (local.set $k (i32.const 0))
          (block $kdone (loop $kloop
            (br_if $kdone (i32.ge_u (local.get $k) (local.get $k4)))
            ;; rows 0-3 → columns 0-3 of k..k+3
            (local.set $a0 (v128.load (local.get $s0))) (local.set $a1 (v128.load (local.get $s1)))
            (local.set $a2 (v128.load (local.get $s2))) (local.set $a3 (v128.load (local.get $s3)))
            (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $a0) (local.get $a1)))
            (local.set $t1 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $a0) (local.get $a1)))
            (local.set $t2 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $a2) (local.get $a3)))
            (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $a2) (local.get $a3)))
            (v128.store offset=0 (local.get $d) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t2)))
            (v128.store offset=32 (local.get $d) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t2)))
            (v128.store offset=64 (local.get $d) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t1) (local.get $t3)))
            (v128.store offset=96 (local.get $d) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t1) (local.get $t3)))
            ;; rows 4-7 → columns 4-7
            (local.set $a0 (v128.load (local.get $s4))) (local.set $a1 (v128.load (local.get $s5)))
            (local.set $a2 (v128.load (local.get $s6))) (local.set $a3 (v128.load (local.get $s7)))
            (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $a0) (local.get $a1)))
            (local.set $t1 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $a0) (local.get $a1)))
            (local.set $t2 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $a2) (local.get $a3)))
            (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $a2) (local.get $a3)))
            (v128.store offset=16 (local.get $d) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t2)))
            (v128.store offset=48 (local.get $d) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t2)))
            (v128.store offset=80 (local.get $d) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t1) (local.get $t3)))
            (v128.store offset=112 (local.get $d) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t1) (local.get $t3)))
            (local.set $s0 (i32.add (local.get $s0) (i32.const 16))) (local.set $s1 (i32.add (local.get $s1) (i32.const 16)))
            (local.set $s2 (i32.add (local.get $s2) (i32.const 16))) (local.set $s3 (i32.add (local.get $s3) (i32.const 16)))
            (local.set $s4 (i32.add (local.get $s4) (i32.const 16))) (local.set $s5 (i32.add (local.get $s5) (i32.const 16)))
            (local.set $s6 (i32.add (local.get $s6) (i32.const 16))) (local.set $s7 (i32.add (local.get $s7) (i32.const 16)))
            (local.set $d (i32.add (local.get $d) (i32.const 128)))
            (local.set $k (i32.add (local.get $k) (i32.const 4)))
            (br $kloop)))
          ;; the k tail, one at a time
          (block $tdone (loop $tloop
            (br_if $tdone (i32.ge_u (local.get $k) (local.get $K)))
            (f32.store offset=0 (local.get $d) (f32.load (local.get $s0)))
            (f32.store offset=4 (local.get $d) (f32.load (local.get $s1)))
            (f32.store offset=8 (local.get $d) (f32.load (local.get $s2)))
            (f32.store offset=12 (local.get $d) (f32.load (local.get $s3)))
            (f32.store offset=16 (local.get $d) (f32.load (local.get $s4)))
            (f32.store offset=20 (local.get $d) (f32.load (local.get $s5)))
            (f32.store offset=24 (local.get $d) (f32.load (local.get $s6)))
            (f32.store offset=28 (local.get $d) (f32.load (local.get $s7)))
            (local.set $s0 (i32.add (local.get $s0) (i32.const 4))) (local.set $s1 (i32.add (local.get $s1) (i32.const 4)))
            (local.set $s2 (i32.add (local.get $s2) (i32.const 4))) (local.set $s3 (i32.add (local.get $s3) (i32.const 4)))
            (local.set $s4 (i32.add (local.get $s4) (i32.const 4))) (local.set $s5 (i32.add (local.get $s5) (i32.const 4)))
            (local.set $s6 (i32.add (local.get $s6) (i32.const 4))) (local.set $s7 (i32.add (local.get $s7) (i32.const 4)))
            (local.set $d (i32.add (local.get $d) (i32.const 32)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $tloop))))
        (else
          ;; the last, partial panel: element by element, zeros past row N
          (local.set $k (i32.const 0))
          (block $kd2 (loop $kl2
            (br_if $kd2 (i32.ge_u (local.get $k) (local.get $K)))
            (local.set $c (i32.const 0))
            (block $cd (loop $cl
              (br_if $cd (i32.ge_u (local.get $c) (i32.const 8)))
              (local.set $row (i32.add (i32.shl (local.get $p) (i32.const 3)) (local.get $c)))
              (f32.store (i32.add (local.get $d) (i32.shl (i32.add (i32.shl (local.get $k) (i32.const 3)) (local.get $c)) (i32.const 2)))
                (if (result f32) (i32.lt_u (local.get $row) (local.get $N))
                  (then (f32.load (i32.add (local.get $src) (i32.add (i32.mul (local.get $row) (local.get $rs)) (i32.shl (local.get $k) (i32.const 2))))))
                  (else (f32.const 0))))
              (local.set $c (i32.add (local.get $c) (i32.const 1)))
              (br $cl)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $kl2)))))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $ploop)))
  )

  ;; Pack B (K rows × N, row stride $lds bytes, at $src) into 8-column panels, k-major; columns past N are zero.
  (func (export "pack_b") (param $src i32) (param $K i32) (param $N i32) (param $lds i32) (param $dst i32)
    (local $p i32) (local $panels i32) (local $k i32) (local $c i32) (local $s i32) (local $d i32)
    (local.set $panels (i32.shr_u (i32.add (local.get $N) (i32.const 7)) (i32.const 3)))
    (local.set $p (i32.const 0))
    (block $pdone (loop $ploop
      (br_if $pdone (i32.ge_u (local.get $p) (local.get $panels)))
      (local.set $d (i32.add (local.get $dst) (i32.mul (local.get $p) (i32.shl (local.get $K) (i32.const 5)))))
      (local.set $s (i32.add (local.get $src) (i32.shl (local.get $p) (i32.const 5))))
      (local.set $k (i32.const 0))
      (if (i32.le_u (i32.shl (i32.add (local.get $p) (i32.const 1)) (i32.const 3)) (local.get $N))
        (then
          (block $kd (loop $kl
            (br_if $kd (i32.ge_u (local.get $k) (local.get $K)))
            (v128.store (local.get $d) (v128.load (local.get $s)))
            (v128.store offset=16 (local.get $d) (v128.load offset=16 (local.get $s)))
            (local.set $s (i32.add (local.get $s) (local.get $lds)))
            (local.set $d (i32.add (local.get $d) (i32.const 32)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $kl))))
        (else
          (block $kd2 (loop $kl2
            (br_if $kd2 (i32.ge_u (local.get $k) (local.get $K)))
            (local.set $c (i32.const 0))
            (block $cd (loop $cl
              (br_if $cd (i32.ge_u (local.get $c) (i32.const 8)))
              (f32.store (i32.add (local.get $d) (i32.shl (local.get $c) (i32.const 2)))
                (if (result f32) (i32.lt_u (i32.add (i32.shl (local.get $p) (i32.const 3)) (local.get $c)) (local.get $N))
                  (then (f32.load (i32.add (local.get $s) (i32.shl (local.get $c) (i32.const 2)))))
                  (else (f32.const 0))))
              (local.set $c (i32.add (local.get $c) (i32.const 1)))
              (br $cl)))
            (local.set $s (i32.add (local.get $s) (local.get $lds)))
            (local.set $d (i32.add (local.get $d) (i32.const 32)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $kl2)))))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $ploop)))
  )

  ;; Pack op(A) = Xᵀ for X (K rows × M, row stride $lds bytes, at $src) into 4-row panels, k-major:
  ;; panel i, row k = X[k][4i..4i+3], one 16-byte copy; rows of op(A) past M are zero.
  (func (export "pack_at") (param $src i32) (param $lds i32) (param $M i32) (param $K i32) (param $dst i32)
    (local $p i32) (local $panels i32) (local $k i32) (local $r i32) (local $s i32) (local $d i32)
    (local.set $panels (i32.shr_u (i32.add (local.get $M) (i32.const 3)) (i32.const 2)))
    (local.set $p (i32.const 0))
    (block $pdone (loop $ploop
      (br_if $pdone (i32.ge_u (local.get $p) (local.get $panels)))
      (local.set $d (i32.add (local.get $dst) (i32.mul (local.get $p) (i32.shl (local.get $K) (i32.const 4)))))
      (local.set $s (i32.add (local.get $src) (i32.shl (local.get $p) (i32.const 4))))
      (local.set $k (i32.const 0))
      (if (i32.le_u (i32.shl (i32.add (local.get $p) (i32.const 1)) (i32.const 2)) (local.get $M))
        (then
          (block $kd (loop $kl
            (br_if $kd (i32.ge_u (local.get $k) (local.get $K)))
            (v128.store (local.get $d) (v128.load (local.get $s)))
            (local.set $s (i32.add (local.get $s) (local.get $lds)))
            (local.set $d (i32.add (local.get $d) (i32.const 16)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $kl))))
        (else
          (block $kd2 (loop $kl2
            (br_if $kd2 (i32.ge_u (local.get $k) (local.get $K)))
            (local.set $r (i32.const 0))
            (block $rd (loop $rl
              (br_if $rd (i32.ge_u (local.get $r) (i32.const 4)))
              (f32.store (i32.add (local.get $d) (i32.shl (local.get $r) (i32.const 2)))
                (if (result f32) (i32.lt_u (i32.add (i32.shl (local.get $p) (i32.const 2)) (local.get $r)) (local.get $M))
                  (then (f32.load (i32.add (local.get $s) (i32.shl (local.get $r) (i32.const 2)))))
                  (else (f32.const 0))))
              (local.set $r (i32.add (local.get $r) (i32.const 1)))
              (br $rl)))
            (local.set $s (i32.add (local.get $s) (local.get $lds)))
            (local.set $d (i32.add (local.get $d) (i32.const 16)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $kl2)))))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $ploop)))
  )

  ;; Run jobs [j0, j1) of a table of gemm calls, 12 i32 each: pa pb pc K Np i0 i1 j0 j1 lda M acc.
  (func $gemm_jobs (export "gemm_jobs") (param $table i32) (param $j0 i32) (param $j1 i32)
    (local $t i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $j0) (local.get $j1)))
      (local.set $t (i32.add (local.get $table) (i32.mul (local.get $j0) (i32.const 48))))
      (call $gemm
        (i32.load offset=0 (local.get $t)) (i32.load offset=4 (local.get $t)) (i32.load offset=8 (local.get $t))
        (i32.load offset=12 (local.get $t)) (i32.load offset=16 (local.get $t)) (i32.load offset=20 (local.get $t))
        (i32.load offset=24 (local.get $t)) (i32.load offset=28 (local.get $t)) (i32.load offset=32 (local.get $t))
        (i32.load offset=36 (local.get $t)) (i32.load offset=40 (local.get $t)) (i32.load offset=44 (local.get $t)))
      (local.set $j0 (i32.add (local.get $j0) (i32.const 1)))
      (br $next)))
  )

  ;; x[0..n) *= alpha (n a multiple of 4, 16-byte aligned)
  (func (export "scale") (param $x i32) (param $n i32) (param $alpha f32)
    (local $end i32) (local $a v128)
    (local.set $a (f32x4.splat (local.get $alpha)))
    (local.set $end (i32.add (local.get $x) (i32.shl (local.get $n) (i32.const 2))))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $x) (local.get $end)))
      (v128.store (local.get $x) (f32x4.mul (v128.load (local.get $x)) (local.get $a)))
      (local.set $x (i32.add (local.get $x) (i32.const 16)))
      (br $l)))
  )

  ;; Work-stealing gemm: threads take chunks of $chunk panels (of rows when $byRows, else of columns) from the
  ;; shared counter at $ctr until none are left, so a thread that is descheduled slows nobody down.
  (func (export "gemm_steal")
    (param $pa i32) (param $pb i32) (param $pc i32) (param $K i32) (param $Np i32)
    (param $mP i32) (param $nP i32) (param $lda i32) (param $M i32) (param $acc i32)
    (param $ctr i32) (param $chunk i32) (param $byRows i32)
    (local $c i32) (local $lo i32) (local $hi i32) (local $total i32)
    (local.set $total (select (local.get $mP) (local.get $nP) (local.get $byRows)))
    (block $done (loop $next
      (local.set $c (i32.atomic.rmw.add (local.get $ctr) (i32.const 1)))
      (local.set $lo (i32.mul (local.get $c) (local.get $chunk)))
      (br_if $done (i32.ge_u (local.get $lo) (local.get $total)))
      (local.set $hi (i32.add (local.get $lo) (local.get $chunk)))
      (if (i32.gt_u (local.get $hi) (local.get $total)) (then (local.set $hi (local.get $total))))
      (if (local.get $byRows)
        (then (call $gemm (local.get $pa) (local.get $pb) (local.get $pc) (local.get $K) (local.get $Np)
                (local.get $lo) (local.get $hi) (i32.const 0) (local.get $nP) (local.get $lda) (local.get $M) (local.get $acc)))
        (else (call $gemm (local.get $pa) (local.get $pb) (local.get $pc) (local.get $K) (local.get $Np)
                (i32.const 0) (local.get $mP) (local.get $lo) (local.get $hi) (local.get $lda) (local.get $M) (local.get $acc))))
      (br $next)))
  )

  ;; Work-stealing job table: threads take jobs one by one from the counter at $ctr.
  (func (export "jobs_steal") (param $table i32) (param $count i32) (param $ctr i32)
    (local $j i32)
    (block $done (loop $next
      (local.set $j (i32.atomic.rmw.add (local.get $ctr) (i32.const 1)))
      (br_if $done (i32.ge_u (local.get $j) (local.get $count)))
      (call $gemm_jobs (local.get $table) (local.get $j) (i32.add (local.get $j) (i32.const 1)))
      (br $next)))
  )

  ;; bf16 bits (n u16 at $src) → f32 at $dst: each value is its bits shifted into the high half
  (func (export "widen_bf16") (param $src i32) (param $n i32) (param $dst i32)
    (local $i i32)
    (block $d (loop $l
      (br_if $d (i32.gt_s (i32.add (local.get $i) (i32.const 4)) (local.get $n)))
      (v128.store (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2)))
        (i32x4.shl (v128.load16x4_u (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 1)))) (i32.const 16)))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $l)))
    (block $d2 (loop $l2
      (br_if $d2 (i32.ge_s (local.get $i) (local.get $n)))
      (i32.store (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2)))
        (i32.shl (i32.load16_u (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 1)))) (i32.const 16)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l2)))
  )

  ;; y (M × N) = x (M × K) · Wᵀ for small M (decoding one token): W (N × K; $bf16: 0 f32, 1 bf16, 2 f16 bits) is read
  ;; once, row by row; threads take chunks of $chunk rows of W from the counter at $ctr.
  (func (export "gemv_steal") (param $x i32) (param $M i32) (param $w i32) (param $bf16 i32) (param $K i32) (param $N i32)
        (param $y i32) (param $ctr i32) (param $chunk i32)
    (local $c i32) (local $n i32) (local $n1 i32) (local $m i32) (local $k i32) (local $row i32) (local $xr i32)
    (local $acc v128) (local $wv v128) (local $s f32) (local $k4 i32)
    (local.set $k4 (i32.and (local.get $K) (i32.const -4)))
    (block $done (loop $next
      (local.set $c (i32.atomic.rmw.add (local.get $ctr) (i32.const 1)))
      (local.set $n (i32.mul (local.get $c) (local.get $chunk)))
      (br_if $done (i32.ge_u (local.get $n) (local.get $N)))
      (local.set $n1 (i32.add (local.get $n) (local.get $chunk)))
      (if (i32.gt_u (local.get $n1) (local.get $N)) (then (local.set $n1 (local.get $N))))
      (block $rdone (loop $rows
        (br_if $rdone (i32.ge_u (local.get $n) (local.get $n1)))
        (local.set $row (i32.add (local.get $w) (i32.mul (i32.mul (local.get $n) (local.get $K)) (select (i32.const 2) (i32.const 4) (local.get $bf16)))))
        (local.set $m (i32.const 0))
        (block $mdone (loop $ms
          (br_if $mdone (i32.ge_u (local.get $m) (local.get $M)))
          (local.set $xr (i32.add (local.get $x) (i32.shl (i32.mul (local.get $m) (local.get $K)) (i32.const 2))))
          (local.set $acc (v128.const f32x4 0 0 0 0))
          (local.set $k (i32.const 0))
          (block $kdone (loop $ks
            (br_if $kdone (i32.ge_u (local.get $k) (local.get $k4)))
            (if (i32.eq (local.get $bf16) (i32.const 1))
              (then (local.set $wv (i32x4.shl (v128.load16x4_u (i32.add (local.get $row) (i32.shl (local.get $k) (i32.const 1)))) (i32.const 16))))
              (else (if (i32.eq (local.get $bf16) (i32.const 2))
                (then (local.set $wv (call $f16x4 (i32.add (local.get $row) (i32.shl (local.get $k) (i32.const 1))))))
                (else (local.set $wv (v128.load (i32.add (local.get $row) (i32.shl (local.get $k) (i32.const 2)))))))))
            (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $wv) (v128.load (i32.add (local.get $xr) (i32.shl (local.get $k) (i32.const 2)))))))
            (local.set $k (i32.add (local.get $k) (i32.const 4)))
            (br $ks)))
          (local.set $s (f32.add (f32.add (f32x4.extract_lane 0 (local.get $acc)) (f32x4.extract_lane 1 (local.get $acc)))
                                 (f32.add (f32x4.extract_lane 2 (local.get $acc)) (f32x4.extract_lane 3 (local.get $acc)))))
          (block $tdone (loop $ts
            (br_if $tdone (i32.ge_u (local.get $k) (local.get $K)))
            (local.set $s (f32.add (local.get $s) (f32.mul
              (if (result f32) (i32.eq (local.get $bf16) (i32.const 1))
                (then (f32.reinterpret_i32 (i32.shl (i32.load16_u (i32.add (local.get $row) (i32.shl (local.get $k) (i32.const 1)))) (i32.const 16))))
                (else (if (result f32) (i32.eq (local.get $bf16) (i32.const 2))
                  (then (f32x4.extract_lane 0 (call $f16x4 (i32.add (local.get $row) (i32.shl (local.get $k) (i32.const 1))))))
                  (else (f32.load (i32.add (local.get $row) (i32.shl (local.get $k) (i32.const 2))))))))
              (f32.load (i32.add (local.get $xr) (i32.shl (local.get $k) (i32.const 2)))))))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $ts)))
          (f32.store (i32.add (local.get $y) (i32.shl (i32.add (i32.mul (local.get $m) (local.get $N)) (local.get $n)) (i32.const 2))) (local.get $s))
          (local.set $m (i32.add (local.get $m) (i32.const 1)))
          (br $ms)))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $rows)))
      (br $next)))
  )

  ;; four f16 values (bits at $p) as f32x4: shift the exponent and mantissa into place and rescale by 2^112
  ;; (exact for normal and subnormal values), then inf/NaN get the all-ones exponent and the sign goes back on
  (func $f16x4 (param $p i32) (result v128)
    (local $h v128) (local $em v128) (local $v v128) (local $f v128)
    (local.set $h (v128.load16x4_u (local.get $p)))
    (local.set $em (v128.and (local.get $h) (v128.const i32x4 0x7fff 0x7fff 0x7fff 0x7fff)))
    (local.set $v (i32x4.shl (local.get $em) (i32.const 13)))
    (local.set $f (f32x4.mul (local.get $v) (v128.const i32x4 0x77800000 0x77800000 0x77800000 0x77800000)))
    (local.set $f (v128.bitselect
      (v128.or (local.get $v) (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000))
      (local.get $f)
      (i32x4.ge_u (local.get $em) (v128.const i32x4 0x7c00 0x7c00 0x7c00 0x7c00))))
    (v128.or (local.get $f) (i32x4.shl (v128.and (local.get $h) (v128.const i32x4 0x8000 0x8000 0x8000 0x8000)) (i32.const 16)))
  )

  ;; f16 bits (n u16 at $src) → f32 at $dst (n padded up to 4: the tail reads past the end, into slack)
  (func (export "widen_f16") (param $src i32) (param $n i32) (param $dst i32)
    (local $i i32)
    (block $d (loop $l
      (br_if $d (i32.ge_s (local.get $i) (local.get $n)))
      (v128.store (i32.add (local.get $dst) (i32.shl (local.get $i) (i32.const 2)))
        (call $f16x4 (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $l)))
  )

  ;; ---- 4-bit weights (NF4/FP4): dequantized panel by panel inside the product, never as a whole matrix ----
  ;; W is R × C row-major, flattened; element (r, c) is code nibble idx = r·C + c of the packed bytes at $q (even idx in
  ;; the high nibble), its value $tbl[code] × $sc[idx >> $bsl] (f32 table of 16, f32 scale per block of 2^$bsl).
  ;; Writes panel $j of op(B), K rows of 8 floats, at $dst: op(B) = Wᵀ when $trans (B[k][8j+c] = W[8j+c][k], K = C),
  ;; else op(B) = W (B[k][8j+c] = W[k][8j+c], K = R). Columns past the matrix are zeros.
  (func $qpanel (param $q i32) (param $sc i32) (param $tbl i32) (param $bsl i32) (param $R i32) (param $C i32)
        (param $trans i32) (param $j i32) (param $K i32) (param $dst i32)
    (local $c i32) (local $k i32) (local $col i32) (local $idx i32) (local $step i32) (local $d i32) (local $byte i32) (local $valid i32)
    (local.set $c (i32.const 0))
    (block $cdone (loop $cl
      (br_if $cdone (i32.ge_u (local.get $c) (i32.const 8)))
      (local.set $col (i32.add (i32.shl (local.get $j) (i32.const 3)) (local.get $c)))
      ;; first element and the flat step between consecutive k
      (if (local.get $trans)
        (then (local.set $valid (i32.lt_u (local.get $col) (local.get $R)))
              (local.set $idx (i32.mul (local.get $col) (local.get $C)))
              (local.set $step (i32.const 1)))
        (else (local.set $valid (i32.lt_u (local.get $col) (local.get $C)))
              (local.set $idx (local.get $col))
              (local.set $step (local.get $C))))
      (local.set $d (i32.add (local.get $dst) (i32.shl (local.get $c) (i32.const 2))))
      (local.set $k (i32.const 0))
      (if (local.get $valid)
        (then
          (block $kdone (loop $kl
            (br_if $kdone (i32.ge_u (local.get $k) (local.get $K)))
            (local.set $byte (i32.load8_u (i32.add (local.get $q) (i32.shr_u (local.get $idx) (i32.const 1)))))
            (f32.store (local.get $d)
              (f32.mul
                (f32.load (i32.add (local.get $tbl) (i32.shl
                  (select (i32.and (local.get $byte) (i32.const 15)) (i32.shr_u (local.get $byte) (i32.const 4))
                          (i32.and (local.get $idx) (i32.const 1)))
                  (i32.const 2))))
                (f32.load (i32.add (local.get $sc) (i32.shl (i32.shr_u (local.get $idx) (local.get $bsl)) (i32.const 2))))))
            (local.set $idx (i32.add (local.get $idx) (local.get $step)))
            (local.set $d (i32.add (local.get $d) (i32.const 32)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $kl))))
        (else
          (block $zdone (loop $zl
            (br_if $zdone (i32.ge_u (local.get $k) (local.get $K)))
            (f32.store (local.get $d) (f32.const 0))
            (local.set $d (i32.add (local.get $d) (i32.const 32)))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $zl)))))
      (local.set $c (i32.add (local.get $c) (i32.const 1)))
      (br $cl)))
  )

  ;; Work-stealing product with a 4-bit op(B): each thread takes $chunk column panels at a time from the counter,
  ;; dequantizes them into its own scratch ($scratch + $thread·$stride) and multiplies every row of A by them.
  ;; $p points at i32 parameters: [pa, pc, K, Np, mP, nP, lda, M, acc, ctr, chunk, q, sc, tbl, bsl, R, C, trans,
  ;; scratch, stride].
  (func (export "qgemm_steal") (param $p i32) (param $thread i32)
    (local $lo i32) (local $hi i32) (local $j i32) (local $K i32) (local $dst i32) (local $panel i32)
    (local.set $K (i32.load offset=8 (local.get $p)))
    (local.set $panel (i32.shl (local.get $K) (i32.const 5)))
    (local.set $dst (i32.add (i32.load offset=72 (local.get $p)) (i32.mul (local.get $thread) (i32.load offset=76 (local.get $p)))))
    (block $done (loop $next
      (local.set $lo (i32.mul (i32.atomic.rmw.add (i32.load offset=36 (local.get $p)) (i32.const 1)) (i32.load offset=40 (local.get $p))))
      (br_if $done (i32.ge_u (local.get $lo) (i32.load offset=20 (local.get $p))))
      (local.set $hi (i32.add (local.get $lo) (i32.load offset=40 (local.get $p))))
      (if (i32.gt_u (local.get $hi) (i32.load offset=20 (local.get $p))) (then (local.set $hi (i32.load offset=20 (local.get $p)))))
      (local.set $j (local.get $lo))
      (block $pdone (loop $pl
        (br_if $pdone (i32.ge_u (local.get $j) (local.get $hi)))
        (call $qpanel (i32.load offset=44 (local.get $p)) (i32.load offset=48 (local.get $p)) (i32.load offset=52 (local.get $p))
          (i32.load offset=56 (local.get $p)) (i32.load offset=60 (local.get $p)) (i32.load offset=64 (local.get $p))
          (i32.load offset=68 (local.get $p)) (local.get $j) (local.get $K)
          (i32.add (local.get $dst) (i32.mul (i32.sub (local.get $j) (local.get $lo)) (local.get $panel))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $pl)))
      ;; panel j of the kernel's B is read at pb + j·K·32: point pb so that panel lo lands on this thread's scratch
      (call $gemm (i32.load offset=0 (local.get $p))
        (i32.sub (local.get $dst) (i32.mul (local.get $lo) (local.get $panel)))
        (i32.load offset=4 (local.get $p)) (local.get $K) (i32.load offset=12 (local.get $p))
        (i32.const 0) (i32.load offset=16 (local.get $p)) (local.get $lo) (local.get $hi)
        (i32.load offset=24 (local.get $p)) (i32.load offset=28 (local.get $p)) (i32.load offset=32 (local.get $p)))
      (br $next)))
  )

  ;; y (M × R) = x (M × C) · Wᵀ for a few rows of x (decoding) and a 4-bit W (R × C): each output row n reads its
  ;; codes once; per block a 16-entry table scaled by the block's absmax is built in the thread's 64-byte scratch
  ;; ($tab + $thread·64), so each element costs a lookup and a multiply-add. Threads take $chunk rows of W at a time.
  ;; $p: [x, M, q, sc, tbl, bsl, R, C, y, ctr, chunk, tab]
  (func (export "qgemv_steal") (param $p i32) (param $thread i32)
    (local $x i32) (local $M i32) (local $q i32) (local $sc i32) (local $tbl i32) (local $bsl i32) (local $R i32) (local $C i32)
    (local $y i32) (local $chunk i32) (local $tab i32) (local $n i32) (local $n1 i32) (local $m i32) (local $k i32) (local $k1 i32)
    (local $idx i32) (local $b i32) (local $c i32) (local $s f32) (local $acc f32) (local $byte i32) (local $xr i32)
    (local.set $x (i32.load offset=0 (local.get $p))) (local.set $M (i32.load offset=4 (local.get $p)))
    (local.set $q (i32.load offset=8 (local.get $p))) (local.set $sc (i32.load offset=12 (local.get $p)))
    (local.set $tbl (i32.load offset=16 (local.get $p))) (local.set $bsl (i32.load offset=20 (local.get $p)))
    (local.set $R (i32.load offset=24 (local.get $p))) (local.set $C (i32.load offset=28 (local.get $p)))
    (local.set $y (i32.load offset=32 (local.get $p))) (local.set $chunk (i32.load offset=40 (local.get $p)))
    (local.set $tab (i32.add (i32.load offset=44 (local.get $p)) (i32.shl (local.get $thread) (i32.const 6))))
    (block $done (loop $next
      (local.set $n (i32.mul (i32.atomic.rmw.add (i32.load offset=36 (local.get $p)) (i32.const 1)) (local.get $chunk)))
      (br_if $done (i32.ge_u (local.get $n) (local.get $R)))
      (local.set $n1 (i32.add (local.get $n) (local.get $chunk)))
      (if (i32.gt_u (local.get $n1) (local.get $R)) (then (local.set $n1 (local.get $R))))
      (block $rdone (loop $rows
        (br_if $rdone (i32.ge_u (local.get $n) (local.get $n1)))
        (local.set $m (i32.const 0))
        (block $mdone (loop $ms
          (br_if $mdone (i32.ge_u (local.get $m) (local.get $M)))
          (local.set $xr (i32.add (local.get $x) (i32.shl (i32.mul (local.get $m) (local.get $C)) (i32.const 2))))
          (local.set $acc (f32.const 0))
          (local.set $k (i32.const 0))
          (block $kdone (loop $segs
            (br_if $kdone (i32.ge_u (local.get $k) (local.get $C)))
            ;; the block of element (n, k) and where it ends in this row
            (local.set $idx (i32.add (i32.mul (local.get $n) (local.get $C)) (local.get $k)))
            (local.set $b (i32.shr_u (local.get $idx) (local.get $bsl)))
            (local.set $k1 (i32.sub (i32.shl (i32.add (local.get $b) (i32.const 1)) (local.get $bsl)) (i32.mul (local.get $n) (local.get $C))))
            (if (i32.gt_u (local.get $k1) (local.get $C)) (then (local.set $k1 (local.get $C))))
            (local.set $s (f32.load (i32.add (local.get $sc) (i32.shl (local.get $b) (i32.const 2)))))
            (local.set $c (i32.const 0))
            (block $tdone (loop $tl
              (br_if $tdone (i32.ge_u (local.get $c) (i32.const 16)))
              (f32.store (i32.add (local.get $tab) (i32.shl (local.get $c) (i32.const 2)))
                (f32.mul (f32.load (i32.add (local.get $tbl) (i32.shl (local.get $c) (i32.const 2)))) (local.get $s)))
              (local.set $c (i32.add (local.get $c) (i32.const 1)))
              (br $tl)))
            ;; whole bytes (two elements) while the element index is even and two remain
            (if (i32.eqz (i32.and (local.get $idx) (i32.const 1))) (then
              (block $bdone (loop $bl
                (br_if $bdone (i32.gt_u (i32.add (local.get $k) (i32.const 2)) (local.get $k1)))
                (local.set $byte (i32.load8_u (i32.add (local.get $q) (i32.shr_u (local.get $idx) (i32.const 1)))))
                (local.set $acc (f32.add (local.get $acc) (f32.add
                  (f32.mul (f32.load (i32.add (local.get $tab) (i32.shl (i32.shr_u (local.get $byte) (i32.const 4)) (i32.const 2))))
                           (f32.load (i32.add (local.get $xr) (i32.shl (local.get $k) (i32.const 2)))))
                  (f32.mul (f32.load (i32.add (local.get $tab) (i32.shl (i32.and (local.get $byte) (i32.const 15)) (i32.const 2))))
                           (f32.load offset=4 (i32.add (local.get $xr) (i32.shl (local.get $k) (i32.const 2))))))))
                (local.set $idx (i32.add (local.get $idx) (i32.const 2)))
                (local.set $k (i32.add (local.get $k) (i32.const 2)))
                (br $bl)))))
            (block $edone (loop $el
              (br_if $edone (i32.ge_u (local.get $k) (local.get $k1)))
              (local.set $byte (i32.load8_u (i32.add (local.get $q) (i32.shr_u (local.get $idx) (i32.const 1)))))
              (local.set $acc (f32.add (local.get $acc)
                (f32.mul
                  (f32.load (i32.add (local.get $tab) (i32.shl
                    (select (i32.and (local.get $byte) (i32.const 15)) (i32.shr_u (local.get $byte) (i32.const 4)) (i32.and (local.get $idx) (i32.const 1)))
                    (i32.const 2))))
                  (f32.load (i32.add (local.get $xr) (i32.shl (local.get $k) (i32.const 2)))))))
              (local.set $idx (i32.add (local.get $idx) (i32.const 1)))
              (local.set $k (i32.add (local.get $k) (i32.const 1)))
              (br $el)))
            (br $segs)))
          (f32.store (i32.add (local.get $y) (i32.shl (i32.add (i32.mul (local.get $m) (local.get $R)) (local.get $n)) (i32.const 2))) (local.get $acc))
          (local.set $m (i32.add (local.get $m) (i32.const 1)))
          (br $ms)))
        (local.set $n (i32.add (local.get $n) (i32.const 1)))
        (br $rows)))
      (br $next)))
  )
)
