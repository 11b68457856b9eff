;; Attention's training passes as one program of kernel calls per head (or per group of heads sharing a kv head):
;; threads take whole programs from a work-stealing counter, so the softmax, the packs and the copies of one head
;; run beside another head's products instead of between them on one thread. heads.ts writes the programs.
;;
;; Program table: $n entries of (address of its first op, number of ops), 8 bytes each. An op is 16 i32 (64 bytes):
;; an opcode and its arguments, f32 arguments as their bits.
;;   0 gemm_k            pa pb pc K Np i0 i1 j0 j1 lda M acc ka kb ks
;;   1 softmax_causal    p Tq Tk ld window s stats
;;   2 softmax_recompute p Tq Tk ld window s lse
;;   3 softmax_backward  dp ldd pp ldp Tq Tk s
;;   4 pack_at           src lds M K dst
;;   5 pack_b            src K N lds dst
;;   6 copy_rows         src lds dst ldd rows cols   (strides in bytes, cols in floats)
  (func (export "heads_steal") (param $tbl i32) (param $n i32) (param $ctr i32)
    (local $c i32) (local $op i32) (local $end i32)
    (block $done (loop $next
      (local.set $c (i32.atomic.rmw.add (local.get $ctr) (i32.const 1)))
      (br_if $done (i32.ge_u (local.get $c) (local.get $n)))
      (local.set $op (i32.load (i32.add (local.get $tbl) (i32.shl (local.get $c) (i32.const 3)))))
      (local.set $end (i32.add (local.get $op)
        (i32.shl (i32.load offset=4 (i32.add (local.get $tbl) (i32.shl (local.get $c) (i32.const 3)))) (i32.const 6))))
      (block $ops_done (loop $ops
        (br_if $ops_done (i32.ge_u (local.get $op) (local.get $end)))
        (call $head_op (local.get $op))
        (local.set $op (i32.add (local.get $op) (i32.const 64)))
        (br $ops)))
      (br $next)))
  )

  (func $head_op (param $o i32)
    (block $copy (block $packb (block $packat (block $sbwd (block $srec (block $scau (block $gemm
      (br_table $gemm $scau $srec $sbwd $packat $packb $copy $copy (i32.load (local.get $o))))
      (call $gemm_k
        (i32.load offset=4 (local.get $o)) (i32.load offset=8 (local.get $o)) (i32.load offset=12 (local.get $o))
        (i32.load offset=16 (local.get $o)) (i32.load offset=20 (local.get $o)) (i32.load offset=24 (local.get $o))
        (i32.load offset=28 (local.get $o)) (i32.load offset=32 (local.get $o)) (i32.load offset=36 (local.get $o))
        (i32.load offset=40 (local.get $o)) (i32.load offset=44 (local.get $o)) (i32.load offset=48 (local.get $o))
        (i32.load offset=52 (local.get $o)) (i32.load offset=56 (local.get $o)) (i32.load offset=60 (local.get $o)))
      (return))
      (call $softmax_causal
        (i32.load offset=4 (local.get $o)) (i32.load offset=8 (local.get $o)) (i32.load offset=12 (local.get $o))
        (i32.load offset=16 (local.get $o)) (i32.load offset=20 (local.get $o)) (f32.load offset=24 (local.get $o))
        (i32.load offset=28 (local.get $o)))
      (return))
      (call $softmax_recompute
        (i32.load offset=4 (local.get $o)) (i32.load offset=8 (local.get $o)) (i32.load offset=12 (local.get $o))
        (i32.load offset=16 (local.get $o)) (i32.load offset=20 (local.get $o)) (f32.load offset=24 (local.get $o))
        (i32.load offset=28 (local.get $o)))
      (return))
      (call $softmax_backward
        (i32.load offset=4 (local.get $o)) (i32.load offset=8 (local.get $o)) (i32.load offset=12 (local.get $o))
        (i32.load offset=16 (local.get $o)) (i32.load offset=20 (local.get $o)) (i32.load offset=24 (local.get $o))
        (f32.load offset=28 (local.get $o)))
      (return))
      (call $pack_at
        (i32.load offset=4 (local.get $o)) (i32.load offset=8 (local.get $o)) (i32.load offset=12 (local.get $o))
        (i32.load offset=16 (local.get $o)) (i32.load offset=20 (local.get $o)))
      (return))
      (call $pack_b
        (i32.load offset=4 (local.get $o)) (i32.load offset=8 (local.get $o)) (i32.load offset=12 (local.get $o))
        (i32.load offset=16 (local.get $o)) (i32.load offset=20 (local.get $o)))
      (return))
    (call $copy_rows
      (i32.load offset=4 (local.get $o)) (i32.load offset=8 (local.get $o)) (i32.load offset=12 (local.get $o))
      (i32.load offset=16 (local.get $o)) (i32.load offset=20 (local.get $o)) (i32.load offset=24 (local.get $o)))
  )

  ;; $rows rows of $cols floats from $src (row stride $lds bytes) to $dst (row stride $ldd bytes)
  (func $copy_rows (param $src i32) (param $lds i32) (param $dst i32) (param $ldd i32) (param $rows i32) (param $cols i32)
    (local $r i32) (local $j i32) (local $b i32)
    (local.set $b (i32.shl (local.get $cols) (i32.const 2)))
    (block $rd (loop $rl
      (br_if $rd (i32.ge_u (local.get $r) (local.get $rows)))
      (local.set $j (i32.const 0))
      (block $vd (loop $vl
        (br_if $vd (i32.gt_u (i32.add (local.get $j) (i32.const 16)) (local.get $b)))
        (v128.store (i32.add (local.get $dst) (local.get $j)) (v128.load (i32.add (local.get $src) (local.get $j))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $vl)))
      (block $sd (loop $sl
        (br_if $sd (i32.ge_u (local.get $j) (local.get $b)))
        (f32.store (i32.add (local.get $dst) (local.get $j)) (f32.load (i32.add (local.get $src) (local.get $j))))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $sl)))
      (local.set $src (i32.add (local.get $src) (local.get $lds)))
      (local.set $dst (i32.add (local.get $dst) (local.get $ldd)))
      (local.set $r (i32.add (local.get $r) (i32.const 1)))
      (br $rl)))
  )
