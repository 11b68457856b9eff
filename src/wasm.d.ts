/** the CPU kernels: every src/engine/ops/**\/*.wat fragment assembled into one module (scripts/wat.mjs) */
declare module 'lorakit:kernels' {
  const bytes: Uint8Array<ArrayBuffer>;
  export default bytes;
}
/** the same kernels with their f32x4 mul-adds fused into relaxed SIMD's f32x4.relaxed_madd (scripts/wat-fuse.mjs) */
declare module 'lorakit:kernels-fma' {
  const bytes: Uint8Array<ArrayBuffer>;
  export default bytes;
}
