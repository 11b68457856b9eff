/** How many threads the engine's parallel work uses (the WebAssembly kernels, tokenizing): LORAKIT_THREADS, else the cores (at most 16). */
import * as os from 'node:os';

export function defaultThreads(): number {
  const env = Number(process.env.LORAKIT_THREADS);
  if (Number.isInteger(env) && env > 0) return env;
  return Math.max(1, Math.min(16, os.availableParallelism?.() ?? os.cpus().length));
}
