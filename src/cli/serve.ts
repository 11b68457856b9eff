/** `lorakit serve`: the model and its adapters over HTTP, OpenAI- and Ollama-compatible, until SIGINT or SIGTERM. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GenerationSession, UserError, createBackend, openModel, parseHubId } from '../engine';
import { DEFAULT_HOST, DEFAULT_PORT, startServer } from '../serve/server';
import { Command, UsageError, err, need, out, parseFlags } from './args';
import { QUANT_FLAGS, backendFrom, quantFrom } from './model-flags';

export const serveCmd: Command = {
  help: `lorakit serve --model DIR|ORG/NAME [--adapter NAME=DIR]… [--host ${DEFAULT_HOST}] [--port ${DEFAULT_PORT}] [--api-key KEY]
              [--backend auto|cpu|cpu-reference|webgpu] [--device NAME] [--quant nf4|fp4 [--double-quant] [--blocksize 64]] [--json]
  Serves the model, and each adapter under its NAME, until Ctrl-C or SIGTERM. A request's "model" picks one: the
  base model's id (ORG/NAME, or the folder's name) or an adapter's NAME; requests run side by side, token by token.
  OpenAI:  GET /v1/models, POST /v1/completions (suffix: fill-in-the-middle), POST /v1/chat/completions,
           POST /v1/load_lora_adapter {lora_name, lora_path}, POST /v1/unload_lora_adapter {lora_name} (as vLLM)
  Ollama:  GET /api/tags, POST /api/generate, POST /api/chat, POST /api/show, GET /api/version
  --host     the address to listen on (default ${DEFAULT_HOST}: this machine only)
  --port     0 takes any free port
  --api-key  every request must then send "Authorization: Bearer KEY"
  --json     print {"url", "model", "adapters"} on one line once it listens; the log goes to stderr
`,
  async run(argv) {
    const p = parseFlags(argv, {
      model: 'string',
      adapter: 'list',
      host: 'string',
      port: 'number',
      'api-key': 'string',
      backend: 'string',
      device: 'string',
      json: 'boolean',
      ...QUANT_FLAGS,
    });
    const modelArg = need<string>(p, 'model');
    const port = (p.port as number | undefined) ?? DEFAULT_PORT;
    if (!(Number.isInteger(port) && port >= 0 && port <= 65535))
      throw new UsageError(`--port must be a whole number from 0 to 65535, got ${port}`);
    const host = (p.host as string | undefined) ?? DEFAULT_HOST;
    const apiKey = p['api-key'] as string | undefined;
    if (apiKey !== undefined && !apiKey.trim()) throw new UsageError('--api-key is empty');
    const modelId = fs.existsSync(modelArg) ? path.basename(path.resolve(modelArg)) : (parseHubId(modelArg)?.repo ?? modelArg);
    const adapters = adapterFlags((p.adapter as string[] | undefined) ?? [], modelId);
    const quant = quantFrom(p);

    const { be } = createBackend(backendFrom(p), p.device as string | undefined);
    const { model, tokenizer, dir } = openModel(modelArg, be, undefined, quant);
    const session = new GenerationSession(model, tokenizer, { modelDir: dir });
    for (const [name, adapterDir] of adapters) session.loadAdapter(name, adapterDir);
    const server = await startServer(session, { host, port, apiKey, modelId, log: err });

    const names = [...adapters.keys()];
    if (p.json) out(JSON.stringify({ url: server.url, model: modelId, adapters: names }));
    else {
      out(
        `serving ${modelId}${names.length ? ` and ${names.length} adapter(s): ${names.join(', ')}` : ''} on ${server.url} (Ctrl-C stops)`,
      );
      const example = JSON.stringify({ model: names[0] ?? modelId, prompt: 'def fib(n):', max_tokens: 32 });
      const auth = apiKey ? ` -H 'Authorization: Bearer ${apiKey}'` : '';
      out(`  curl ${server.url}/v1/completions -H 'Content-Type: application/json'${auth} -d '${example}'`);
      out(
        `  OpenAI clients: OPENAI_BASE_URL=${server.url}/v1 OPENAI_API_KEY=${apiKey ?? 'none'}   Ollama clients: OLLAMA_HOST=${server.url}`,
      );
    }
    if (!apiKey && !isLoopback(host))
      err(
        `warning: listening on ${host} without --api-key: whoever reaches this machine can use the model and load adapters from its disk`,
      );

    // the first signal stops the server cleanly; a second one, while it stops, ends the process at once
    let stopping = false;
    const signal = await new Promise<string>((resolve) => {
      const on = (name: string) => () => {
        if (stopping) process.exit(130);
        stopping = true;
        resolve(name);
      };
      process.on('SIGINT', on('SIGINT'));
      process.on('SIGTERM', on('SIGTERM'));
    });
    err(`${signal}: stopping`);
    await server.close();
    session.close();
  },
};

/** --adapter NAME=DIR, each name once and none the base model's id */
function adapterFlags(flags: string[], modelId: string): Map<string, string> {
  const adapters = new Map<string, string>();
  for (const f of flags) {
    const eq = f.indexOf('=');
    const [name, dir] = [f.slice(0, eq).trim(), f.slice(eq + 1)];
    if (eq < 1 || !name || !dir) throw new UsageError(`--adapter takes NAME=DIR (the name requests use as "model"), got "${f}"`);
    if (name === modelId) throw new UsageError(`--adapter ${name}: that is the base model's id; choose another name`);
    if (adapters.has(name)) throw new UsageError(`--adapter ${name} is given twice`);
    if (!fs.existsSync(dir)) throw new UserError('adapter folder not found', dir);
    adapters.set(name, dir);
  }
  return adapters;
}

const isLoopback = (host: string) => host === 'localhost' || host === '::1' || host.startsWith('127.');
