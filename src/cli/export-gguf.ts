/** `lorakit export gguf`: a model or an adapter as GGUF files for llama.cpp and Ollama (with a Modelfile). */
import { GGUF_TYPES, GgufTypeName, exportAdapterGguf, exportForOllama, exportModelGguf, formatBytes } from '../engine';
import { Command, UsageError, err, out, parseFlags } from './args';

export const ggufCmd: Command = {
  help: `lorakit export gguf --model DIR [--type f16] [--out FILE] [--json]
lorakit export gguf --adapter DIR [--base DIR] [--out FILE] [--json]
lorakit export gguf --adapter DIR --model DIR [--type f16] [--out DIR] [--json]
  For llama.cpp, Ollama and LM Studio.
  --model alone      the model (a base or a merged model) as a GGUF model: --type f32, f16 (default), bf16, q8_0
                     or q4_0, with its tokenizer and chat template
  --adapter alone    the PEFT adapter as a GGUF LoRA adapter (llama.cpp's --lora); the base's config.json is read
                     from --base, or from the folder the adapter names as its base model
  both               both GGUF files and an Ollama Modelfile (FROM the base, ADAPTER the LoRA, TEMPLATE from the
                     chat template) in the folder --out (default: <adapter>-gguf), and the ollama create command
`,
  async run(argv) {
    const p = parseFlags(argv, { model: 'string', adapter: 'string', base: 'string', type: 'string', out: 'string', json: 'boolean' });
    const type = (p.type as string | undefined) ?? 'f16';
    if (!(GGUF_TYPES as readonly string[]).includes(type))
      throw new UsageError(`--type must be one of ${GGUF_TYPES.join(', ')}, got "${type}"`);
    const model = p.model as string | undefined;
    const adapter = p.adapter as string | undefined;
    const out_ = p.out as string | undefined;
    const progress = p.json ? undefined : (name: string, i: number, n: number) => err(`writing ${name} (${i + 1}/${n})`);
    if (!model && !adapter) throw new UsageError('--model or --adapter is required');
    if (p.base && !adapter) throw new UsageError('--base names the base model of an --adapter');
    if (p.base && model) throw new UsageError('give the base model once: --model (exports it too) or --base (reads its config only)');
    if (adapter && !model && p.type) throw new UsageError("--type sets the model GGUF's type; the LoRA adapter is written in F32");
    if (model && adapter) {
      const r = exportForOllama({ adapter, model, outDir: out_, type: type as GgufTypeName, onTensor: progress });
      if (p.json) return void out(JSON.stringify(r));
      out(`wrote ${r.model.out} (${r.model.type.toUpperCase()}, ${formatBytes(r.model.bytes)})`);
      out(`wrote ${r.adapter.out} (LoRA, ${formatBytes(r.adapter.bytes)})`);
      out(`wrote ${r.modelfile}${r.templateNote ? ` (no TEMPLATE: ${r.templateNote})` : ''}`);
      out(`make an Ollama model of it with:\n  ${r.ollamaCreate}`);
      return;
    }
    const r = model
      ? exportModelGguf({ model, type: type as GgufTypeName, out: out_, onTensor: progress })
      : exportAdapterGguf({ adapter: adapter!, model: p.base as string | undefined, out: out_, onTensor: progress });
    if (p.json) return void out(JSON.stringify(r));
    const kept = Object.keys(r.fallbacks);
    out(
      `wrote ${r.out}: ${r.kind === 'adapter' ? 'LoRA adapter' : r.type.toUpperCase()} for llama.cpp's ${r.arch}, ${r.tensors} tensors, ${formatBytes(r.bytes)}`,
    );
    if (kept.length)
      out(`${kept.length} tensors kept in another type (rows that do not fill ${r.type.toUpperCase()} blocks): ${kept.join(', ')}`);
  },
};
