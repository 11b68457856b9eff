/**
 * The bench's PyTorch peers: every PyTorch this machine has, found where a user would have one, each named (version,
 * BLAS, which python, pip or Debian), and bench/torch_step.py run with each at a workload's shape.
 *
 * Where it looks: $LORAKIT_BENCH_PYTHON, ./.venv and ./venv (a user's own venv in the checkout), .test-deps/py (the
 * venv the tests install torch, transformers and PEFT into), .bench/venv (the venv
 * scripts/bench.mjs makes with `pip install torch` when it finds no pip PyTorch), /usr/bin/python3 (Debian's
 * python3-torch) and python3 on PATH. Two pythons that import the same torch are one peer.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..');
const SCRIPT = path.join(root, 'bench', 'torch_step.py');

export interface Peer {
  /** the python that runs it, and its version */
  python: string;
  pythonVersion: string;
  torch: string;
  blas: string;
  /** where torch was installed from: 'pip' or 'Debian python3-torch' */
  source: string;
}

/** what torch_step.py prints for a step it timed */
export interface TorchRun {
  peer: Peer;
  tokens_per_s: number;
  best_tokens_per_s: number;
  step_ms: number;
  threads: number;
  /** ru_maxrss of the python process, bytes */
  max_rss: number;
  dtype: string;
  /** LoRA parameters it trains */
  trainable: number;
}

/** a peer that did not give a figure, and why */
export interface TorchSkip {
  peer: Peer;
  skipped: string;
}

/** the most seconds one peer's run may take (a loaded machine can slow a BLAS's threads 10×) */
const TIMEOUT_S = 600;

const rel = (p: string) => (p.startsWith(root + path.sep) ? path.relative(root, p) : p);

/** "PyTorch 2.13.0+cpu + MKL": how tables name a peer */
export const peerShort = (p: Peer) => `PyTorch ${p.torch} + ${p.blas}`;
/** the peer with where it comes from */
export const peerLong = (p: Peer) => `PyTorch ${p.torch} (${p.blas}; ${p.source}; ${rel(p.python)}, Python ${p.pythonVersion})`;

let found: Peer[] | undefined;

/** every PyTorch here, found once per run */
export function findPeers(): Peer[] {
  if (found) return found;
  found = [];
  const seen = new Set<string>();
  const candidates = [
    process.env.LORAKIT_BENCH_PYTHON,
    path.join(root, '.venv', 'bin', 'python'),
    path.join(root, 'venv', 'bin', 'python'),
    path.join(root, '.test-deps', 'py', 'bin', 'python'),
    path.join(root, '.bench', 'venv', 'bin', 'python'),
    '/usr/bin/python3',
    'python3',
  ];
  for (const py of candidates) {
    if (!py || (py.includes('/') && !fs.existsSync(py))) continue;
    const r = spawnSync(py, [SCRIPT, '--probe'], { encoding: 'utf8', cwd: root });
    if (r.status !== 0) continue;
    const j = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
      torch: string;
      blas: string;
      python: string;
      python_version: string;
      torch_file: string;
    };
    const where = fs.realpathSync(j.torch_file);
    if (seen.has(where)) continue;
    seen.add(where);
    const source = where.startsWith('/usr/lib/python3/dist-packages/') ? 'Debian python3-torch' : 'pip';
    const peer = { python: j.python, pythonVersion: j.python_version, torch: j.torch, blas: j.blas, source };
    console.log(`PyTorch peer: ${peerLong(peer)}`);
    found.push(peer);
  }
  return found;
}

export interface TorchShape {
  vocab: number;
  hidden: number;
  ff: number;
  layers: number;
  heads: number;
  kv: number;
  seq: number;
  batch: number;
  rank: number;
  steps: number;
  threads: number;
  /** torch_step.py's options: --qkv-bias, --tied, --rope-theta T, --dtype bf16 */
  extra?: string[];
  /** a peer whose first step takes longer is skipped */
  maxFirstStepS?: number;
}

/** torch_step.py with every peer (or those given) at one shape */
export function torchRuns(s: TorchShape, label: string, peers: Peer[] = findPeers()): (TorchRun | TorchSkip)[] {
  const out: (TorchRun | TorchSkip)[] = [];
  for (const peer of peers) {
    const args = [s.vocab, s.hidden, s.ff, s.layers, s.heads, s.kv, s.seq, s.batch, s.rank, s.steps, s.threads].map(String);
    if (s.maxFirstStepS) args.push('--max-first-step', String(s.maxFirstStepS));
    const r = spawnSync(peer.python, [SCRIPT, ...args, ...(s.extra ?? [])], {
      encoding: 'utf8',
      cwd: root,
      maxBuffer: 16 << 20,
      timeout: TIMEOUT_S * 1000,
    });
    if (r.status !== 0) {
      const why = r.error ? `stopped after ${TIMEOUT_S} s` : ((r.stderr ?? '').trim().split('\n').pop() ?? `exit ${r.status}`);
      console.log(`${label}: ${peerShort(peer)} failed: ${why}`);
      out.push({ peer, skipped: `failed: ${why}` });
      continue;
    }
    const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
    if (j.skipped) {
      console.log(`${label}: ${peerShort(peer)} skipped: ${j.skipped}`);
      out.push({ peer, skipped: j.skipped });
      continue;
    }
    out.push({ peer, ...j });
    console.log(
      `${label}: ${peerShort(peer)} (${j.threads} threads, ${j.dtype}): ${j.tokens_per_s.toFixed(1)} tok/s, ${j.step_ms.toFixed(0)} ms/step, peak RSS ${(j.max_rss / 2 ** 30).toFixed(2)} GiB`,
    );
  }
  return out;
}

export const isRun = (r: TorchRun | TorchSkip): r is TorchRun => !('skipped' in r);

/** the fastest peer that gave a figure */
export const bestRun = (rs: (TorchRun | TorchSkip)[]): TorchRun | undefined =>
  rs.filter(isRun).sort((a, b) => b.tokens_per_s - a.tokens_per_s)[0];

/** a sentence for the peers whose trainable-parameter count differs from lorakit's (none: '') */
export function trainableNote(rs: (TorchRun | TorchSkip)[], lorakit: number): string {
  const off = rs.filter(isRun).filter((t) => t.trainable !== lorakit);
  if (off.length)
    console.log(
      `trainable parameters differ from lorakit's ${lorakit}: ${off.map((t) => `${peerShort(t.peer)} ${t.trainable}`).join(', ')}`,
    );
  return off
    .map(
      (t) => `${peerShort(t.peer)} trains ${t.trainable.toLocaleString('en')} LoRA parameters, lorakit ${lorakit.toLocaleString('en')}. `,
    )
    .join('');
}
