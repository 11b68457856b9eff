// The Hugging Face Hub client against a mock Hub on 127.0.0.1: the cache layout the Python tools read, a second
// pull that downloads nothing, a dropped connection resumed with a Range request, cancel and resume, checksums,
// and one clear line for each failure (gated, 404, no network, unsupported architecture, pickle-only weights).
import { test, before, after } from 'node:test';
import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeDatasets, makeTinyModel } from '../../src/engine/fixtures/model';
import { CancelledError, UserError } from '../../src/engine/core/errors';
import { pullModel, PullOptions } from '../../src/engine/tasks/pull';
import { listCachedModels, parseHubId, resolveModel } from '../../src/engine/formats/hf-cache';
import { openModelFolder } from '../../src/engine/formats/model-folder';
import { MockHub } from '../hub-mock';
import { cliEnv, tmpDir } from '../helpers';

const root = tmpDir('hub');
const hub = new MockHub();
let commit = '';
let shardedCommit = '';
const env = (cache: string, more: Record<string, string> = {}) => ({ HF_HUB_CACHE: cache, HF_HOME: path.join(root, 'home'), ...more });
const opts = (cache: string, more: Partial<PullOptions> = {}): PullOptions => ({ endpoint: hub.endpoint, env: env(cache), ...more });

before(async () => {
  const tiny = path.join(root, 'src', 'tiny');
  makeTinyModel(tiny, { modelType: 'qwen2' });
  fs.writeFileSync(path.join(tiny, 'pytorch_model.bin'), 'pickle: never downloaded'); // beside the safetensors
  fs.writeFileSync(path.join(tiny, 'README.md'), '# tiny\n');
  const sharded = path.join(root, 'src', 'sharded');
  makeTinyModel(sharded, { modelType: 'llama', shards: 2 });
  const gpt2 = path.join(root, 'src', 'gpt2');
  fs.mkdirSync(gpt2, { recursive: true });
  fs.writeFileSync(path.join(gpt2, 'config.json'), JSON.stringify({ model_type: 'gpt2', n_layer: 2 }));
  fs.writeFileSync(path.join(gpt2, 'model.safetensors'), Buffer.alloc(4096));
  const pickled = path.join(root, 'src', 'pickled');
  makeTinyModel(pickled, { modelType: 'llama' });
  fs.renameSync(path.join(pickled, 'model.safetensors'), path.join(pickled, 'pytorch_model.bin'));
  await hub.start();
  commit = hub.add('org/tiny', { dir: tiny });
  shardedCommit = hub.add('org/sharded', { dir: sharded });
  hub.add('org/gpt2', { dir: gpt2 });
  hub.add('org/pickled', { dir: pickled });
  hub.add('org/gated', { dir: tiny, gated: true, token: 'hf_good' });
});
after(() => hub.stop());

const sha256 = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');
const gets = (from: number) => hub.log.slice(from).filter((l) => l.method === 'GET' && !l.url.startsWith('/api/'));
async function rejects(p: Promise<unknown>, re: RegExp): Promise<UserError> {
  const e = await p.then(
    () => assert.fail('expected an error'),
    (x) => x,
  );
  assert.ok(e instanceof UserError, `a UserError, got ${e?.stack ?? e}`);
  assert.match(e.message, re);
  assert.ok(!e.message.includes('\n'), 'one line');
  return e;
}

test('ids: ORG/NAME[@REVISION], and nothing that looks like a path', () => {
  assert.deepEqual(parseHubId('Qwen/Qwen2.5-0.5B'), { repo: 'Qwen/Qwen2.5-0.5B', revision: 'main' });
  assert.deepEqual(parseHubId('org/m@v1.0'), { repo: 'org/m', revision: 'v1.0' });
  for (const bad of ['./a/b', '/abs/path', 'a/b/c', 'a', '../x', 'org/..', 'a b/c']) assert.equal(parseHubId(bad), null, bad);
});

