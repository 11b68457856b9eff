/** `lorakit export <target>`: files for other tools, one command per target (export-gguf.ts, export-job.ts). */
import { Command, UsageError } from './args';
import { ggufCmd } from './export-gguf';
import { jobCmd } from './export-job';

/** export targets by name (`lorakit export gguf …`, `lorakit export job …`) */
export const EXPORT_TARGETS: Record<string, Command> = { gguf: ggufCmd, job: jobCmd };

export const exportCmd: Command = {
  help: `lorakit export <target> [options]      (lorakit export <target> --help)
  gguf    a model or an adapter as GGUF files for llama.cpp and Ollama
  job     the run as a transformers + PEFT training job for a cluster (--target hf)
`,
  helpFor: (argv) => (argv[0] ? EXPORT_TARGETS[argv[0]]?.help : undefined),
  async run(argv) {
    const [target, ...rest] = argv;
    const c = target ? EXPORT_TARGETS[target] : undefined;
    if (!c)
      throw new UsageError(
        target ? `unknown export target "${target}" (known: ${Object.keys(EXPORT_TARGETS).join(', ')})` : 'which export? (gguf, job)',
      );
    await c.run(rest);
  },
};
