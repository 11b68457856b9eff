;; The CPU backend's hot loop: C += Apack · Bpack with a 4×8 register tile of f32x4 accumulators.
;;
;; Layouts (all f32, little-endian, in one shared memory so worker threads split the work):
;;   Apack: ceil(M/4) panels, panel i = K rows of 4 floats (k-major): A[4i+r][k] at (i*K + k)*4 + r
;;   Bpack: ceil(N/8) panels, panel j = K rows of 8 floats (k-major): B[k][8j+c] at (j*K + k)*8 + c
;;   C:     row-major, Mp × Np (padded to 4 and 8), row stride Np floats
;; Panels [i0,i1) × [j0,j1) are computed; the first K block overwrites C, so C needs no clearing.
;; K is cut into blocks of 256 and rows into blocks of 16 panels so that a B sub-panel (8 KiB) stays in L1
;; and an A block (64 KiB) in L2.
(module
  (import "env" "memory" (memory 1 65536 shared))
  (func (export "gemm")
    (param $pa i32) (param $pb i32) (param $pc i32) (param $K i32) (param $Np i32)
    (param $i0 i32) (param $i1 i32) (param $j0 i32) (param $j1 i32)
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
            (if (i32.eqz (local.get $k0))
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
)