test('pull: the layout huggingface_hub writes (blobs by etag, relative links, refs), then a second pull downloads nothing', async () => {
  const cache = path.join(root, 'cache1');
  let plan: any;
  const progress: number[] = [];
  const r = await pullModel('org/tiny', opts(cache, { onPlan: (p) => (plan = p), onProgress: (g) => progress.push(g.done) }));
  const repo = path.join(cache, 'models--org--tiny');
  assert.equal(r.commit, commit);
  assert.equal(r.dir, path.join(repo, 'snapshots', commit));
  assert.equal(fs.readFileSync(path.join(repo, 'refs', 'main'), 'utf8'), commit);
  assert.deepEqual(fs.readdirSync(r.dir).sort(), ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
  const src = path.join(root, 'src', 'tiny');
  for (const f of fs.readdirSync(r.dir)) {
    const link = path.join(r.dir, f);
    assert.ok(fs.lstatSync(link).isSymbolicLink(), `${f} is a link`);
    const target = fs.readlinkSync(link);
    assert.ok(target.startsWith(`..${path.sep}..${path.sep}blobs${path.sep}`), `${f} → ${target} is relative`);
    const data = fs.readFileSync(path.join(src, f));
    const etag = f.endsWith('.safetensors')
      ? sha256(path.join(src, f))
      : createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
    assert.equal(path.basename(target), etag, `${f}'s blob is named by its etag`);
    assert.deepEqual(fs.readFileSync(link), data);
  }
  assert.ok(!fs.readdirSync(path.join(repo, 'blobs')).some((b) => b.endsWith('.incomplete')));
  // the plan came before the weights, with the size and the memory estimate
  assert.equal(plan.spec.modelType, 'qwen2');
  const configSize = fs.statSync(path.join(src, 'config.json')).size;
  assert.equal(plan.downloadBytes, plan.totalBytes - configSize, 'config.json is already there when the plan is shown');
  assert.ok(plan.estimate.bytes.total > 0);
  assert.equal(progress[progress.length - 1], plan.downloadBytes);
  // the downloaded folder opens as a model, by path and by id
  process.env.HF_HUB_CACHE = cache;
  try {
    assert.equal(openModelFolder('org/tiny').dir, r.dir);
    assert.equal(resolveModel(`org/tiny@${commit}`), r.dir);
    assert.deepEqual(
      listCachedModels(cache).map((m) => m.id),
      ['org/tiny'],
    );
  } finally {
    delete process.env.HF_HUB_CACHE;
  }
  const from = hub.log.length;
  const again = await pullModel('org/tiny', opts(cache));
  assert.equal(again.downloadedBytes, 0);
  assert.deepEqual(gets(from), [], 'no file is fetched again');
  assert.ok(!hub.log.slice(from).some((l) => l.url.includes('pytorch_model.bin') || l.url.includes('README')));
});

test('a connection dropped mid-file resumes with a Range request and the file verifies', async () => {
  const cache = path.join(root, 'cache2');
  hub.dropAfter = { file: 'model.safetensors', bytes: 200_000 };
  const from = hub.log.length;
  const r = await pullModel('org/tiny', opts(cache));
  const cdn = hub.log.slice(from).filter((l) => l.url.startsWith('/cdn-lfs/') && l.method === 'GET');
  assert.equal(cdn.length, 2, 'one cut, one resumed');
  assert.equal(cdn[0].range, undefined);
  // the resume asks for what is missing after the bytes that arrived (the socket may lose the last ones it had queued)
  const resumedAt = Number(/^bytes=(\d+)-$/.exec(cdn[1].range ?? '')?.[1]);
  assert.ok(resumedAt > 0 && resumedAt <= 200_000, `resumed at ${resumedAt}`);
  assert.equal(cdn[1].status, 206);
  const size = fs.statSync(path.join(root, 'src', 'tiny', 'model.safetensors')).size;
  assert.equal(cdn[1].bytes, size - resumedAt, 'only the rest is fetched');
  assert.equal(sha256(path.join(r.dir, 'model.safetensors')), sha256(path.join(root, 'src', 'tiny', 'model.safetensors')));
});

test('cancel keeps the partial file (never taken for a whole one); the next pull resumes it', async () => {
  const cache = path.join(root, 'cache3');
  hub.throttle = { chunk: 16384, ms: 20 };
  const ac = new AbortController();
  const p = pullModel('org/tiny', opts(cache, { signal: ac.signal, onProgress: (g) => g.done > 100_000 && ac.abort() }));
  await assert.rejects(p, CancelledError);
  hub.throttle = null;
  const blobs = path.join(cache, 'models--org--tiny', 'blobs');
  const partial = fs.readdirSync(blobs).filter((b) => b.endsWith('.incomplete'));
  assert.equal(partial.length, 1);
  const kept = fs.statSync(path.join(blobs, partial[0])).size;
  assert.ok(kept > 0);
  // nothing resolves to the half-made snapshot
  assert.ok(!fs.existsSync(path.join(cache, 'models--org--tiny', 'refs', 'main')));
  assert.throws(() => resolveModel('org/tiny', env(cache)), /not in the Hugging Face cache.*lorakit pull org\/tiny/);
  const from = hub.log.length;
  const r = await pullModel('org/tiny', opts(cache));
  const cdn = hub.log.slice(from).filter((l) => l.url.startsWith('/cdn-lfs/') && l.method === 'GET');
  assert.deepEqual(
    cdn.map((l) => l.range),
    [`bytes=${kept}-`],
  );
  assert.equal(sha256(path.join(r.dir, 'model.safetensors')), sha256(path.join(root, 'src', 'tiny', 'model.safetensors')));
});

test('sharded weights: the index and the shards it names; @commit works and writes no ref', async () => {
  const cache = path.join(root, 'cache4');
  const r = await pullModel(`org/sharded@${shardedCommit}`, opts(cache));
  const files = fs.readdirSync(r.dir).sort();
  assert.ok(files.includes('model.safetensors.index.json'));
  assert.equal(files.filter((f) => f.endsWith('.safetensors')).length, 2);
  assert.ok(!fs.existsSync(path.join(cache, 'models--org--sharded', 'refs')));
  assert.equal(openModelFolder(r.dir).spec.modelType, 'llama');
});

test('a wrong checksum is refused, the bad bytes removed, and nothing linked', async () => {
  const cache = path.join(root, 'cache5');
  hub.corrupt = 'model.safetensors';
  try {
    await rejects(pullModel('org/tiny', opts(cache)), /model\.safetensors: wrong checksum \(expected [0-9a-f]{64}, got [0-9a-f]{64}\)/);
  } finally {
    hub.corrupt = null;
  }
  const blobs = fs.readdirSync(path.join(cache, 'models--org--tiny', 'blobs'));
  assert.ok(!blobs.some((b) => b.endsWith('.incomplete') || b.length === 64), blobs.join());
  assert.ok(!fs.existsSync(path.join(cache, 'models--org--tiny', 'snapshots', commit, 'config.json')));
});

test('gated: 401 without a token and 403 with a wrong one say how to get access; the right token (from the token file) works', async () => {
  const cache = path.join(root, 'cache6');
  await rejects(
    pullModel('org/gated', opts(cache)),
    /org\/gated is gated: ask for access at http:\/\/127\.0\.0\.1:\d+\/org\/gated.*HF_TOKEN/,
  );
  await rejects(
    pullModel('org/gated', opts(cache, { env: env(cache, { HF_TOKEN: 'hf_bad' }) })),
    /is gated.*the token in use has no access/,
  );
  fs.mkdirSync(path.join(root, 'home'), { recursive: true });
  fs.writeFileSync(path.join(root, 'home', 'token'), 'hf_good\n');
  try {
    const from = hub.log.length;
    const r = await pullModel('org/gated', opts(cache));
    assert.ok(fs.existsSync(path.join(r.dir, 'model.safetensors')));
    const sent = hub.log.slice(from);
    assert.ok(sent.filter((l) => !l.url.startsWith('/cdn-lfs/')).every((l) => l.auth === 'Bearer hf_good'));
  } finally {
    fs.rmSync(path.join(root, 'home', 'token'));
  }
});

test('404, no network, unsupported architecture, pickle-only weights: one clear line each, no weights fetched', async () => {
  const cache = path.join(root, 'cache7');
  await rejects(pullModel('org/nope', opts(cache, { env: env(cache, { HF_TOKEN: 'hf_x' }) })), /no model org\/nope on the Hub \(404\)/);
  await rejects(pullModel('org/nope', opts(cache)), /org\/nope needs a login \(401\)/);
  await rejects(pullModel('org/tiny@v9', opts(cache)), /no revision by that name/);
  // port 2 has no listener (a port freed by another server could be taken again before the pull; fetch refuses 1)
  await rejects(
    pullModel('org/tiny', { ...opts(cache), endpoint: 'http://127.0.0.1:2' }),
    /cannot reach the Hub \(ECONNREFUSED\).*HF_HUB_OFFLINE/,
  );
  const from = hub.log.length;
  await rejects(pullModel('org/gpt2', opts(cache)), /resolve\/[0-9a-f]{40}\/config\.json: model_type "gpt2" is not supported/);
  await rejects(pullModel('org/pickled', opts(cache)), /org\/pickled: no safetensors weights \(only pickle \.bin files/);
  assert.ok(!hub.log.slice(from).some((l) => l.url.includes('.safetensors') || l.url.includes('.bin')), 'no weights asked for');
  await rejects(pullModel('./not-an-id', opts(cache)), /not a Hugging Face model id/);
});

test('HF_HUB_OFFLINE: the cache only', async () => {
  const cache = path.join(root, 'cache1'); // filled by the first test
  const from = hub.log.length;
  const r = await pullModel('org/tiny', opts(cache, { env: env(cache, { HF_HUB_OFFLINE: '1' }) }));
  assert.equal(r.commit, commit);
  assert.equal(hub.log.length, from, 'no request');
  await rejects(
    pullModel('org/other', opts(cache, { env: env(cache, { HF_HUB_OFFLINE: '1' }) })),
    /HF_HUB_OFFLINE is set and org\/other@main is not in the cache/,
  );
  assert.throws(() => resolveModel('org/other', env(cache, { HF_HUB_OFFLINE: '1' })), /HF_HUB_OFFLINE is set: only the cache is used/);
  // a folder that exists wins over an id
  fs.mkdirSync(path.join(root, 'org', 'tiny'), { recursive: true });
  const cwd = process.cwd();
  process.chdir(root);
  try {
    assert.equal(resolveModel('org/tiny', env(cache)), 'org/tiny');
  } finally {
    process.chdir(cwd);
  }
});

/** the real `lorakit` command, run without blocking this process (the mock Hub lives here) */
function lorakitAsync(args: string[], extraEnv: Record<string, string>): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [path.resolve('bin/lorakit.js'), ...args], {
      env: cliEnv(extraEnv),
    });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    c.on('close', (code) => resolve({ code, out, err }));
  });
}

