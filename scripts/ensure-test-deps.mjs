// Makes sure every test can run: Mesa's lavapipe (Vulkan on the CPU, for the WebGPU tests; setup-lavapipe.sh),
// Debian's Chromium and code-server 4.100.3 (the browser and VS Code tests; e2e/install-code-server.sh installs them
// from Debian packages and the npm registry into .vscode-test/). Needs root for apt-get; without it, it says what
// is missing and the tests that need it skip with the reason.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const isRoot = process.getuid?.() === 0;

// lavapipe ≥ 25 (the stock Mesa 22 lacks what Dawn needs)
const mesa = spawnSync('dpkg-query', ['-W', '-f=${Version}', 'mesa-vulkan-drivers'], { encoding: 'utf8' });
if (!(mesa.status === 0 && Number(mesa.stdout.split('.')[0]) >= 25) && !process.env.LORAKIT_SKIP_LAVAPIPE_INSTALL) {
  if (!isRoot)
    console.log(
      'webgpu: Mesa lavapipe ≥ 25 is missing and this is not root: the WebGPU tests will be skipped (run scripts/setup-lavapipe.sh as root)',
    );
  else {
    console.log('webgpu: installing Mesa lavapipe from bookworm-backports (once)…');
    const r = spawnSync('sh', [path.join(root, 'scripts/setup-lavapipe.sh')], { stdio: 'inherit' });
    if (r.status !== 0) console.log('webgpu: installing lavapipe failed; the WebGPU tests will be skipped');
  }
}

// node-llama-cpp (llama.cpp's own code, prebuilt, from npm) reads the GGUF exports in test/golden/gguf-llama-cpp.test.ts.
// It is not a devDependency: its optional packages carry llama.cpp for every platform and GPU (CUDA alone is some
// 400 MB), so it is installed here, once, into .test-deps/ with only this platform's CPU build, its postinstall's
// download and build switched off. Without it the llama.cpp checks skip and say why.
const LLAMA_CPP = '3.22.1';
const testDeps = path.join(root, '.test-deps');
if (!fs.existsSync(path.join(testDeps, 'node_modules/node-llama-cpp/package.json')) && !process.env.LORAKIT_SKIP_LLAMA_CPP_INSTALL) {
  const platform =
    { darwin: process.arch === 'arm64' ? 'mac-arm64-metal' : 'mac-x64', win32: `win-${process.arch}` }[process.platform] ??
    `linux-${process.arch}`;
  console.log(`gguf: installing node-llama-cpp ${LLAMA_CPP} (${platform}) into .test-deps/ (once)…`);
  fs.mkdirSync(testDeps, { recursive: true });
  fs.writeFileSync(path.join(testDeps, 'package.json'), JSON.stringify({ name: 'lorakit-test-deps', private: true }) + '\n');
  const r = spawnSync(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--omit=optional',
      '--ignore-scripts',
      `node-llama-cpp@${LLAMA_CPP}`,
      `@node-llama-cpp/${platform}@${LLAMA_CPP}`,
    ],
    { stdio: 'inherit', cwd: testDeps, env: { ...process.env, NODE_LLAMA_CPP_SKIP_DOWNLOAD: 'true' } },
  );
  if (r.status !== 0) console.log('gguf: installing node-llama-cpp failed; the llama.cpp checks of the GGUF exports will be skipped');
}

// The independent references: PyTorch, transformers and PEFT, which the golden tests (test/golden/) and the exported
// training job's run check lorakit against. Installed once with pip into a venv at .test-deps/py, from wherever pip's
// own configuration points (an index that cannot be reached fails fast: no retries); scripts/test.mjs hands the tests
// its python as LORAKIT_PYTHON. A python3 that already has them (or LORAKIT_PYTHON) is used as it is. Without them
// those tests skip and say why.
const PY_PACKAGES = ['torch', 'transformers', 'peft', 'safetensors', 'pyyaml'];
const venvPy = path.join(testDeps, 'py', 'bin', 'python');
const hasRefs = (py) => spawnSync(py, ['-c', 'import torch, transformers, peft, safetensors, yaml'], { stdio: 'ignore' }).status === 0;
if (!process.env.LORAKIT_SKIP_PYTHON_INSTALL && !hasRefs(process.env.LORAKIT_PYTHON ?? 'python3') && !hasRefs(venvPy)) {
  console.log(`golden: installing ${PY_PACKAGES.join(', ')} with pip into .test-deps/py (once; about 1.5 minutes)…`);
  fs.mkdirSync(testDeps, { recursive: true });
  const venv = spawnSync('python3', ['-m', 'venv', path.join(testDeps, 'py')], { stdio: 'inherit' });
  const pip =
    venv.status === 0 &&
    spawnSync(venvPy, ['-m', 'pip', 'install', '-q', '--retries', '0', '--timeout', '15', ...PY_PACKAGES], {
      stdio: ['ignore', 'ignore', 'pipe'],
      encoding: 'utf8',
    });
  if (!pip || pip.status !== 0 || !hasRefs(venvPy)) {
    const why = pip
      ? (pip.stderr ?? '')
          .trim()
          .split('\n')
          .filter((l) => !l.startsWith('WARNING'))
          .pop()
      : 'python3 -m venv failed';
    console.log(
      `golden: could not install them (${why ?? 'pip failed'}); the tests against PyTorch, transformers and PEFT will be skipped`,
    );
    fs.rmSync(path.join(testDeps, 'py'), { recursive: true, force: true });
  }
}

const cs = path.join(root, '.vscode-test/code-server/cs/node_modules/.bin/code-server');
if (process.env.LORAKIT_SKIP_E2E_INSTALL) process.exit(0);
if (fs.existsSync(cs) && fs.existsSync('/usr/bin/chromium')) process.exit(0);
if (!isRoot) {
  console.log(
    'e2e: code-server or Chromium is missing and this is not root: the browser and VS Code tests will be skipped (run scripts/e2e/install-code-server.sh as root)',
  );
  process.exit(0);
}
console.log('e2e: installing Chromium and code-server 4.100.3 (once; about 2 minutes)…');
const install = () =>
  spawnSync('sh', [path.join(root, 'scripts/e2e/install-code-server.sh'), path.join(root, '.vscode-test/code-server')], {
    stdio: 'inherit',
    cwd: root,
  });
let r = install();
if (r.status !== 0) {
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  r = install();
}
if (r.status !== 0) {
  console.error('e2e: installing code-server failed');
  process.exit(1);
}
