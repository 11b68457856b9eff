import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * The seed of every property-based test: CI explores the same cases each run, so a red run is a regression and not a
 * new draw. A fuzz campaign sets LORAKIT_FUZZ_SEED (fast-check prints the seed of a failure).
 */
export const FUZZ_SEED = Number(process.env.LORAKIT_FUZZ_SEED ?? 20261201);

/** The environment for a `lorakit` child: this one's, less the machine's Hugging Face settings (HF_HUB_OFFLINE,
 * HF_TOKEN… would change what a test sees), on 2 threads, plus `extra`. */
export function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(HF_|HUGGING_FACE_)/.test(k)));
  return { ...env, LORAKIT_THREADS: '2', ...extra };
}

/** |got − want| ≤ atol + rtol·|want| everywhere; on failure, report the worst element. */
export function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, atol: number, rtol: number, what = ''): void {
  assert.equal(got.length, want.length, `${what}: length ${got.length} != ${want.length}`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < got.length; i++) {
    const excess = Math.abs(got[i] - want[i]) - (atol + rtol * Math.abs(want[i]));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) assert.fail(`${what}: element ${worst}: got ${got[worst]}, want ${want[worst]} (atol ${atol}, rtol ${rtol})`);
}

const made: string[] = [];
/** remove every folder tmpDir made, when the test file's process exits (LORAKIT_KEEP_TMP=1 keeps them, to look at) */
function cleanUp(): void {
  if (process.env.LORAKIT_KEEP_TMP) return;
  for (const d of made.splice(0))
    try {
      fs.rmSync(d, { recursive: true, force: true, maxRetries: 2 });
    } catch {
      // a folder a test left immutable or mounted: reported by that test, not here
    }
}

/** a fresh folder in the system temp folder, removed when the test file's process exits */
export function tmpDir(name: string): string {
  if (made.length === 0) process.once('exit', cleanUp);
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `lorakit-${name}-`));
  made.push(d);
  return d;
}

/** the real `lorakit` command, as a user runs it */
export function lorakit(...args: string[]) {
  const r = spawnSync(process.execPath, [path.resolve('bin/lorakit.js'), ...args], {
    encoding: 'utf8',
    env: cliEnv(),
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** one line on stderr that names the file, status 1 */
export function userError(r: ReturnType<typeof lorakit>, file: string | null, re: RegExp): void {
  assert.equal(r.code, 1, `exit status (stderr: ${r.err})`);
  const last = r.err.trim().split('\n').pop()!;
  assert.match(last, /^lorakit: error: /);
  if (file) assert.ok(last.includes(file), `"${last}" should name ${file}`);
  assert.match(last, re);
}
