#!/bin/sh
# gpu-check.sh — the WebGPU backend on this machine's adapter, as one table: the parity suite (test/ops, both
# kernel paths: shader-f16 + subgroups + tiles from the limits, and plain), the bench's WebGPU rows on both paths,
# and the same LoRA step in PyTorch (+ PEFT, bf16, CUDA where installed: bench/torch_step.py).
#
#   here (a checkout with node_modules):  sh scripts/gpu-check.sh            builds, then runs on what Dawn finds
#                                                                          (Mesa's lavapipe where there is no GPU)
#   for the lent GPU machine (no Node):   sh scripts/gpu-check.sh --prepare  builds dist/ (+ dist/gpu-parity/,
#                                         the test bundles) and runs ../shared/gpu/pack.sh (.gpu/: node, the
#                                         Vulkan loader, Dawn); then `run` with carry [".gpu", "dist"] and the
#                                         command `sh scripts/gpu-check.sh`. Budget there: under 8 minutes.
#
# Results: stdout, and $OUT (the device tool's folder; test-output/gpu-check/ otherwise): parity.tap, gpu-check.md,
# and adapter.txt when no adapter is found. GPU_CHECK_CARRIED=1 uses .gpu/'s node even where there is one (to try
# the recipe here).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/test-output/gpu-check}
mkdir -p "$OUT"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

build() {
  node scripts/build.mjs && LORAKIT_TEST_OUT=dist/gpu-parity node scripts/test.mjs --bundle-only ops/
}

if [ "${1:-}" = "--prepare" ]; then
  build || exit 1
  if [ -f ../shared/gpu/pack.sh ]; then sh ../shared/gpu/pack.sh || echo "pack.sh failed: .gpu/ is not ready"; fi
  du -sh dist .gpu 2>/dev/null
  exit 0
fi

# 1. Node: this machine's (and a fresh build), or the one pack.sh carried, with the Vulkan loader and Dawn's binding
if [ -z "${GPU_CHECK_CARRIED:-}" ] && command -v node >/dev/null 2>&1; then
  NODE=node
  if [ -d node_modules/esbuild ]; then build >/dev/null || exit 1; fi
elif [ -f .gpu/node.xz ]; then
  for f in .gpu/debs/*.deb; do [ -f "$f" ] && dpkg -x "$f" /; done
  ldconfig
  python3 -c "import lzma; [open(o,'wb').write(lzma.open(i).read()) for i,o in [('.gpu/node.xz','/tmp/node'),('.gpu/webgpu/dist/linux-x64/dawn.node.xz','.gpu/webgpu/dist/linux-x64/dawn.node')]]" || exit 1
  chmod +x /tmp/node
  NODE=/tmp/node
  export NODE_PATH="$PWD/.gpu" # require('webgpu') finds .gpu/webgpu
else
  echo "gpu-check: no node here and no .gpu/node.xz: run sh scripts/gpu-check.sh --prepare where Node is, and carry .gpu and dist"
  exit 2
fi
for f in dist/gpu-check.js dist/cli.js dist/webgpu-worker.js; do
  [ -f "$f" ] || { echo "gpu-check: $f is missing: run sh scripts/gpu-check.sh --prepare"; exit 2; }
done

# 2. The adapter: Dawn's default Vulkan driver search, then NVIDIA's ICD named (the device tool's README)
probe() { "$NODE" dist/cli.js info --devices --json 2>/dev/null; }
kind() { probe | "$NODE" -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).chosen?.type??"none")}catch{console.log("none")}})'; }
KIND=$(kind)
ICD=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ "$KIND" != gpu ] && [ -f "$ICD" ] && [ -z "${VK_DRIVER_FILES:-}" ]; then
  export VK_DRIVER_FILES="$ICD"
  KIND=$(kind)
fi
if [ "$KIND" = none ]; then
  {
    echo "no WebGPU adapter; VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}"
    probe
    "$NODE" -e '
      const { create, globals } = require("webgpu"); Object.assign(globalThis, globals);
      (async () => { for (const f of [[], ["backend=vulkan"]]) {
        const a = await create(f).requestAdapter();
        console.log(JSON.stringify(f), a ? a.info.description || a.info.device : "no adapter");
      } process.exit(0); })();' 2>&1
    ls -lR /usr/local/nvidia/share/vulkan 2>&1
    ldconfig -p | grep -i vulkan
  } >"$OUT/adapter.txt" 2>&1
  cat "$OUT/adapter.txt"
  exit 1
fi
echo "gpu-check: adapter kind $KIND${VK_DRIVER_FILES:+ (VK_DRIVER_FILES=$VK_DRIVER_FILES)}"

# 3. Parity on this adapter, then the bench rows and PyTorch (time-boxed on a GPU; lavapipe is slow and unhurried)
if [ "$KIND" = gpu ]; then T1=150 T2=330; else T1=1800 T2=1800; fi
START=$(date +%s)
timeout "$T1" "$NODE" --enable-source-maps --test --test-concurrency=1 dist/gpu-parity/ops/*.test.js >"$OUT/parity.tap" 2>&1
echo "gpu-check: parity exit $? after $(($(date +%s) - START)) s ($(grep -E '^# (pass|fail) ' "$OUT/parity.tap" | tr '\n' ' '))"
timeout "$T2" "$NODE" --enable-source-maps dist/gpu-check.js --parity "$OUT/parity.tap" --out "$OUT"
RC=$?
echo "gpu-check: done in $(($(date +%s) - START)) s (exit $RC)"
exit $RC
