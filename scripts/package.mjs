// `npm run package`: builds, copies Dawn's native binding for the target platform beside the bundles
// (dist/webgpu-native/<platform>-<arch>/, with the DLLs it needs on Windows), and packages a platform-specific
// lorakit-<target>.vsix with @vscode/vsce. Target: this machine's platform, or LORAKIT_VSIX_TARGET
// (linux-x64, linux-arm64, darwin-x64, darwin-arm64, win32-x64, win32-arm64).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root });
  if (r.status !== 0) process.exit(r.status ?? 1);
};
const target = process.env.LORAKIT_VSIX_TARGET ?? `${process.platform}-${process.arch}`;
const [plat, arch] = target.split('-');
const dawnDir = `${plat}-${plat === 'darwin' ? 'universal' : arch}`;
run(process.execPath, ['scripts/build.mjs']);
const from = path.join(root, 'node_modules', 'webgpu', 'dist', dawnDir);
const to = path.join(root, 'dist', 'webgpu-native');
fs.rmSync(to, { recursive: true, force: true });
if (fs.existsSync(from)) {
  fs.mkdirSync(path.join(to, dawnDir), { recursive: true });
  for (const f of fs.readdirSync(from)) fs.copyFileSync(path.join(from, f), path.join(to, dawnDir, f));
  fs.copyFileSync(path.join(root, 'node_modules', 'webgpu', 'LICENSE.md'), path.join(to, 'LICENSE.md'));
} else console.log(`no Dawn binding for ${dawnDir}: this .vsix will train on the CPU only`);
run(process.execPath, [
  path.join(root, 'node_modules', '@vscode', 'vsce', 'vsce'),
  'package',
  '--no-dependencies',
  '--no-rewrite-relative-links',
  '--target',
  target,
  '-o',
  `lorakit-${target}.vsix`,
]);
