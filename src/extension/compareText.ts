/** Compare's document: the prompt completed by the base model and by the adapter. No `vscode` here. */
/** a code fence longer than any inside the text */
const fence = (s: string) => {
  const f = s.includes('```') ? '````' : '```';
  return `${f}\n${s}\n${f}`;
};

export function compareText(prompt: string, base: string, adapted: string, name: string): string {
  return `# Base vs adapter\n\nPrompt: \`${prompt}\`\n\n## Base model\n\n${fence(prompt + base)}\n\n## With ${name}\n\n${fence(prompt + adapted)}\n`;
}
