/** Axis ticks for byte values: steps that are round in binary units (256 KiB, 1 MiB, 4 GiB, …). No DOM here. */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** the power-of-two step that gives at most `maxTicks` intervals over [0, max] */
export function binaryStep(max: number, maxTicks = 4): number {
  if (!(max > 0)) return 1;
  return 2 ** Math.max(0, Math.ceil(Math.log2(max / maxTicks)));
}

/** the top of the axis: `max` rounded up to a whole step */
export function binaryCeil(max: number, maxTicks = 4): number {
  const step = binaryStep(max, maxTicks);
  return Math.max(step, Math.ceil(max / step) * step);
}

/** ticks 0, step, 2·step, … up to `max` */
export function binaryTicks(max: number, maxTicks = 4): number[] {
  const step = binaryStep(max, maxTicks);
  const out: number[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) out.push(v);
  return out;
}

/** a tick's label with as many decimals as it needs (at most 2): "768 KiB", "1.25 MiB", "2 GiB" */
export function binaryLabel(n: number): string {
  let i = 0;
  while (Math.abs(n) >= 1024 && i < UNITS.length - 1) {
    n /= 1024;
    i++;
  }
  return `${Number(n.toFixed(2))} ${UNITS[i]}`;
}
