// Issue 10 #20 (D1): method names that Object.prototype holds (toString, constructor, __proto__, hasOwnProperty)
// used to kill the sidecar — and the training run in it — with "TypeError … reading 'safeParse'". The real
// sidecar process gets each, answers bad_request, and still answers the next request.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import * as path from 'node:path';

test('the sidecar answers prototype method names with bad_request and stays alive', async () => {
  const child = fork(path.resolve('dist/sidecar.js'), [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  let exited: number | null | undefined;
  child.on('exit', (c) => (exited = c));
  const waiting = new Map<number, (m: any) => void>();
  child.on('message', (m: any) => {
    if (typeof m?.id === 'number') waiting.get(m.id)?.(m);
  });
  let next = 1;
  const ask = (method: string, params: unknown = {}) =>
    new Promise<any>((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => reject(new Error(`no answer to "${method}" (sidecar exit ${exited}; stderr: ${stderr})`)), 20000);
      waiting.set(id, (m) => (clearTimeout(timer), resolve(m)));
      child.send({ id, method, params });
    });
  try {
    for (const method of ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf', 'isPrototypeOf']) {
      const r = await ask(method);
      assert.equal(r.error?.code, 'bad_request', `${method}: ${JSON.stringify(r)}`);
      assert.match(r.error.message, /unknown method/);
    }
    const hello = await ask('hello');
    assert.equal(hello.result?.protocol, 1, JSON.stringify(hello));
    assert.equal(exited, undefined, 'the sidecar is still running');
  } finally {
    child.kill();
  }
});
