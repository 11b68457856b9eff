/**
 * An Ollama Modelfile for an exported base GGUF and LoRA GGUF: FROM, ADAPTER, and a TEMPLATE in Go template syntax
 * made from the model's Jinja chat template when that template is a plain concatenation of one fixed text around
 * each message (ChatML, Llama 3 and most others); otherwise a note says why there is none and Ollama falls back
 * to the template it reads from the GGUF.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Template } from '@huggingface/jinja';
import { UserError } from '../../core/errors';
import { readJson, writeFileAtomic } from '../../core/fsx';
import { chatTemplateOf } from '../../formats/gguf-vocab';
import { tokenText } from '../../formats/tokenizer';
import { readAdapterConfig } from '../../formats/lora-config';
import { GgufExportReport, GgufTypeName, exportAdapterGguf, exportModelGguf } from './gguf';

export interface Modelfile {
  text: string;
  /** why the TEMPLATE is missing, when it is */
  note?: string;
}

const ROLES = ['system', 'user', 'assistant'] as const;
type Role = (typeof ROLES)[number];

/**
 * The text around each role's content and the generation prompt, found by rendering the template on marker
 * messages, or a reason why the template is not that simple. The result is checked by rendering a longer
 * conversation both ways.
 */
export function chatTemplateParts(
  source: string,
  specials: { bos_token?: string; eos_token?: string } = {},
): { head: string; around: Record<Role, [string, string]>; generation: string } | string {
  let tpl: Template;
  try {
    tpl = new Template(source);
  } catch (e) {
    return `the chat template does not parse (${String((e as Error)?.message ?? e).split('\n')[0]})`;
  }
  const render = (messages: { role: string; content: string }[], gen: boolean) =>
    tpl.render({ messages, add_generation_prompt: gen, bos_token: specials.bos_token ?? '', eos_token: specials.eos_token ?? '' });
  try {
    const marker = (i: number) => `LORAKITMARKER${i}X`;
    const conv: { role: Role; content: string }[] = [
      { role: 'system', content: marker(0) },
      { role: 'user', content: marker(1) },
      { role: 'assistant', content: marker(2) },
      { role: 'user', content: marker(3) },
      { role: 'assistant', content: marker(4) },
      { role: 'user', content: marker(5) },
    ];
    const full = render(conv, false);
    // the pieces between markers: head + pre(system), then suf(system) + pre(user), …
    const pieces: string[] = [];
    let at = 0;
    for (let i = 0; i < conv.length; i++) {
      const j = full.indexOf(marker(i), at);
      if (j < 0) return 'the chat template changes or drops message contents';
      pieces.push(full.slice(at, j));
      at = j + marker(i).length;
    }
    const tail = full.slice(at);
    const generation = render(conv, true).slice(full.length);
    if (!render(conv, true).startsWith(full)) return 'the generation prompt is not appended at the end';
    // head + pre(system) is pieces[0]; the system's suffix is what is left of pieces[1] before pre(user) …
    // what comes before any message (a BOS token, say); a template that refuses no messages has none
    let head = '';
    try {
      head = render([], false);
    } catch {
      head = '';
    }
    const preUser = render([{ role: 'user', content: marker(1) }], false);
    const k = preUser.indexOf(marker(1));
    if (!pieces[0].startsWith(head) || !preUser.startsWith(head))
      return 'the chat template writes a different beginning for different conversations';
    const around = {} as Record<Role, [string, string]>;
    around.user = [preUser.slice(head.length, k), tail];
    around.system = [pieces[0].slice(head.length), pieces[1].slice(0, pieces[1].length - around.user[0].length)];
    const preAssistant = pieces[2].slice(around.user[1].length);
    around.assistant = [preAssistant, pieces[3].slice(0, pieces[3].length - around.user[0].length)];
    // the parts must rebuild the template's own output on other conversations
    const check = (msgs: { role: Role; content: string }[], gen: boolean) =>
      head + msgs.map((m) => around[m.role][0] + m.content + around[m.role][1]).join('') + (gen ? generation : '');
    const trials: { role: Role; content: string }[][] = [conv, conv.slice(1), conv.slice(1, 4), conv.slice(0, 2)];
    for (const msgs of trials)
      for (const gen of [false, true])
        if (render(msgs, gen) !== check(msgs, gen)) return 'the chat template is not a plain concatenation of messages';
    return { head, around, generation };
  } catch (e) {
    return `the chat template fails on a plain conversation (${String((e as Error)?.message ?? e).split('\n')[0]})`;
  }
}

/** literal text inside a Go template: everything but the action delimiter is taken as is */
const goText = (s: string) => s.replaceAll('{{', '{{ "{{" }}');

/** The Go template Ollama renders: each message in its role's text, and the generation prompt after a last
 * message that is not the assistant's. */
