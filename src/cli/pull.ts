/** `lorakit pull ORG/NAME[@REVISION]`: a model from the Hugging Face Hub into the shared cache, with progress on stderr. */
import { CancelledError, PullPlan, formatBytes, formatDuration, hubCacheDir, pullModel } from '../engine';
import { Command, UsageError, err, out, parseFlags } from './args';

export const pullCmd: Command = {
  help: `lorakit pull ORG/NAME[@REVISION] [--dry-run] [--json]
  Downloads what lorakit needs (config, safetensors weights and their index, tokenizer files; never pickle .bin)
  into the Hugging Face cache ($HF_HUB_CACHE, default ~/.cache/huggingface/hub), where the Python tools find it
  too; files already there are not downloaded again, and an interrupted download resumes. config.json comes first:
  an unsupported architecture is refused before any weight. Afterwards --model ORG/NAME works in every command.
  --dry-run   show the files, the download size and the training memory estimate, and stop
  Environment: HF_ENDPOINT, HF_TOKEN (else the token file of huggingface-cli login), HF_HOME, HF_HUB_CACHE,
  HF_HUB_OFFLINE=1 (the cache only).
`,
  async run(argv) {
    const [id, ...rest] = argv;
    if (!id || id.startsWith('--')) throw new UsageError('give the model id: lorakit pull ORG/NAME[@REVISION]');
    const p = parseFlags(rest, { 'dry-run': 'boolean', json: 'boolean' });
    const ac = new AbortController();
    const onSig = () => {
      err('\ncancelling; the partial file is kept, pull again to resume…');
      ac.abort();
    };
    process.once('SIGINT', onSig);
    process.once('SIGTERM', onSig);
    const tty = process.stderr.isTTY;
    let lastLine = 0;
    try {
      const r = await pullModel(id, {
        signal: ac.signal,
        planOnly: !!p['dry-run'],
        onPlan: (plan) => err(describePlan(plan)),
        onProgress: (g) => {
          const line = `${g.file}  ${formatBytes(g.done)} / ${formatBytes(g.total)}  ${formatBytes(g.bytesPerS)}/s  ETA ${formatDuration(g.etaS)}`;
          if (tty) process.stderr.write(`\r${line.padEnd(lastLine)}`);
          else err(line);
          lastLine = line.length;
        },
      });
      if (tty && lastLine) process.stderr.write('\n');
      if (p.json) out(JSON.stringify({ ...r, plan: undefined }));
      else if (p['dry-run']) out(`dry run: nothing downloaded beyond config.json; cache ${hubCacheDir()}`);
      else
        out(
          `${r.downloadedBytes ? `downloaded ${formatBytes(r.downloadedBytes)}` : 'already in the cache, nothing downloaded'}: ${r.repo}@${r.commit.slice(0, 12)} → ${r.dir}`,
        );
    } catch (e) {
      if (!(e instanceof CancelledError)) throw e;
      err(`lorakit: ${e.message}`);
      process.exitCode = 130;
    } finally {
      process.off('SIGINT', onSig);
      process.off('SIGTERM', onSig);
    }
  },
};

function describePlan(p: PullPlan): string {
  const s = p.spec;
  const e = p.estimate;
  const cached = p.files.filter((f) => f.cached).length;
  return [
    `${p.repo}@${p.revision} (commit ${p.commit.slice(0, 12)}): ${s.modelType}, ${s.layers} layers, hidden ${s.hidden}, vocab ${s.vocabSize}`,
    `files: ${p.files.length} (${cached} already cached), ${formatBytes(p.totalBytes)} in all, ${formatBytes(p.downloadBytes)} to download`,
    `training with the defaults (LoRA r=${p.estimateFor.rank}, seq-len ${p.estimateFor.seqLen}, batch ${p.estimateFor.batch}) needs about ${formatBytes(e.bytes.total)}` +
      ` (${e.fits ? 'fits' : 'does NOT fit'} in ${e.device.name}, ${formatBytes(e.device.bytes)})`,
  ].join('\n');
}
