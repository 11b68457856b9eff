/** the CPU kernels: every src/engine/ops/**\/*.wat fragment assembled into one module (scripts/wat.mjs) */
declare module 'lorakit:kernels' {
  const bytes: Uint8Array<ArrayBuffer>;
  export default bytes;
}
