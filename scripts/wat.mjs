// The CPU kernels in WebAssembly: every op folder keeps its own .wat fragment (functions only), and this assembles
// them into one module over one imported shared memory, so that worker threads run the same code on the same
// memory. An esbuild plugin hands the module to the engine as the virtual import 'lorakit:kernels'.
import * as fs from 'node:fs';
import * as path from 'node:path';
import wabtInit from 'wabt';

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

/** the assembled module's bytes; a syntax error names the fragment and its line */
export async function assembleKernels() {
  const wabt = await wabtInit();
  const files = watFragments();
  const head = '(module\n  (import "env" "memory" (memory 1 65536 shared))\n';
  let src = head;
  const starts = []; // [first line in src, file]
  let line = head.split('\n').length;
  for (const f of files) {
    const text = fs.readFileSync(f, 'utf8');
    starts.push([line, f]);
    src += text.endsWith('\n') ? text : text + '\n';
    line += text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
  }
  src += ')\n';
  let mod;
  try {
    mod = wabt.parseWat('kernels.wat', src, { simd: true, threads: true });
  } catch (e) {
    const msg = String(e.message ?? e).replace(/kernels\.wat:(\d+):(\d+)/g, (_, l, c) => {
      const [first, f] = starts.filter(([s]) => s <= Number(l)).pop() ?? [1, 'kernels.wat'];
      return `${path.relative(root, f)}:${Number(l) - first + 1}:${c}`;
    });
    throw new Error(msg, { cause: e });
  }
  const { buffer } = mod.toBinary({});
  mod.destroy();
  return { bytes: buffer, files };
}

/** esbuild: `import kernels from 'lorakit:kernels'` is the assembled module, as a Uint8Array */
export const kernelsPlugin = {
  name: 'lorakit-kernels',
  setup(build) {
    build.onResolve({ filter: /^lorakit:kernels$/ }, () => ({ path: 'kernels', namespace: 'lorakit-kernels' }));
    build.onLoad({ filter: /.*/, namespace: 'lorakit-kernels' }, async () => {
      try {
        const { bytes, files } = await assembleKernels();
        return { contents: bytes, loader: 'binary', watchFiles: files };
      } catch (e) {
        return { errors: [{ text: e.message }] };
      }
    });
  },
};