export function goTemplate(p: { head: string; around: Record<Role, [string, string]>; generation: string }): string {
  const branch = (r: Role) => `${goText(p.around[r][0])}{{ .Content }}${goText(p.around[r][1])}`;
  return (
    `${goText(p.head)}{{ range $i, $m := .Messages }}` +
    `{{ if eq $m.Role "system" }}${branch('system')}{{ else if eq $m.Role "user" }}${branch('user')}{{ else }}${branch('assistant')}{{ end }}` +
    `{{ if and (eq (len (slice $.Messages $i)) 1) (ne $m.Role "assistant") }}${goText(p.generation)}{{ end }}{{ end }}`
  );
}

/** A Modelfile naming the GGUF files by their paths relative to the Modelfile's folder. */
export function makeModelfile(o: {
  dir: string;
  base: string;
  adapter?: string;
  chatTemplate?: string;
  specials?: { bos_token?: string; eos_token?: string };
  /** the GGUF adds BOS itself, so a template's leading BOS is left out */
  addsBos?: boolean;
}): Modelfile {
  const rel = (f: string) => {
    const r = path.relative(o.dir, f);
    return r.startsWith('..') ? f : `./${r}`;
  };
  const lines = [`FROM ${rel(o.base)}`];
  if (o.adapter) lines.push(`ADAPTER ${rel(o.adapter)}`);
  let note: string | undefined;
  if (o.chatTemplate === undefined) note = 'the model has no chat template';
  else {
    const parts = chatTemplateParts(o.chatTemplate, o.specials);
    if (typeof parts === 'string') note = parts;
    else {
      if (o.addsBos && o.specials?.bos_token && parts.head.startsWith(o.specials.bos_token))
        parts.head = parts.head.slice(o.specials.bos_token.length);
      lines.push(`TEMPLATE """${goTemplate(parts).replaceAll('"""', '\\"\\"\\"')}"""`);
      const stop = parts.around.assistant[1].trim();
      if (stop) lines.push(`PARAMETER stop ${JSON.stringify(stop)}`);
    }
  }
  if (note)
    lines.push(
      `# No TEMPLATE: ${note}, so it was not converted to Go template syntax.`,
      '# Ollama reads the chat template stored in the GGUF (tokenizer.chat_template) when it recognises it; else write one.',
    );
  return { text: lines.join('\n') + '\n', note };
}

export interface OllamaExportOptions {
  adapter: string;
  /** the base model folder; by default the adapter's base_model_name_or_path */
  model?: string;
  /** the folder for the two GGUF files and the Modelfile; `<adapter>-gguf` beside the adapter by default */
  outDir?: string;
  type?: GgufTypeName;
  onTensor?: (name: string, i: number, n: number) => void;
}

export interface OllamaExportReport {
  outDir: string;
  model: GgufExportReport;
  adapter: GgufExportReport;
  modelfile: string;
  /** why the Modelfile has no TEMPLATE, when it has none */
  templateNote?: string;
  /** the command that makes an Ollama model of it */
  ollamaCreate: string;
}

/** The base and the adapter as GGUF files side by side, with a Modelfile that puts them together for Ollama. */
export function exportForOllama(o: OllamaExportOptions): OllamaExportReport {
  const cfg = readAdapterConfig(o.adapter);
  const model = o.model ?? cfg.baseModel;
  if (!model || !fs.existsSync(path.join(model, 'config.json')))
    throw new UserError('the base model is needed too: pass its folder with --model', path.join(o.adapter, 'adapter_config.json'));
  const name = path.basename(path.resolve(o.adapter));
  const outDir = path.resolve(o.outDir ?? `${path.resolve(o.adapter)}-gguf`);
  if (fs.existsSync(outDir) && !fs.statSync(outDir).isDirectory())
    throw new UserError('--out must be a folder here (it holds two GGUF files and a Modelfile)', outDir);
  const type = o.type ?? 'f16';
  const base = exportModelGguf({
    model,
    type,
    out: path.join(outDir, `${path.basename(path.resolve(model))}-${type}.gguf`),
    onTensor: o.onTensor,
  });
  const adapter = exportAdapterGguf({ adapter: o.adapter, model, out: path.join(outDir, `${name}-lora.gguf`), onTensor: o.onTensor });
  const tc = fs.existsSync(path.join(model, 'tokenizer_config.json')) ? readJson(path.join(model, 'tokenizer_config.json')) : {};
  const mf = makeModelfile({
    dir: outDir,
    base: base.out,
    adapter: adapter.out,
    chatTemplate: chatTemplateOf(tc),
    specials: { bos_token: tokenText(tc.bos_token), eos_token: tokenText(tc.eos_token) },
    addsBos: tc.add_bos_token === true,
  });
  const modelfile = path.join(outDir, 'Modelfile');
  writeFileAtomic(modelfile, mf.text);
  const tag = path
    .basename(outDir)
    .replace(/-gguf$/, '')
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-');
  return {
    outDir,
    model: base,
    adapter,
    modelfile,
    templateNote: mf.note,
    ollamaCreate: `ollama create ${tag} -f ${JSON.stringify(modelfile)}`,
  };
}
