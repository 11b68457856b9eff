// Builds everything: the CLI, demo, bench, sidecar, the two worker bundles (WebAssembly threads, the GPU), the
// extension and the panel's webview. The CPU kernels' .wat fragments are assembled while bundling (wat.mjs).
import { build } from 'esbuild';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { kernelsPlugin } from './wat.mjs';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

export const common = {
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
  external: ['webgpu'],
  plugins: [kernelsPlugin],
};

/** the worker threads' own bundles, found beside the bundle that starts them */
export const WORKERS = {
  'wasm-worker': 'src/engine/ops/wasm-worker.ts',
  'webgpu-worker': 'src/engine/backend/webgpu/worker.ts',
  'tokenize-worker': 'src/engine/data/tokenize-worker.ts',
};

if (process.argv[1] && process.argv[1].endsWith('build.mjs')) {
  try {
    await build({
      ...common,
      entryPoints: {
        cli: 'src/cli/main.ts',
        demo: 'src/demo.ts',
        bench: 'src/bench.ts',
        'gpu-check': 'src/gpu-check.ts',
        'bench-tokenize': 'src/bench/tokenize.ts',
        index: 'src/engine/index.ts',
        sidecar: 'src/sidecar/main.ts',
        ...WORKERS,
      },
      outdir: path.join(root, 'dist'),
      absWorkingDir: root,
    });
    // the extension: vscode is provided by the editor
    await build({
      ...common,
      entryPoints: { extension: 'src/extension/activate.ts' },
      outdir: path.join(root, 'dist'),
      absWorkingDir: root,
      external: ['vscode', 'webgpu'],
    });
    // the webviews (the training panel, Compare): browser bundles, and their styles (the panel's with uPlot's)
    await build({
      bundle: true,
      platform: 'browser',
      format: 'iife',
      target: 'es2022',
      sourcemap: 'linked',
      logLevel: 'warning',
      minify: true,
      entryPoints: { panel: 'webview/panel.ts', compare: 'webview/compare.ts' },
      outdir: path.join(root, 'dist', 'webview'),
      absWorkingDir: root,
    });
  } catch {
    process.exit(1); // esbuild has printed the errors
  }
  fs.writeFileSync(
    path.join(root, 'dist', 'webview', 'panel.css'),
    fs.readFileSync(path.join(root, 'node_modules', 'uplot', 'dist', 'uPlot.min.css'), 'utf8') +
      '\n' +
      fs.readFileSync(path.join(root, 'webview', 'panel.css'), 'utf8'),
  );
  fs.copyFileSync(path.join(root, 'webview', 'compare.css'), path.join(root, 'dist', 'webview', 'compare.css'));
}
