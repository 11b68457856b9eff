// npm run bench: builds, makes sure the PyTorch peer is an honest one, then runs dist/bench.js.
// Debian's python3-torch links the reference BLAS unless libopenblas0-pthread is installed (5 vs ~150 GFLOP/s
// here), so the two are installed together when the bench may use apt (as root, on Debian/Ubuntu).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

const run = (cmd, args, opts = {}) => spawnSync(cmd, args, { stdio: 'inherit', ...opts });
if (run(process.execPath, ['scripts/build.mjs']).status !== 0) process.exit(1);
const hasTorch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
const hasBlas = fs.existsSync('/usr/lib/x86_64-linux-gnu/openblas-pthread') || fs.existsSync('/usr/lib/aarch64-linux-gnu/openblas-pthread');
const root = process.getuid?.() === 0;
if ((!hasTorch || !hasBlas) && root && fs.existsSync('/usr/bin/apt-get') && process.env.LORAKIT_BENCH_NO_APT !== '1') {
  console.log('installing python3-torch and libopenblas0-pthread for the PyTorch peer…');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-qq'], { env });
  const r = run('apt-get', ['install', '-y', '-qq', 'python3-torch', 'libopenblas0-pthread'], {
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (r.status !== 0) console.log('could not install them; the bench runs without the Debian PyTorch peer');
}
const r = run(process.execPath, ['dist/bench.js'], { env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' } });
process.exit(r.status ?? 1);
