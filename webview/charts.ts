/** Small uPlot charts for the panel, sized to the sidebar, coloured from the VS Code theme. */
import uPlot from 'uplot';

export const MEM_COLORS = ['var(--vscode-charts-blue)', 'var(--vscode-charts-green)', 'var(--vscode-charts-yellow)', 'var(--vscode-charts-orange)', 'var(--vscode-charts-purple)'];

/** a CSS colour (possibly a var()) as the canvas can use it */
function css(color: string): string {
  const m = /^var\((--[^)]+)\)$/.exec(color);
  if (!m) return color;
  return getComputedStyle(document.body).getPropertyValue(m[1]).trim() || '#888';
}

export interface SeriesSpec {
  label: string;
  color: string;
  fill?: boolean;
  points?: boolean;
}

export class Chart {
  readonly root: HTMLElement;
  private plot: uPlot | null = null;
  private data: uPlot.AlignedData = [[]];
  private cap?: number;

  constructor(id: string, title: string, private series: SeriesSpec[], private opts: { bytes?: boolean } = {}) {
    this.root = document.createElement('div');
    this.root.id = id;
    this.root.className = 'chart';
    this.root.dataset.points = '0';
    const h = document.createElement('div');
    h.className = 'chart-title';
    h.textContent = title;
    this.root.append(h);
    new ResizeObserver(() => this.plot?.setSize(this.size())).observe(this.root);
  }

  private size() {
    return { width: Math.max(160, this.root.clientWidth - 4), height: 140 };
  }

  private make(): uPlot {
    const fmt = this.opts.bytes ? (v: number) => `${(v / 2 ** 20).toFixed(0)}M` : undefined;
    const axis = { stroke: css('var(--vscode-foreground)'), grid: { stroke: css('var(--vscode-editorWidget-border)'), width: 0.5 }, ticks: { show: false } };
    // stacked fills: draw the top (cumulative) series first so lower ones paint over it
    const order = this.series.map((_, i) => i);
    return new uPlot(
      {
        ...this.size(),
        legend: { show: true, live: false },
        cursor: { show: false },
        scales: { x: { time: false }, y: this.cap ? { range: (_u, min, max) => [Math.min(0, min), Math.max(max, this.cap!)] } : {} },
        axes: [axis, { ...axis, size: 48, ...(fmt ? { values: (_u: uPlot, vs: number[]) => vs.map(fmt) } : {}) }],
        series: [{}, ...order.map((i) => {
          const s = this.series[i];
          return { label: s.label, stroke: css(s.color), width: 1.5, fill: s.fill ? css(s.color) + '55' : undefined, points: { show: !!s.points, size: 5 }, spanGaps: !!s.points };
        })],
      },
      this.data,
      this.root,
    );
  }

  /** new data: [x, ...one array per series]; `cap` draws the y range up to a capacity (memory) */
  set(data: (number | null)[][], _extra?: unknown, cap?: number): void {
    this.data = data as uPlot.AlignedData;
    this.cap = cap;
    this.root.dataset.points = String(data[0].length);
    if (data[0].length === 0) return;
    if (!this.plot) this.plot = this.make();
    else this.plot.setData(this.data);
  }
}
