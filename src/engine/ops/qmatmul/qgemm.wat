;; The fused 4-bit (NF4/FP4) products of the CPU backend, over the same memory as ../matmul/gemm.wat, whose $gemm
;; micro-kernel they call.
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