test('CLI: lorakit pull shows the plan and progress on stderr; --model takes the id; errors exit 1 in one line', async () => {
  const cache = path.join(root, 'cache8');
  const e = { HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: cache, HF_HOME: path.join(root, 'home') };
  const dry = await lorakitAsync(['pull', 'org/tiny', '--dry-run'], e);
  assert.equal(dry.code, 0, dry.err);
  assert.match(dry.err, /qwen2, 2 layers/);
  assert.match(dry.err, /files: 4 \(1 already cached\), [\d.]+ KiB in all, [\d.]+ KiB to download/);
  assert.match(dry.err, /training with the defaults .* needs about [\d.]+ [KMG]iB/);
  const r = await lorakitAsync(['pull', 'org/tiny'], e);
  assert.equal(r.code, 0, r.err);
  assert.match(r.err, /model\.safetensors {2}[\d.]+ KiB \/ [\d.]+ KiB {2}[\d.]+ [KM]?i?B\/s {2}ETA/);
  assert.match(r.out, /^downloaded [\d.]+ KiB: org\/tiny@[0-9a-f]{12} → .*snapshots/);
  const again = await lorakitAsync(['pull', 'org/tiny', '--json'], e);
  assert.equal(JSON.parse(again.out).downloadedBytes, 0);
  const est = await lorakitAsync(['estimate', '--model', 'org/tiny', '--json'], { ...e, HF_HUB_OFFLINE: '1' });
  assert.equal(est.code, 0, est.err);
  assert.ok(JSON.parse(est.out).bytes.total > 0);
  const miss = await lorakitAsync(['info', '--model', 'org/missing'], { ...e, HF_HUB_OFFLINE: '1' });
  assert.equal(miss.code, 1);
  assert.match(
    miss.err,
    /^lorakit: error: org\/missing: not a folder, and not in the Hugging Face cache .* \(HF_HUB_OFFLINE is set: only the cache is used\): download it with `lorakit pull org\/missing`\n$/,
  );
  const gated = await lorakitAsync(['pull', 'org/gated'], e);
  assert.equal(gated.code, 1);
  assert.match(gated.err, /^lorakit: error: .*org\/gated is gated: ask for access at/m);
  assert.equal((await lorakitAsync(['pull'], e)).code, 2);
  // train on the id: the adapter records the id as its base model, as PEFT writes it
  const ds = makeDatasets(path.join(root, 'data'), 384);
  const run = path.join(root, 'run');
  const t = await lorakitAsync(
    ['train', '--model', 'org/tiny', '--data', ds.text, '--out', run, '--steps', '1', '--seq-len', '32', '--json'],
    {
      ...e,
      HF_HUB_OFFLINE: '1',
    },
  );
  assert.equal(t.code, 0, t.err);
  const adapter = JSON.parse(fs.readFileSync(path.join(JSON.parse(t.out).adapterDir, 'adapter_config.json'), 'utf8'));
  assert.equal(adapter.base_model_name_or_path, 'org/tiny');
});

