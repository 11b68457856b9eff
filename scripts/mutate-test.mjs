// The test command of a mutation run (scripts/mutate.mjs): in Stryker's sandbox, bundle the named test files once
// (the sandbox's sources hold every mutant, switched on by __STRYKER_ACTIVE_MUTANT__ at run time, so one build
// serves every mutant), then run them one file at a time and stop at the first failure: a killed mutant costs
// one file, usually the first.
import { build } from 'esbuild';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { common } from './build.mjs';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
// each argument: a test file, optionally `#pattern` to run only the tests whose names match
const args = process.argv.slice(2).map((a) => a.split('#'));
const files = args.map(([f]) => f);
const outdir = path.join(root, 'dist-mutate');
const outs = files.map((f) => path.join(outdir, path.relative('test', f).replace(/\.ts$/, '.js')));
// Stryker links no node_modules into its sandbox when the project's own is a link (a git worktree's): link it here
const nm = path.join(root, 'node_modules');
if (!fs.existsSync(nm) && path.basename(path.dirname(root)) === '.stryker-tmp')
  fs.symlinkSync(fs.realpathSync(path.join(root, '..', '..', 'node_modules')), nm);
// tests that run the real `lorakit` command need the CLI bundle, made from the sandbox's sources too
if (!fs.existsSync(path.join(root, 'dist', 'cli.js'))) {
  const r = spawnSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { stdio: ['ignore', 'ignore', 'inherit'], cwd: root });
  if (r.status !== 0) process.exit(1);
}
if (!outs.every((f) => fs.existsSync(f)))
  await build({
    ...common,
    external: [...common.external, 'playwright-core'],
    entryPoints: files,
    outbase: 'test',
    outdir,
    absWorkingDir: root,
    logLevel: 'error',
  });
// as scripts/test.mjs: the FMA kernels from the start on Node 20/21
const relaxed = Number(process.versions.node.split('.')[0]) < 22 ? ['--experimental-wasm-relaxed-simd'] : [];
for (const [i, f] of outs.entries()) {
  const only = args[i][1] ? [`--test-name-pattern=${args[i][1]}`] : [];
  const r = spawnSync(process.execPath, ['--expose-gc', ...relaxed, '--test', '--test-concurrency=1', '--test-reporter=dot', ...only, f], {
    stdio: ['ignore', 'ignore', 'inherit'],
    cwd: root,
    env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
  });
  if (r.status !== 0) process.exit(1);
}
