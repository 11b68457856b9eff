/**
 * `lorakit` — the engine, headless. Exit status: 0 on success, 1 on a user error (one line naming the file and
 * the problem), 2 on bad usage. With --json, one JSON object goes to stdout and progress to stderr.
 */
import { ConfigError, UserError, VERSION, releaseDevices } from '../engine';
import { UsageError } from './args';
import { COMMANDS } from './commands';

const HELP = `lorakit ${VERSION} — LoRA fine-tuning of Hugging Face Llama-family models on your own machine

Usage: lorakit <command> [options]      (lorakit <command> --help for its options)

Commands:
  train      fine-tune a LoRA adapter on a folder, a text file or JSONL
  eval       mean next-token loss and perplexity of a model (+ adapter) on data
  generate   complete a prompt with the model, with or without an adapter
  merge      merge one or more adapters (weighted) into a new full model folder
  estimate   memory needed to train, by tag, before loading anything
  quantize   write a model in the bnb-4bit layout (NF4/FP4, optional double quantization)
  info       describe a model folder, a safetensors file or an adapter
  export     export gguf: a model or an adapter as GGUF for llama.cpp and Ollama (with a Modelfile);
             export job: the run as a transformers + PEFT training job for a cluster
  pull       download a model from the Hugging Face Hub into the shared cache
  serve      serve a model and its adapters over HTTP (OpenAI- and Ollama-compatible) until Ctrl-C

Models are Hugging Face folders: config.json (llama, mistral, qwen2, qwen3), *.safetensors, tokenizer.json,
or Hub ids (ORG/NAME[@REVISION]) already in the Hugging Face cache (lorakit pull ORG/NAME puts them there).
QLoRA: --quant nf4 [--double-quant] on train/eval/generate/estimate holds the base in 4 bits; bnb-4bit folders load directly.
Adapters are PEFT folders: adapter_config.json + adapter_model.safetensors.
`;

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (cmd === '--version' || cmd === '-v') {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const c = COMMANDS[cmd];
  if (!c) {
    process.stderr.write(`lorakit: unknown command "${cmd}"\n\n${HELP}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(c.helpFor?.(rest) ?? c.help);
    return 0;
  }
  try {
    await c.run(rest);
    return 0;
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError) {
      process.stderr.write(`lorakit ${cmd}: ${e.message}\n\n${c.helpFor?.(rest) ?? c.help}`);
      return 2;
    }
    if (e instanceof UserError) {
      process.stderr.write(`lorakit: error: ${e.message}\n`);
      return 1;
    }
    throw e;
  } finally {
    releaseDevices();
  }
}

/** Run the CLI on process.argv and set the exit code. */
export function cli(): void {
  // `lorakit info … | head` closes the pipe early: that is not an error
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
  main(process.argv.slice(2)).then(
    (code) => {
      if (code !== 0 || !process.exitCode) process.exitCode = code; // a command may have set its own (130: cancelled)
    },
    (e) => {
      process.stderr.write(`lorakit: internal error: ${e?.stack ?? e}\n`);
      process.exitCode = 70;
    },
  );
}

if (require.main === module) cli();
