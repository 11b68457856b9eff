// Bundles every test/**/*.test.ts with esbuild (Node 20 cannot run TypeScript) and runs them with `node --test`,
// passing the files explicitly (Node 20's runner does not expand globs). Arguments pick the files whose path
// contains any of them (`node scripts/test.mjs ops/ trainer`). LORAKIT_TEST_OUT names the bundle folder, so two
// runs in one checkout do not clobber each other. `--bundle-only` stops after bundling (scripts/gpu-check.sh
// carries the bundles to a machine without esbuild).
import { build } from 'esbuild';
import { spawn } from 'node:child_process';
import { clearTimeout, setTimeout } from 'node:timers';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { common } from './build.mjs';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const bundleOnly = process.argv.includes('--bundle-only');
const only = process.argv.slice(2).filter((a) => a !== '--bundle-only');
const walk = (dir) =>
  fs
    .readdirSync(path.join(root, dir), { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
const files = walk('test')
  .filter((f) => f.endsWith('.test.ts'))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort();
if (!files.length) {
  console.error(`no test file matches ${only.join(' ')}`);
  process.exit(2);
}
const outdir = path.join(root, process.env.LORAKIT_TEST_OUT ?? 'dist-test');
fs.rmSync(outdir, { recursive: true, force: true });
await build({
  ...common,
  external: [...common.external, 'playwright-core'],
  entryPoints: files,
  outbase: 'test',
  outdir,
  absWorkingDir: root,
});
const outs = files.map((f) => path.join(outdir, path.relative('test', f).replace(/\.ts$/, '.js')));
if (bundleOnly) process.exit(0);
// Node 20/21 have WebAssembly relaxed SIMD behind a flag: with it, the tests run the FMA kernels from the start (the
// engine would turn it on itself; test/unit/wasm-kernels.test.ts checks that path from a CLI started without it)
const [major, minor] = process.versions.node.split('.').map(Number);
const relaxed = major < 22 ? ['--experimental-wasm-relaxed-simd'] : [];
// A hang must fail the run, not stall CI. Each test file gets TEST_TIMEOUT_MS (the runner times a file's process as
// one test; the longest file takes about 2 minutes here), a file exits once its tests are done even if a failed test
// left a server or a child running (--test-force-exit), and the whole run is stopped after RUN_TIMEOUT_MS (a quiet
// run takes about 10 minutes).
const TEST_TIMEOUT_MS = 10 * 60_000;
const RUN_TIMEOUT_MS = 40 * 60_000;
// --test-force-exit came in Node 20.14 and 22
const forceExit = major >= 22 || (major === 20 && minor >= 14) ? ['--test-force-exit'] : [];
const limits = [`--test-timeout=${TEST_TIMEOUT_MS}`, ...forceExit];
// The runner and its test files run in a process group of their own, so the whole group can be stopped.
const runner = spawn(
  process.execPath,
  ['--enable-source-maps', '--expose-gc', ...relaxed, '--test', '--test-concurrency=1', ...limits, ...outs],
  {
    stdio: 'inherit',
    cwd: root,
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', ...referencePython() },
    detached: true,
  },
);
const stopAll = (signal) => {
  try {
    process.kill(-runner.pid, signal);
  } catch {
    // the group has already exited
  }
};
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => stopAll(s));
const timer = setTimeout(() => {
  console.error(`the tests did not finish within ${RUN_TIMEOUT_MS / 60_000} minutes: stopped`);
  stopAll('SIGKILL');
}, RUN_TIMEOUT_MS);
runner.on('exit', (code, signal) => {
  clearTimeout(timer);
  stopAll('SIGKILL'); // whatever a test left running (a server, a VS Code) would hold the run's output open
  process.exit(code ?? (signal ? 1 : 0));
});

/** LORAKIT_PYTHON for the tests: the venv ensure-test-deps made with PyTorch, transformers and PEFT, unless one is named */
function referencePython() {
  const venv = path.join(root, '.test-deps', 'py', 'bin', 'python');
  return process.env.LORAKIT_PYTHON || !fs.existsSync(venv) ? {} : { LORAKIT_PYTHON: venv };
}
