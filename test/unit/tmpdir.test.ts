// Issue 10 #18: the tests' temp folders are removed when a test file's process exits (npm test used to leave
// ~78 lorakit-* folders, 105 MB after two runs). This file, run again as a child process, stands in for a test file.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpDir } from '../helpers';

if (process.env.LORAKIT_TMPDIR_CHILD) {
  const d = tmpDir('child');
  fs.writeFileSync(path.join(d, 'x'), 'data');
  fs.mkdirSync(path.join(d, 'sub'));
  process.stdout.write(d);
} else {
  test('tmpDir folders are gone after the process that made them exits', () => {
    const r = spawnSync(process.execPath, [__filename], {
      encoding: 'utf8',
      env: { ...process.env, LORAKIT_TMPDIR_CHILD: '1', LORAKIT_KEEP_TMP: '' },
    });
    assert.equal(r.status, 0, r.stderr);
    const made = r.stdout.trim();
    assert.match(path.basename(made), /^lorakit-child-/);
    assert.ok(!fs.existsSync(made), `${made} should have been removed`);
  });
}
