/** an estimate's error against what was measured, as a signed percentage */
export function pct(est: number, got: number): string {
  if (got === 0) return est === 0 ? '0%' : 'n/a';
  const e = ((est - got) / got) * 100;
  return `${e >= 0 ? '+' : ''}${e.toFixed(1)}%`;
}
