// npm run bench: builds, finds the PyTorch peers a user would have, then runs dist/bench.js.
//
// Debian's python3-torch links the reference BLAS unless libopenblas0-pthread is installed (5 vs ~150 GFLOP/s
// here), so the two are installed together when the bench may use apt (as root, on Debian/Ubuntu;
// LORAKIT_BENCH_NO_APT=1 says no). A pip PyTorch is looked for where a user keeps one ($LORAKIT_BENCH_PYTHON, ./.venv,
// ./venv, python3 on PATH, the tests' .test-deps/py, the bench's own .bench/venv); when there is none it is installed the way a user would
// (`python3 -m venv` and `pip install torch`, with pip's own index and find-links) into .bench/venv
// (LORAKIT_BENCH_NO_PIP=1 says no). dist/bench.js finds the same pythons (src/bench/torch.ts).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const run = (cmd, args, opts = {}) => spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
/** a command's status and its last line of output, nothing printed */
const quiet = (cmd, args) => {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  const text = `${r.stdout ?? ''}\n${r.stderr ?? ''}`.trim().split('\n');
  return { ok: r.status === 0, last: r.error ? r.error.message : (text.filter((l) => l.trim()).pop() ?? '').trim() };
};

if (run(process.execPath, ['scripts/build.mjs']).status !== 0) process.exit(1);

const hasTorch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;
const hasBlas = fs.existsSync('/usr/lib/x86_64-linux-gnu/openblas-pthread') || fs.existsSync('/usr/lib/aarch64-linux-gnu/openblas-pthread');
const isRoot = process.getuid?.() === 0;
if ((!hasTorch || !hasBlas) && isRoot && fs.existsSync('/usr/bin/apt-get') && process.env.LORAKIT_BENCH_NO_APT !== '1') {
  console.log('installing python3-torch and libopenblas0-pthread for the PyTorch peer…');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-qq'], { env });
  const r = run('apt-get', ['install', '-y', '-qq', 'python3-torch', 'libopenblas0-pthread'], {
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (r.status !== 0) console.log('could not install them; the bench runs without the Debian PyTorch peer');
}

/** where a torch is imported from, or null: a pip one is any torch not in Debian's /usr/lib/python3/dist-packages */
const torchOf = (py) => {
  const r = spawnSync(py, ['-c', 'import torch; print(torch.__file__)'], { cwd: root, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
};
const VENV = path.join('.bench', 'venv');
const venvPy = path.join(root, VENV, 'bin', 'python');
const candidates = [
  process.env.LORAKIT_BENCH_PYTHON,
  path.join(root, '.venv', 'bin', 'python'),
  path.join(root, 'venv', 'bin', 'python'),
  'python3',
  path.join(root, '.test-deps', 'py', 'bin', 'python'), // the tests' reference venv (pip's torch, transformers, PEFT)
  venvPy,
].filter((p) => p && (!p.includes('/') || fs.existsSync(p)));
const pipTorch = candidates.find((py) => {
  const f = torchOf(py);
  return f !== null && !f.startsWith('/usr/lib/python3/dist-packages/');
});
// what was done, for BENCHMARKS.md (LORAKIT_BENCH_PIP_NOTE); kept beside the venv for the runs after
const NOTE = path.join(root, VENV, 'lorakit-bench-note.txt');
let note = '';
if (process.env.LORAKIT_BENCH_NO_PIP === '1') console.log('pip: LORAKIT_BENCH_NO_PIP=1, no pip PyTorch installed');
else if (pipTorch) {
  console.log(`pip: PyTorch found with ${pipTorch} (${torchOf(pipTorch)})`);
  note = pipTorch === venvPy && fs.existsSync(NOTE) ? fs.readFileSync(NOTE, 'utf8').trim() : `found with ${pipTorch}`;
} else {
  // what a user does: a venv and `pip install torch`; offline, torch's dependencies may be missing from pip's
  // sources, so the second try takes them from the system python's packages and installs torch alone
  const inVenv = () => {
    const f = torchOf(venvPy);
    return f !== null && f.startsWith(path.join(root, VENV));
  };
  const attempts = [
    { venv: [], pip: ['torch'] },
    { venv: ['--system-site-packages'], pip: ['--no-deps', 'torch'] },
  ];
  const what = (a) => `\`python3 -m venv ${[...a.venv, VENV].join(' ')}\` and \`pip install ${a.pip.join(' ')}\``;
  const failed = [];
  for (const a of attempts) {
    fs.rmSync(path.join(root, VENV), { recursive: true, force: true });
    console.log(`pip: no pip PyTorch found; trying ${what(a)}…`);
    const v = quiet('python3', ['-m', 'venv', ...a.venv, VENV]);
    if (!v.ok) {
      console.log(`pip: python3 -m venv failed: ${v.last}`);
      failed.push(`python3 -m venv failed (${v.last})`);
      break;
    }
    const p = quiet(venvPy, ['-m', 'pip', 'install', '--quiet', ...a.pip]);
    if (p.ok && inVenv()) {
      const version = spawnSync(venvPy, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).stdout.trim();
      console.log(`pip: installed torch ${version} in ${VENV}`);
      note = `${what(a)} installed torch ${version}${failed.length ? ` (before that, ${failed.join('; ')})` : ''}`;
      break;
    }
    const why = p.ok ? '`import torch` fails after it' : `it failed: ${p.last}`;
    console.log(`pip: ${why}`);
    failed.push(`${what(a)}: ${why}`);
  }
  if (!note) {
    fs.rmSync(path.join(root, VENV), { recursive: true, force: true });
    console.log('pip: no pip PyTorch; the bench runs without it');
  } else {
    const p = quiet(venvPy, ['-m', 'pip', 'install', '--quiet', 'peft']);
    console.log(p.ok ? 'pip: installed peft' : `pip: pip install peft failed (the peer runs without it): ${p.last}`);
    note += p.ok ? '; `pip install peft` installed peft' : `; \`pip install peft\` failed (${p.last})`;
    fs.writeFileSync(NOTE, note + '\n');
  }
}

// Node 20's V8 has relaxed SIMD behind a flag (on by default from Node 22): the bench measures the FMA kernels with it
const major = Number(process.versions.node.split('.')[0]);
const flags = major < 22 ? ['--experimental-wasm-relaxed-simd'] : [];
const r = run(process.execPath, [...flags, 'dist/bench.js'], {
  env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', LORAKIT_BENCH_PIP_NOTE: note },
});
process.exit(r.status ?? 1);
