/**
 * Small uPlot charts for the panel, sized to the sidebar, coloured from the VS Code theme. Colours are resolved
 * from the theme's CSS variables when a chart is drawn, and again when the theme changes (`watchTheme`).
 */
import uPlot from 'uplot';

export const MEM_COLORS = [
  'var(--vscode-charts-blue)',
  'var(--vscode-charts-green)',
  'var(--vscode-charts-yellow)',
  'var(--vscode-charts-orange)',
  'var(--vscode-charts-purple)',
];

/** a CSS colour (possibly a var()) as the canvas can use it, from the current theme */
export function css(color: string): string {
  const m = /^var\((--[^)]+)\)$/.exec(color);
  if (!m) return color;
  return (
    getComputedStyle(document.body).getPropertyValue(m[1]).trim() ||
    getComputedStyle(document.documentElement).getPropertyValue(m[1]).trim() ||
    '#888'
  );
}

const FONT_PX = 11;
const font = () => `${FONT_PX}px ${getComputedStyle(document.body).fontFamily || 'sans-serif'}`;
let measurer: CanvasRenderingContext2D | null = null;
/** the width in CSS pixels of the widest label */
function labelWidth(labels: string[]): number {
  measurer ??= document.createElement('canvas').getContext('2d');
  if (!measurer) return labels.reduce((a, l) => Math.max(a, l.length * FONT_PX * 0.6), 0);
  measurer.font = font();
  return labels.reduce((a, l) => Math.max(a, measurer!.measureText(l).width), 0);
}

export interface SeriesSpec {
  label: string;
  color: string;
  fill?: boolean;
  points?: boolean;
}

export interface ChartOptions {
  /** y tick labels */
  format?: (v: number) => string;
  /** y ticks and the axis top: [0, top] with these ticks (e.g. round binary steps for bytes) */
  ticks?: (max: number) => { top: number; ticks: number[] };
}

export class Chart {
  readonly root: HTMLElement;
  private plot: uPlot | null = null;
  private data: uPlot.AlignedData = [[]];
  private head: HTMLElement;

  constructor(
    id: string,
    title: string,
    private series: SeriesSpec[],
    private opts: ChartOptions = {},
  ) {
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
    const { format, ticks } = this.opts;
    const fg = css('var(--vscode-foreground)');
    this.root.dataset.axisColor = fg; // what the axes are drawn with: the tests compare it with the theme
    this.root.dataset.seriesColors = this.series.map((s) => css(s.color)).join(' ');
    const axis = {
      stroke: fg,
      font: font(),
      grid: { stroke: css('var(--vscode-editorWidget-border)'), width: 0.5 },
      ticks: { show: false },
    };
    const yValues = (_u: uPlot, vs: number[]) => {
      const labels = vs.map((v) => (format ? format(v) : String(Number(v.toPrecision(6)))));
      this.root.dataset.yLabels = labels.join('|');
      return labels;
    };
    // wide enough for the widest label, so "976.6 KiB" is never cut to "6.6 KiB"
    const ySize = (_u: uPlot, values: string[] | null) => {
      const size = Math.ceil(labelWidth(values ?? [])) + 12;
      this.root.dataset.ySize = String(size);
      this.root.dataset.yLabelWidth = String(Math.ceil(labelWidth(values ?? [])));
      return Math.max(24, size);
    };
    const y: uPlot.Axis = { ...axis, size: ySize, values: yValues };
    const scaleY: uPlot.Scale = {};
    if (ticks) {
      y.splits = (u: uPlot) => ticks(u.scales.y.max ?? 0).ticks;
      scaleY.range = (_u: uPlot, _min: number, max: number) => [0, ticks(max).top];
    }
    return new uPlot(
      {
        ...this.size(),
        legend: { show: true, live: false },
        cursor: { show: false },
        scales: { x: { time: false }, y: scaleY },
        axes: [axis, y],
        series: [
          {},
          ...this.series.map((s) => ({
            label: s.label,
            stroke: css(s.color),
            width: 1.5,
            fill: s.fill ? css(s.color) + '55' : undefined,
            points: { show: !!s.points, size: 5 },
            spanGaps: !!s.points,
          })),
        ],
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

  /** the theme changed: draw again with its colours (uPlot keeps the colours it was made with) */
  recolor(): void {
    if (!this.plot) return;
    this.plot.destroy();
    this.plot = this.make();
  }
}

/**
 * Call `onChange` when VS Code switches the theme: it sets body's class (vscode-light, vscode-dark,
 * vscode-high-contrast, …) and the --vscode-* variables in the html element's style.
 */
export function watchTheme(onChange: () => void): void {
  let pending = false;
  const fire = () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      onChange();
    });
  };
  const mo = new MutationObserver(fire);
  mo.observe(document.body, { attributes: true, attributeFilter: ['class', 'data-vscode-theme-id'] });
  mo.observe(document.documentElement, { attributes: true, attributeFilter: ['style', 'class'] });
}
