// The CPU kernels in WebAssembly: every op folder keeps its own .wat fragment (functions only), and this assembles
// them into one module over one imported shared memory, so that worker threads run the same code on the same
// memory. An esbuild plugin hands the module to the engine as the virtual import 'lorakit:kernels', and its FMA
// variant (the same fragments with their f32x4 mul-adds fused into relaxed-SIMD multiply-adds, wat-fuse.mjs) as
// 'lorakit:kernels-fma'. `node scripts/wat.mjs` lists what each fragment's FMA variant fuses.
import * as fs from 'node:fs';
import * as path from 'node:path';
import wabtInit from 'wabt';
import { fuseMulAdds, hasLoopMulAdds } from './wat-fuse.mjs';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const OPS = path.join(root, 'src', 'engine', 'ops');

/** every .wat under src/engine/ops, in a fixed order */
export function watFragments() {
  const out = [];
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.wat')) out.push(p);
    }
  };
  walk(OPS);
  return out;
}

let wabtReady;

/**
 * The assembled module's bytes; a syntax error names the fragment and its line. With `fma`, each fragment's mul-adds
 * are fused first (`fused` counts them by fragment), and a fragment whose loops multiply and add but that fuses
 * nothing fails the build: its hot loop has taken a shape the walk does not know.
 */
export async function assembleKernels({ fma = false } = {}) {
  const wabt = await (wabtReady ??= wabtInit());
  const files = watFragments();
  const head = '(module\n  (import "env" "memory" (memory 1 65536 shared))\n';
  let src = head;
  const starts = []; // [first line in src, file]
  const fused = {};
  let line = head.split('\n').length;
  for (const f of files) {
    let text = fs.readFileSync(f, 'utf8');
    if (fma) {
      const r = fuseMulAdds(text);
      fused[path.relative(OPS, f)] = { madd: r.madd, nmadd: r.nmadd, kept: r.kept };
      if (r.madd + r.nmadd === 0 && hasLoopMulAdds(text))
        throw new Error(`${path.relative(root, f)}: its loops multiply and add f32x4, but the FMA variant fuses none of them`);
      text = r.text;
    }
    starts.push([line, f]);
    src += text.endsWith('\n') ? text : text + '\n';
    line += text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
  }
  src += ')\n';
  let mod;
  try {
    mod = wabt.parseWat(fma ? 'kernels-fma.wat' : 'kernels.wat', src, { simd: true, threads: true, relaxed_simd: fma });
  } catch (e) {
    const msg = String(e.message ?? e).replace(/kernels(?:-fma)?\.wat:(\d+):(\d+)/g, (_, l, c) => {
      const [first, f] = starts.filter(([s]) => s <= Number(l)).pop() ?? [1, 'kernels.wat'];
      return `${path.relative(root, f)}${fma ? ' (FMA variant)' : ''}:${Number(l) - first + 1}:${c}`;
    });
    throw new Error(msg, { cause: e });
  }
  const { buffer } = mod.toBinary({});
  mod.destroy();
  return { bytes: buffer, files, fused };
}

/**
 * esbuild: `import kernels from 'lorakit:kernels'` is the assembled module, as a Uint8Array; 'lorakit:kernels-fma'
 * is its FMA variant (valid only where WebAssembly has relaxed SIMD: the runtime checks)
 */
export const kernelsPlugin = {
  name: 'lorakit-kernels',
  setup(build) {
    build.onResolve({ filter: /^lorakit:kernels(-fma)?$/ }, (a) => ({
      path: a.path.slice('lorakit:'.length),
      namespace: 'lorakit-kernels',
    }));
    build.onLoad({ filter: /.*/, namespace: 'lorakit-kernels' }, async (a) => {
      try {
        const { bytes, files } = await assembleKernels({ fma: a.path === 'kernels-fma' });
        return { contents: bytes, loader: 'binary', watchFiles: [...files, path.join(root, 'scripts', 'wat-fuse.mjs')] };
      } catch (e) {
        return { errors: [{ text: e.message }] };
      }
    });
  },
};

// `node scripts/wat.mjs [--json]`: what the FMA variant fuses, by fragment
if (process.argv[1] && path.resolve(process.argv[1]) === path.join(root, 'scripts', 'wat.mjs')) {
  const { fused } = await assembleKernels({ fma: true });
  if (process.argv.includes('--json')) console.log(JSON.stringify(fused));
  else
    for (const [f, c] of Object.entries(fused))
      console.log(
        `${f.padEnd(34)} ${String(c.madd).padStart(3)} relaxed_madd  ${String(c.nmadd).padStart(3)} relaxed_nmadd${c.kept ? `  (${c.kept} left: operands may not move)` : ''}`,
      );
}
