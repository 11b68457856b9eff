// node-llama-cpp (llama.cpp's own code, a prebuilt binary from npm) as an independent reader of lorakit's GGUF
// files: loads a model (and LoRA adapters), tokenizes, and runs greedy decoding returning each step's logits.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

export interface LlamaRun {
  /** the prompt's ids as llama.cpp tokenizes it (with BOS where the GGUF says to add it) */
  prompt: number[];
  ids: number[];
  /** the logits (first n entries) before each generated token */
  logits: Float32Array[];
}

export interface LlamaCpp {
  /**
   * Greedy decoding over the first `n` logits (the tokenizer's real tokens, as lorakit's sampler), stopping at a
   * `stops` id or after `maxNew` tokens; with `force`, those tokens are fed instead of the argmax (teacher forcing).
   */
  greedy(
    gguf: string,
    o: { prompt: string; n: number; maxNew: number; stops: Set<number>; adapter?: string; force?: number[] },
  ): Promise<LlamaRun>;
  dispose(): Promise<void>;
}

/** node-llama-cpp on the CPU, or why it cannot be used here */
export async function nodeLlamaCpp(): Promise<LlamaCpp | string> {
  const entry = ['.test-deps/node_modules', 'node_modules']
    .map((d) => path.resolve(d, 'node-llama-cpp/dist/index.js'))
    .find((p) => fs.existsSync(p));
  if (!entry) return 'node-llama-cpp is not installed (node scripts/ensure-test-deps.mjs installs it into .test-deps/)';
  // an ES module: imported at run time (the test bundles are CommonJS)
  const mod = await (new Function('u', 'return import(u)') as (u: string) => Promise<any>)(pathToFileURL(entry).href);
  let llama: any;
  try {
    llama = await mod.getLlama({ gpu: false, build: 'never', skipDownload: true, logLevel: mod.LlamaLogLevel.error, maxThreads: 2 });
  } catch (e: any) {
    return `node-llama-cpp has no prebuilt llama.cpp binary that loads here (${String(e?.message ?? e).split('\n')[0]})`;
  }
  const models = new Map<string, any>();
  return {
    async greedy(gguf, o) {
      let model = models.get(gguf);
      if (!model) models.set(gguf, (model = await llama.loadModel({ modelPath: gguf })));
      const ctx = await model.createContext({
        contextSize: 256,
        threads: 2,
        // f32 keys and values: llama.cpp's default f16 cache rounds what lorakit keeps in f32
        flashAttention: false,
        experimentalKvCacheKeyType: 'F32',
        experimentalKvCacheValueType: 'F32',
        ...(o.adapter ? { lora: { adapters: [{ filePath: o.adapter, scale: 1 }] } } : {}),
      });
      try {
        const seq = ctx.getSequence();
        const prompt: number[] = [...(model.tokens.shouldPrependBosToken ? [model.tokens.bos] : []), ...model.tokenize(o.prompt)];
        const ids: number[] = [];
        const logits: Float32Array[] = [];
        let feed = prompt;
        for (let i = 0; i < o.maxNew; i++) {
          const items = feed.map((t, j) => (j === feed.length - 1 ? [t, { generateNext: { logits: true } }] : t));
          const res = await seq.controlledEvaluate(items);
          const map: Map<number, number> = res[res.length - 1].next.logits;
          const l = new Float32Array(o.n);
          for (let t = 0; t < o.n; t++) l[t] = map.get(t) ?? -Infinity;
          logits.push(l);
          let next = 0;
          for (let t = 1; t < o.n; t++) if (l[t] > l[next]) next = t;
          if (o.force) {
            if (i >= o.force.length) break;
            next = o.force[i];
          } else if (o.stops.has(next)) break;
          ids.push(next);
          feed = [next];
        }
        return { prompt, ids, logits };
      } finally {
        await ctx.dispose();
      }
    },
    async dispose() {
      for (const m of models.values()) await m.dispose();
      await llama.dispose();
    },
  };
}
