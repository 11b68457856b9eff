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

// node-llama-cpp (a devDependency: llama.cpp's prebuilt binaries from npm) reads the GGUF exports in
// test/golden/gguf-llama-cpp.test.ts. A node_modules made before it was added lacks it: install the version
// package.json names, with its postinstall's download and build of llama.cpp switched off (the npm packages
// @node-llama-cpp/<platform> carry the binaries).
if (!fs.existsSync(path.join(root, 'node_modules/node-llama-cpp/package.json')) && !process.env.LORAKIT_SKIP_LLAMA_CPP_INSTALL) {
  const want = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).devDependencies?.['node-llama-cpp'];
  console.log(`gguf: installing node-llama-cpp ${want} from npm (once)…`);
  const r = spawnSync('npm', ['install', '--no-save', '--no-audit', '--no-fund', `node-llama-cpp@${want}`], {
    stdio: 'inherit',
    cwd: root,
    env: { ...process.env, NODE_LLAMA_CPP_SKIP_DOWNLOAD: 'true' },
  });
  if (r.status !== 0) console.log('gguf: installing node-llama-cpp failed; the llama.cpp checks of the GGUF exports will be skipped');
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
