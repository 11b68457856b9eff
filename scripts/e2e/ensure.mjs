// Makes sure the browser and VS Code tests can run: Debian's Chromium and code-server 4.100.3 (installed by
// install-code-server.sh from Debian packages and the npm registry into .vscode-test/). Needs root for apt-get;
// without it, it says what is missing and the tests that need it skip with the reason.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const cs = path.join(root, '.vscode-test/code-server/cs/node_modules/.bin/code-server');
if (process.env.LORAKIT_SKIP_E2E_INSTALL) process.exit(0);
if (fs.existsSync(cs) && fs.existsSync('/usr/bin/chromium')) process.exit(0);
if (process.getuid?.() !== 0) {
  console.log('e2e: code-server or Chromium is missing and this is not root: the browser and VS Code tests will be skipped (run scripts/e2e/install-code-server.sh as root)');
  process.exit(0);
}
console.log('e2e: installing Chromium and code-server 4.100.3 (once; about 2 minutes)…');
const install = () => spawnSync('sh', [path.join(root, 'scripts/e2e/install-code-server.sh'), path.join(root, '.vscode-test/code-server')], { stdio: 'inherit', cwd: root });
let r = install();
if (r.status !== 0) {
  spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
  r = install();
}
if (r.status !== 0) {
  console.error('e2e: installing code-server failed');
  process.exit(1);
}
