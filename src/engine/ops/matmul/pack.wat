;; Packing the gemm's operands into the panels gemm.wat's kernel reads (layouts in gemm.wat), and the half-float
;; loads they share. B is packed from its source as it lies, f32, bf16 or f16 ($kind 0, 1, 2), widened on the way:
;; a bf16 weight is never copied out whole in f32. pack_steal spreads the panels over the threads.
;; (a fragment: scripts/wat.mjs assembles every ops/**/*.wat into one module over one shared memory)

  ;; four f16 values (as i32x4 of their bits) as f32x4: shift the exponent and mantissa into place and rescale by
  ;; 2^112 (exact for normal and subnormal values), then inf/NaN get the all-ones exponent and the sign goes back on
  (func $f16v (param $h v128) (result v128)
    (local $em v128) (local $v v128) (local $f v128)
    (local.set $em (v128.and (local.get $h) (v128.const i32x4 0x7fff 0x7fff 0x7fff 0x7fff)))
    (local.set $v (i32x4.shl (local.get $em) (i32.const 13)))
    (local.set $f (f32x4.mul (local.get $v) (v128.const i32x4 0x77800000 0x77800000 0x77800000 0x77800000)))
    (local.set $f (v128.bitselect
      (v128.or (local.get $v) (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000))
      (local.get $f)
      (i32x4.ge_u (local.get $em) (v128.const i32x4 0x7c00 0x7c00 0x7c00 0x7c00))))
    (v128.or (local.get $f) (i32x4.shl (v128.and (local.get $h) (v128.const i32x4 0x8000 0x8000 0x8000 0x8000)) (i32.const 16)))
  )

  ;; four f16 values (bits at $p) as f32x4
  (func $f16x4 (param $p i32) (result v128)
    (call $f16v (v128.load16x4_u (local.get $p)))
  )

  ;; one element at $p as f32 (reads only its own bytes)
  (func $ld1 (param $p i32) (param $kind i32) (result f32)
    (if (result f32) (i32.eqz (local.get $kind))
      (then (f32.load (local.get $p)))
      (else (if (result f32) (i32.eq (local.get $kind) (i32.const 1))
        (then (f32.reinterpret_i32 (i32.shl (i32.load16_u (local.get $p)) (i32.const 16))))
        (else (f32x4.extract_lane 0 (call $f16v (i32x4.splat (i32.load16_u (local.get $p)))))))))
  )

  ;; Rows r0..r7's next four elements (one f32x4 each) stored as four k-rows of the 8 columns at $d (two 4×4 transposes)
  (func $tr8 (param $d i32) (param $r0 v128) (param $r1 v128) (param $r2 v128) (param $r3 v128)
    (param $r4 v128) (param $r5 v128) (param $r6 v128) (param $r7 v128)
    (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $r0) (local.get $r1)))
    (local.set $t1 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $r0) (local.get $r1)))
    (local.set $t2 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $r2) (local.get $r3)))
    (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $r2) (local.get $r3)))
    (v128.store offset=0 (local.get $d) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t2)))
    (v128.store offset=32 (local.get $d) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t2)))
    (v128.store offset=64 (local.get $d) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t1) (local.get $t3)))
    (v128.store offset=96 (local.get $d) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t1) (local.get $t3)))
    (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $r4) (local.get $r5)))
    (local.set $t1 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $r4) (local.get $r5)))
    (local.set $t2 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $r6) (local.get $r7)))
    (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $r6) (local.get $r7)))
    (v128.store offset=16 (local.get $d) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t2)))
    (v128.store offset=48 (local.get $d) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t2)))
    (v128.store offset=80 (local.get $d) (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t1) (local.get $t3)))
    (v128.store offset=112 (local.get $d) (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t1) (local.get $t3)))
  )

  ;; Panel $p of op(B) = Wᵀ for W (N rows × K, row stride $lds bytes, at $src, elements of $kind): W's rows 8p..8p+7
  ;; become the panel's 8 columns, k-major, at $dst + p·K·32. Rows past N give zero columns.
  (func $pack_bt_panel (param $src i32) (param $K i32) (param $N i32) (param $dst i32) (param $lds i32) (param $p i32) (param $kind i32)
    (local $k i32) (local $c i32) (local $row i32) (local $es i32) (local $step i32)
    (local $s0 i32) (local $s1 i32) (local $s2 i32) (local $s3 i32) (local $s4 i32) (local $s5 i32) (local $s6 i32) (local $s7 i32)
    (local $d i32) (local $k4 i32)
    (local.set $es (select (i32.const 2) (i32.const 1) (i32.eqz (local.get $kind))))  ;; log2 of the element's bytes
    (local.set $step (i32.shl (i32.const 4) (local.get $es)))
    (local.set $k4 (i32.and (local.get $K) (i32.const -4)))
    (local.set $d (i32.add (local.get $dst) (i32.mul (local.get $p) (i32.shl (local.get $K) (i32.const 5)))))
    (if (i32.le_u (i32.shl (i32.add (local.get $p) (i32.const 1)) (i32.const 3)) (local.get $N))
      (then
        (local.set $s0 (i32.add (local.get $src) (i32.mul (i32.shl (local.get $p) (i32.const 3)) (local.get $lds))))
        (local.set $s1 (i32.add (local.get $s0) (local.get $lds)))
        (local.set $s2 (i32.add (local.get $s1) (local.get $lds)))
        (local.set $s3 (i32.add (local.get $s2) (local.get $lds)))
        (local.set $s4 (i32.add (local.get $s3) (local.get $lds)))
        (local.set $s5 (i32.add (local.get $s4) (local.get $lds)))
        (local.set $s6 (i32.add (local.get $s5) (local.get $lds)))
        (local.set $s7 (i32.add (local.get $s6) (local.get $lds)))
        (local.set $k (i32.const 0))
        ;; four k at a time: the 8 rows' next 4 elements, loaded as their kind needs (f32 and bf16 inline), transposed
        (block $kdone (loop $kloop
          (br_if $kdone (i32.ge_u (local.get $k) (local.get $k4)))
          (if (i32.eqz (local.get $kind))
            (then (call $tr8 (local.get $d)
              (v128.load (local.get $s0)) (v128.load (local.get $s1)) (v128.load (local.get $s2)) (v128.load (local.get $s3))
              (v128.load (local.get $s4)) (v128.load (local.get $s5)) (v128.load (local.get $s6)) (v128.load (local.get $s7))))
            (else (if (i32.eq (local.get $kind) (i32.const 1))
              (then (call $tr8 (local.get $d)
                (i32x4.shl (v128.load16x4_u (local.get $s0)) (i32.const 16)) (i32x4.shl (v128.load16x4_u (local.get $s1)) (i32.const 16))
                (i32x4.shl (v128.load16x4_u (local.get $s2)) (i32.const 16)) (i32x4.shl (v128.load16x4_u (local.get $s3)) (i32.const 16))
                (i32x4.shl (v128.load16x4_u (local.get $s4)) (i32.const 16)) (i32x4.shl (v128.load16x4_u (local.get $s5)) (i32.const 16))
                (i32x4.shl (v128.load16x4_u (local.get $s6)) (i32.const 16)) (i32x4.shl (v128.load16x4_u (local.get $s7)) (i32.const 16))))
              (else (call $tr8 (local.get $d)
                (call $f16x4 (local.get $s0)) (call $f16x4 (local.get $s1)) (call $f16x4 (local.get $s2)) (call $f16x4 (local.get $s3))
                (call $f16x4 (local.get $s4)) (call $f16x4 (local.get $s5)) (call $f16x4 (local.get $s6)) (call $f16x4 (local.get $s7)))))))
          (local.set $s0 (i32.add (local.get $s0) (local.get $step))) (local.set $s1 (i32.add (local.get $s1) (local.get $step)))
          (local.set $s2 (i32.add (local.get $s2) (local.get $step))) (local.set $s3 (i32.add (local.get $s3) (local.get $step)))
          (local.set $s4 (i32.add (local.get $s4) (local.get $step))) (local.set $s5 (i32.add (local.get $s5) (local.get $step)))
          (local.set $s6 (i32.add (local.get $s6) (local.get $step))) (local.set $s7 (i32.add (local.get $s7) (local.get $step)))
          (local.set $d (i32.add (local.get $d) (i32.const 128)))
          (local.set $k (i32.add (local.get $k) (i32.const 4)))
          (br $kloop)))
        ;; the k tail, one at a time
        (local.set $step (i32.shl (i32.const 1) (local.get $es)))
        (block $tdone (loop $tloop
          (br_if $tdone (i32.ge_u (local.get $k) (local.get $K)))
          (f32.store offset=0 (local.get $d) (call $ld1 (local.get $s0) (local.get $kind)))
          (f32.store offset=4 (local.get $d) (call $ld1 (local.get $s1) (local.get $kind)))
          (f32.store offset=8 (local.get $d) (call $ld1 (local.get $s2) (local.get $kind)))
          (f32.store offset=12 (local.get $d) (call $ld1 (local.get $s3) (local.get $kind)))
          (f32.store offset=16 (local.get $d) (call $ld1 (local.get $s4) (local.get $kind)))
          (f32.store offset=20 (local.get $d) (call $ld1 (local.get $s5) (local.get $kind)))
          (f32.store offset=24 (local.get $d) (call $ld1 (local.get $s6) (local.get $kind)))
          (f32.store offset=28 (local.get $d) (call $ld1 (local.get $s7) (local.get $kind)))
          (local.set $s0 (i32.add (local.get $s0) (local.get $step))) (local.set $s1 (i32.add (local.get $s1) (local.get $step)))
          (local.set $s2 (i32.add (local.get $s2) (local.get $step))) (local.set $s3 (i32.add (local.get $s3) (local.get $step)))
          (local.set $s4 (i32.add (local.get $s4) (local.get $step))) (local.set $s5 (i32.add (local.get $s5) (local.get $step)))
          (local.set $s6 (i32.add (local.get $s6) (local.get $step))) (local.set $s7 (i32.add (local.get $s7) (local.get $step)))
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
                (then (call $ld1 (i32.add (local.get $src) (i32.add (i32.mul (local.get $row) (local.get $lds)) (i32.shl (local.get $k) (local.get $es))))
                  (local.get $kind)))
                (else (f32.const 0))))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $cl)))
          (local.set $k (i32.add (local.get $k) (i32.const 1)))
          (br $kl2)))))
  )

  ;; Panel $p of B (K rows × N, row stride $lds bytes, at $src, elements of $kind): columns 8p..8p+7, k-major, at
  ;; $dst + p·K·32; columns past N are zero.
  (func $pack_b_panel (param $src i32) (param $K i32) (param $N i32) (param $lds i32) (param $dst i32) (param $p i32) (param $kind i32)
    (local $k i32) (local $c i32) (local $s i32) (local $d i32) (local $es i32)
    (local.set $es (select (i32.const 2) (i32.const 1) (i32.eqz (local.get $kind))))
    (local.set $d (i32.add (local.get $dst) (i32.mul (local.get $p) (i32.shl (local.get $K) (i32.const 5)))))
    (local.set $s (i32.add (local.get $src) (i32.shl (i32.shl (local.get $p) (i32.const 3)) (local.get $es))))
    (local.set $k (i32.const 0))
    (if (i32.le_u (i32.shl (i32.add (local.get $p) (i32.const 1)) (i32.const 3)) (local.get $N))
      (then
        (block $kd (loop $kl
          (br_if $kd (i32.ge_u (local.get $k) (local.get $K)))
          (if (i32.eqz (local.get $kind))
            (then
              (v128.store (local.get $d) (v128.load (local.get $s)))
              (v128.store offset=16 (local.get $d) (v128.load offset=16 (local.get $s))))
            (else (if (i32.eq (local.get $kind) (i32.const 1))
              (then
                (v128.store (local.get $d) (i32x4.shl (v128.load16x4_u (local.get $s)) (i32.const 16)))
                (v128.store offset=16 (local.get $d) (i32x4.shl (v128.load16x4_u offset=8 (local.get $s)) (i32.const 16))))
              (else
                (v128.store (local.get $d) (call $f16x4 (local.get $s)))
                (v128.store offset=16 (local.get $d) (call $f16x4 (i32.add (local.get $s) (i32.const 8))))))))
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
                (then (call $ld1 (i32.add (local.get $s) (i32.shl (local.get $c) (local.get $es))) (local.get $kind)))
                (else (f32.const 0))))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))
            (br $cl)))
          (local.set $s (i32.add (local.get $s) (local.get $lds)))
          (local.set $d (i32.add (local.get $d) (i32.const 32)))
          (local.set $k (i32.add (local.get $k) (i32.const 1)))
          (br $kl2)))))
  )

  ;; Pack op(B) = Wᵀ for an f32 W (N rows × K, row stride $lds bytes) into 8-column panels at $dst, on this thread.
  (func (export "pack_bt") (param $src i32) (param $K i32) (param $N i32) (param $dst i32) (param $lds i32)
    (local $p i32) (local $panels i32)
    (local.set $panels (i32.shr_u (i32.add (local.get $N) (i32.const 7)) (i32.const 3)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $p) (local.get $panels)))
      (call $pack_bt_panel (local.get $src) (local.get $K) (local.get $N) (local.get $dst) (local.get $lds) (local.get $p) (i32.const 0))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $next)))
  )

  ;; Pack an f32 B (K rows × N, row stride $lds bytes) into 8-column panels at $dst, on this thread.
  (func $pack_b (export "pack_b") (param $src i32) (param $K i32) (param $N i32) (param $lds i32) (param $dst i32)
    (local $p i32) (local $panels i32)
    (local.set $panels (i32.shr_u (i32.add (local.get $N) (i32.const 7)) (i32.const 3)))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $p) (local.get $panels)))
      (call $pack_b_panel (local.get $src) (local.get $K) (local.get $N) (local.get $lds) (local.get $dst) (local.get $p) (i32.const 0))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $next)))
  )

  ;; Work-stealing pack of op(B) from a source of $kind, transposed ($trans: B = Wᵀ, W is N × K) or not (B is K × N):
  ;; threads take chunks of $chunk panels from the counter at $ctr.
  (func (export "pack_steal")
    (param $src i32) (param $kind i32) (param $trans i32) (param $K i32) (param $N i32) (param $lds i32) (param $dst i32)
    (param $ctr i32) (param $chunk i32)
    (local $c i32) (local $p i32) (local $hi i32) (local $panels i32)
    (local.set $panels (i32.shr_u (i32.add (local.get $N) (i32.const 7)) (i32.const 3)))
    (block $done (loop $next
      (local.set $c (i32.atomic.rmw.add (local.get $ctr) (i32.const 1)))
      (local.set $p (i32.mul (local.get $c) (local.get $chunk)))
      (br_if $done (i32.ge_u (local.get $p) (local.get $panels)))
      (local.set $hi (i32.add (local.get $p) (local.get $chunk)))
      (if (i32.gt_u (local.get $hi) (local.get $panels)) (then (local.set $hi (local.get $panels))))
      (block $pd (loop $pl
        (br_if $pd (i32.ge_u (local.get $p) (local.get $hi)))
        (if (local.get $trans)
          (then (call $pack_bt_panel (local.get $src) (local.get $K) (local.get $N) (local.get $dst) (local.get $lds) (local.get $p) (local.get $kind)))
          (else (call $pack_b_panel (local.get $src) (local.get $K) (local.get $N) (local.get $lds) (local.get $dst) (local.get $p) (local.get $kind))))
        (local.set $p (i32.add (local.get $p) (i32.const 1)))
        (br $pl)))
      (br $next)))
  )

  ;; Pack op(A) = Xᵀ for X (K rows × M, row stride $lds bytes, at $src) into 4-row panels, k-major:
  ;; panel i, row k = X[k][4i..4i+3], one 16-byte copy; rows of op(A) past M are zero.
  (func $pack_at (export "pack_at") (param $src i32) (param $lds i32) (param $M i32) (param $K i32) (param $dst i32)
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
