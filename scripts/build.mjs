// Builds everything: assembles the WebAssembly kernels, then bundles the CLI, demo, bench, sidecar, extension
// and the panel's webview.
import { build } from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';
import wabtInit from 'wabt';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const wabt = await wabtInit();
for (const wat of ['src/engine/backend/cpu/gemm.wat', 'src/engine/backend/cpu/elementwise.wat']) {
  const src = fs.readFileSync(path.join(root, wat), 'utf8');
  let mod;
  try {
    mod = wabt.parseWat(wat, src, { simd: true, threads: true });
  } catch (e) {
    console.error(String(e.message ?? e));
    process.exit(1);
  }
  const { buffer } = mod.toBinary({});
  const out = path.join(root, 'build', path.basename(wat).replace('.wat', '.wasm'));
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, buffer);
  mod.destroy();
}

export const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: 'linked',
  loader: { '.wasm': 'binary' },
  logLevel: 'warning',
  external: ['webgpu'],
};
if (process.argv[1] && process.argv[1].endsWith('build.mjs')) {
  await build({
    ...common,
    entryPoints: { cli: 'src/cli/main.ts', demo: 'src/demo.ts', bench: 'src/bench.ts', index: 'src/engine/index.ts', sidecar: 'src/sidecar/main.ts', 'webgpu-worker': 'src/engine/backend/webgpu/worker.ts' },
    outdir: path.join(root, 'dist'),
    absWorkingDir: root,
  });
  // the extension: vscode is provided by the editor
  await build({ ...common, entryPoints: { extension: 'src/extension/activate.ts' }, outdir: path.join(root, 'dist'), absWorkingDir: root, external: ['vscode', 'webgpu'] });
  // the panel: a browser bundle, and its styles (uPlot's and ours)
  await build({
    bundle: true, platform: 'browser', format: 'iife', target: 'es2022', sourcemap: 'linked', logLevel: 'warning', minify: true,
    entryPoints: { panel: 'webview/panel.ts' }, outdir: path.join(root, 'dist', 'webview'), absWorkingDir: root,
  });
  fs.writeFileSync(path.join(root, 'dist', 'webview', 'panel.css'),
    fs.readFileSync(path.join(root, 'node_modules', 'uplot', 'dist', 'uPlot.min.css'), 'utf8') + '\n' + fs.readFileSync(path.join(root, 'webview', 'panel.css'), 'utf8'));
}
