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
  private head: HTMLElement;

  constructor(id: string, title: string, private series: SeriesSpec[], private opts: { format?: (v: number) => string } = {}) {
    this.root = document.createElement('div');
    this.root.id = id;
    this.root.className = 'chart';
    this.root.dataset.points = '0';
    const h = (this.head = document.createElement('div'));
    h.className = 'chart-title';
    h.textContent = title;
    this.root.append(h);
    new ResizeObserver(() => this.plot?.setSize(this.size())).observe(this.root);
  }

  private size() {
    return { width: Math.max(160, this.root.clientWidth - 4), height: 120 };
  }

  private make(): uPlot {
    const fmt = this.opts.format;
    const axis = { stroke: css('var(--vscode-foreground)'), grid: { stroke: css('var(--vscode-editorWidget-border)'), width: 0.5 }, ticks: { show: false } };
    // stacked fills: draw the top (cumulative) series first so lower ones paint over it
    const order = this.series.map((_, i) => i);
    return new uPlot(
      {
        ...this.size(),
        legend: { show: true, live: false },
        cursor: { show: false },
        scales: { x: { time: false } },
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

  title(t: string): void {
    this.head.textContent = t;
  }

  /** new data: [x, ...one array per series] */
  set(data: (number | null)[][]): void {
    this.data = data as uPlot.AlignedData;
    this.root.dataset.points = String(data[0].length);
    if (data[0].length === 0) return;
    if (!this.plot) this.plot = this.make();
    else this.plot.setData(this.data);
  }
}