test('CLI: Ctrl-C stops the download with status 130 and keeps the partial file; the next pull resumes it', async () => {
  const cache = path.join(root, 'cache9');
  const e = { HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: cache, HF_HOME: path.join(root, 'home') };
  hub.throttle = { chunk: 16384, ms: 30 };
  const c = spawn(process.execPath, [path.resolve('bin/lorakit.js'), 'pull', 'org/tiny'], { env: cliEnv(e) });
  let err = '';
  const done = new Promise<number | null>((r) => c.on('close', r));
  c.stderr.on('data', (d) => {
    err += d;
    if (!c.killed && /model\.safetensors {2}\d/.test(err)) c.kill('SIGINT'); // once: a second Ctrl-C ends it at once
  });
  const code = await done;
  hub.throttle = null;
  assert.equal(code, 130, err);
  assert.match(err, /cancelled; the partial file is kept/);
  const blobs = path.join(cache, 'models--org--tiny', 'blobs');
  assert.equal(fs.readdirSync(blobs).filter((b) => b.endsWith('.incomplete')).length, 1);
  const from = hub.log.length;
  const r = await lorakitAsync(['pull', 'org/tiny'], e);
  assert.equal(r.code, 0, r.err);
  assert.match(hub.log.slice(from).find((l) => l.url.startsWith('/cdn-lfs/') && l.method === 'GET')?.range ?? '', /^bytes=\d+-$/);
});
