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
;; and an A block (64 KiB) in L2. $tiles runs these loops for every product; two read operands that are neither
;; packed nor row-major A in place: gemm_tn_steal (Aᵀ and B both in rows, a LoRA weight gradient) and
;; gemm_bh_steal (a bf16 B in rows, a backward product's weight).
;; (a fragment: scripts/build.mjs assembles every ops/**/*.wat into one module over one shared memory)
  (func $gemm (export "gemm")
    (param $pa i32) (param $pb i32) (param $pc i32) (param $K i32) (param $Np i32)
    (param $i0 i32) (param $i1 i32) (param $j0 i32) (param $j1 i32) (param $lda i32) (param $M i32) (param $acc i32)
    (call $gemm_k (local.get $pa) (local.get $pb) (local.get $pc) (local.get $K) (local.get $Np)
      (local.get $i0) (local.get $i1) (local.get $j0) (local.get $j1) (local.get $lda) (local.get $M) (local.get $acc)
      (local.get $K) (local.get $K) (i32.const 0))
  )

  ;; The same over k in [$ks, $K) only, with the panels' own lengths: packed A panels hold $ka k-rows, B panels $kb
  ;; (attention skips the causally masked part of its products this way: the terms left out are zeros).
  (func $gemm_k
    (param $pa i32) (param $pb i32) (param $pc i32) (param $K i32) (param $Np i32)
    (param $i0 i32) (param $i1 i32) (param $j0 i32) (param $j1 i32) (param $lda i32) (param $M i32) (param $acc i32)
    (param $ka i32) (param $kb i32) (param $ks i32)
    (call $tiles (local.get $pa) (local.get $pb) (local.get $pc) (local.get $K) (local.get $Np)
      (local.get $i0) (local.get $i1) (local.get $j0) (local.get $j1) (local.get $M) (local.get $acc) (local.get $ks)
      (i32.ne (local.get $lda) (i32.const 0))
      (select (local.get $lda) (i32.const 16) (local.get $lda)) (i32.shl (local.get $ka) (i32.const 4))
      (i32.const 32) (i32.shl (local.get $kb) (i32.const 5)) (i32.const 0))
  )

  ;; The tile loops every product shares: C's 4×8 tiles of panels [i0,i1) × [j0,j1), over k in [$ks, $K) in blocks
  ;; of 256, rows in blocks of 16 panels (a B sub-panel of 8 KiB stays in L1, an A block of 64 KiB in L2). The first
  ;; block overwrites C unless $acc. How the operands are read:
  ;;   A, $arows = 0: in panels of 4 floats a step: panel i at $pa + i·$apanel, step k $astep bytes on (16 for a
  ;;      packed A; the row stride for an Aᵀ read in place, whose row k holds the 4 floats at 16·i);
  ;;   A, $arows = 1: row-major in place, row stride $astep bytes (rows past M repeat row M−1: C's padding rows);
  ;;   B: panel j at $pb + j·$bpanel, step k $bstep bytes on, 8 floats a step, or ($bkind 1, with $arows) 8 bf16 in
  ;;      16 bytes widened by two shuffles (a bf16 B read in place, row k holding panel j at 16·j).
  ;; Each output element takes its k terms in order, one multiply-add each, whatever the layout: so the packed and
  ;; in-place ways give the same bits.
  (func $tiles
    (param $pa i32) (param $pb i32) (param $pc i32) (param $K i32) (param $Np i32)
    (param $i0 i32) (param $i1 i32) (param $j0 i32) (param $j1 i32) (param $M i32) (param $acc i32) (param $ks i32)
    (param $arows i32) (param $astep i32) (param $apanel i32) (param $bstep i32) (param $bpanel i32) (param $bkind i32)
    (local $r1 i32) (local $r2 i32) (local $r3 i32) (local $row i32)
    (local $k0 i32) (local $kl i32) (local $ib i32) (local $ie i32) (local $i i32) (local $j i32)
    (local $ap i32) (local $bp i32) (local $cp i32) (local $kend i32) (local $rs i32)
    (local $a v128) (local $v v128) (local $z v128) (local $b0 v128) (local $b1 v128)
    (local $c00 v128) (local $c01 v128) (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128) (local $c30 v128) (local $c31 v128)
    (local.set $rs (i32.shl (local.get $Np) (i32.const 2)))  ;; C row stride in bytes
    (local.set $k0 (local.get $ks))
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
            (if (i32.and (i32.eq (local.get $k0) (local.get $ks)) (i32.eqz (local.get $acc)))
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
            (local.set $bp (i32.add (local.get $pb) (i32.add (i32.mul (local.get $j) (local.get $bpanel)) (i32.mul (local.get $k0) (local.get $bstep)))))
            (local.set $kend (i32.add (local.get $bp) (i32.mul (local.get $kl) (local.get $bstep))))
            (if (i32.eqz (local.get $arows))
              (then
            (local.set $ap (i32.add (local.get $pa) (i32.add (i32.mul (local.get $i) (local.get $apanel)) (i32.mul (local.get $k0) (local.get $astep)))))
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
              (local.set $ap (i32.add (local.get $ap) (local.get $astep)))
              (local.set $bp (i32.add (local.get $bp) (local.get $bstep)))
              (br_if $kk (i32.lt_u (local.get $bp) (local.get $kend))))
              )
              (else
            ;; row pointers of rows 4i..4i+3 at column k0; rows past M repeat the last row (their C rows are padding)
            (local.set $row (i32.shl (local.get $i) (i32.const 2)))
            (local.set $ap (i32.add (local.get $pa) (i32.add (i32.mul (local.get $row) (local.get $astep)) (i32.shl (local.get $k0) (i32.const 2)))))
            (local.set $r1 (local.get $ap)) (local.set $r2 (local.get $ap)) (local.set $r3 (local.get $ap))
            (if (i32.lt_u (i32.add (local.get $row) (i32.const 1)) (local.get $M)) (then (local.set $r1 (i32.add (local.get $ap) (local.get $astep)))))
            (if (i32.lt_u (i32.add (local.get $row) (i32.const 2)) (local.get $M)) (then (local.set $r2 (i32.add (local.get $ap) (i32.shl (local.get $astep) (i32.const 1))))))
            (if (i32.lt_u (i32.add (local.get $row) (i32.const 3)) (local.get $M)) (then (local.set $r3 (i32.add (local.get $ap) (i32.mul (local.get $astep) (i32.const 3))))))
            (if (i32.eqz (local.get $bkind))
              (then
            (loop $kk
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
              (local.set $bp (i32.add (local.get $bp) (local.get $bstep)))
              (br_if $kk (i32.lt_u (local.get $bp) (local.get $kend))))
              )
              (else
            (loop $kk
              (local.set $v (v128.load (local.get $bp)))
              (local.set $b0 (i8x16.shuffle 16 17 0 1 18 19 2 3 20 21 4 5 22 23 6 7 (local.get $v) (local.get $z)))
              (local.set $b1 (i8x16.shuffle 24 25 8 9 26 27 10 11 28 29 12 13 30 31 14 15 (local.get $v) (local.get $z)))
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
              (local.set $bp (i32.add (local.get $bp) (local.get $bstep)))
              (br_if $kk (i32.lt_u (local.get $bp) (local.get $kend))))
              ))))
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

  ;; C (+)= Aᵀ·B with both operands read in place, none packed (a LoRA weight gradient: K is the tokens, the rows of
  ;; both): At (K × M) and B (K × N) row-major, row strides $lda and $ldb bytes. A last panel past M or N reads up to
  ;; 28 bytes past a row's end (past the last row: the arena's slack); those land only in C's padding. Threads take
  ;; chunks of $chunk column panels from the counter at $ctr.
  (func (export "gemm_tn_steal")
    (param $pa i32) (param $lda i32) (param $pb i32) (param $ldb i32) (param $pc i32) (param $K i32) (param $Np i32)
    (param $mP i32) (param $nP i32) (param $acc i32) (param $ctr i32) (param $chunk i32)
    (local $c i32) (local $lo i32) (local $hi i32)
    (block $done (loop $next
      (local.set $c (i32.atomic.rmw.add (local.get $ctr) (i32.const 1)))
      (local.set $lo (i32.mul (local.get $c) (local.get $chunk)))
      (br_if $done (i32.ge_u (local.get $lo) (local.get $nP)))
      (local.set $hi (i32.add (local.get $lo) (local.get $chunk)))
      (if (i32.gt_u (local.get $hi) (local.get $nP)) (then (local.set $hi (local.get $nP))))
      (call $tiles (local.get $pa) (local.get $pb) (local.get $pc) (local.get $K) (local.get $Np)
        (i32.const 0) (local.get $mP) (local.get $lo) (local.get $hi) (i32.const 0) (local.get $acc) (i32.const 0)
        (i32.const 0) (local.get $lda) (i32.const 16) (local.get $ldb) (i32.const 32) (i32.const 0))
      (br $next)))
  )

  ;; C (+)= A·B with A (M × K, row stride $lda bytes) and a bf16 B (K × N, row stride $ldb bytes, N a multiple of 8)
  ;; both read in place: a bf16 weight in a backward product (dy·W), whose pack (read 2 bytes, write 4) would cost
  ;; about as much as the product at M = 128. Threads take chunks of $chunk panels (of rows when $byRows, else of
  ;; columns) from the counter at $ctr.
  (func (export "gemm_bh_steal")
    (param $pa i32) (param $lda i32) (param $pb i32) (param $ldb i32) (param $pc i32) (param $K i32) (param $Np i32)
    (param $mP i32) (param $nP i32) (param $M i32) (param $acc i32) (param $ctr i32) (param $chunk i32) (param $byRows i32)
    (local $c i32) (local $lo i32) (local $hi i32) (local $total i32) (local $i0 i32) (local $i1 i32) (local $j0 i32) (local $j1 i32)
    (local.set $total (select (local.get $mP) (local.get $nP) (local.get $byRows)))
    (block $done (loop $next
      (local.set $c (i32.atomic.rmw.add (local.get $ctr) (i32.const 1)))
      (local.set $lo (i32.mul (local.get $c) (local.get $chunk)))
      (br_if $done (i32.ge_u (local.get $lo) (local.get $total)))
      (local.set $hi (i32.add (local.get $lo) (local.get $chunk)))
      (if (i32.gt_u (local.get $hi) (local.get $total)) (then (local.set $hi (local.get $total))))
      (local.set $i0 (select (local.get $lo) (i32.const 0) (local.get $byRows)))
      (local.set $i1 (select (local.get $hi) (local.get $mP) (local.get $byRows)))
      (local.set $j0 (select (i32.const 0) (local.get $lo) (local.get $byRows)))
      (local.set $j1 (select (local.get $nP) (local.get $hi) (local.get $byRows)))
      (call $tiles (local.get $pa) (local.get $pb) (local.get $pc) (local.get $K) (local.get $Np)
        (local.get $i0) (local.get $i1) (local.get $j0) (local.get $j1) (local.get $M) (local.get $acc) (i32.const 0)
        (i32.const 1) (local.get $lda) (i32.const 0) (local.get $ldb) (i32.const 16) (i32.const 1))
      (br $next)))
  )

