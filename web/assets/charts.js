// Our own small SVG charts: horizontal bars (p50 and p95 per category against an SLA mark, with
// exemplar points that open their trace) and lines over time. Why not a chart library: these are
// a few bars and lines; a library would need a build step or a vendored copy, inline styles the
// CSP forbids, and more code than this file. Scales and chart models live in scales.js (pure,
// unit-tested); this module only draws.
import { svg, h } from './dom.js';
import { linearScale, niceTicks, durationTicks, barMax, linePath, fitLabel } from './scales.js';
import { formatDuration, formatUtc } from './format.js';

// Charts are drawn at their natural width (1 SVG unit = 1 CSS px, never scaled up), so text stays
// at its CSS size; narrower screens scroll the chart sideways.
const WIDTH = 760;
const RIGHT_PAD = 24;
const ROW_H = 44;
const TOP = 26;

// rows: from scales.barSeries. options: {title, mode: 'absolute'|'sla', onOpen(traceId), testid}.
// In 'sla' mode every row is drawn as a share of its own SLA (100% = the SLA), so stages of
// seconds and of hours compare on one axis; a row without SLA falls back to its own p95 scale.
export function barChart(rows, { title, mode = 'absolute', onOpen, testid, emptyText = 'No observations yet.', width = WIDTH, labelWidth = 240 } = {}) {
  const WIDTH = width;
  const LABEL_W = labelWidth;
  const figure = h('figure', { class: 'chart', testid });
  figure.append(h('figcaption', null, title));
  if (!rows.length) return emptyChart(figure, emptyText, width);
  const height = TOP + rows.length * ROW_H + 8;
  const plotX0 = LABEL_W;
  const plotX1 = WIDTH - RIGHT_PAD;
  let domainMax;
  let valueOf;
  if (mode === 'sla') {
    const shares = rows.flatMap((r) => (r.sla ? [r.p95, r.p50, ...r.exemplars.map((e) => e.value)].filter((v) => v !== null).map((v) => v / r.sla) : []));
    domainMax = Math.min(3, Math.max(1.2, ...shares) * 1.05);
    valueOf = (r, v) => (r.sla ? v / r.sla : null);
  } else {
    domainMax = barMax(rows) * 1.08 || 1;
    valueOf = (_r, v) => v;
  }
  const x = linearScale([0, domainMax], [plotX0, plotX1]);
  const clampX = (v) => Math.min(plotX1, x(v));
  const root = svg('svg', { viewBox: `0 0 ${WIDTH} ${height}`, class: 'chart-svg', role: 'img', 'aria-label': `${title}: ${rows.length} rows; details in the table below` });

  // Grid and axis labels.
  const ticks = mode === 'sla' ? niceTicks(0, domainMax, 5) : durationTicks(domainMax, WIDTH < 700 ? 4 : 6);
  for (const t of ticks) {
    if (t > domainMax) continue;
    const tx = x(t);
    root.append(svg('line', { x1: tx, x2: tx, y1: TOP - 6, y2: height - 8, class: 'grid' }));
    root.append(svg('text', { x: tx, y: TOP - 10, class: 'tick', 'text-anchor': 'middle' }, mode === 'sla' ? `${Math.round(t * 100)}%` : formatDuration(t)));
  }
  if (mode === 'sla') {
    const sx = x(1);
    root.append(svg('line', { x1: sx, x2: sx, y1: TOP - 6, y2: height - 8, class: 'sla-line' }));
  }

  rows.forEach((r, i) => {
    const y = TOP + i * ROW_H;
    const g = svg('g', { class: 'bar-row' });
    // Long names (two stage names and an arrow) are cut to the label column, whole in the title.
    const shown = fitLabel(r.category, LABEL_W - 16);
    const label = svg('text', { x: 8, y: y + 16, class: 'cat' }, shown);
    if (shown !== r.category) label.append(svg('title', null, r.category));
    g.append(label);
    // The SLA is in the text when the bars are shares of it; else it is the red mark.
    const values = `p50 ${formatDuration(r.p50)} · p95 ${formatDuration(r.p95)}${mode === 'sla' && r.sla !== null ? ` · SLA ${formatDuration(r.sla)}` : ''} · n=${r.count}`;
    g.append(svg('text', { x: 8, y: y + 32, class: 'sub' }, values));
    const ownMax = mode === 'sla' && !r.sla ? Math.max(r.p95 ?? 0, r.p50 ?? 0) : null;
    const pos = (v) => {
      if (v === null) return null;
      if (ownMax) return clampX((v / ownMax) * Math.min(1, domainMax * 0.8));
      return clampX(valueOf(r, v));
    };
    const over = r.sla !== null && r.p95 !== null && r.p95 > r.sla;
    const p95x = pos(r.p95);
    const p50x = pos(r.p50);
    if (p95x !== null) g.append(svg('rect', { x: plotX0, y: y + 8, width: Math.max(1, p95x - plotX0), height: 22, class: over ? 'bar p95 over' : 'bar p95' }, svg('title', null, `p95 ${formatDuration(r.p95)}`)));
    if (p50x !== null) g.append(svg('rect', { x: plotX0, y: y + 13, width: Math.max(1, p50x - plotX0), height: 12, class: 'bar p50' }, svg('title', null, `p50 ${formatDuration(r.p50)}`)));
    if (r.sla !== null && mode !== 'sla') {
      const sx = clampX(r.sla);
      g.append(svg('line', { x1: sx, x2: sx, y1: y + 3, y2: y + 35, class: 'sla-mark' }, svg('title', null, `SLA ${formatDuration(r.sla)}`)));
    }
    for (const e of r.exemplars) {
      const ex = pos(e.value);
      if (ex === null) continue;
      const label = `Exemplar: ${r.category}, ${formatDuration(e.value)}${e.at ? ' at ' + formatUtc(Date.parse(e.at)) : ''}; open trace ${e.traceId}`;
      const dot = svg('circle', { cx: ex, cy: y + 19, r: 6, class: 'exemplar', tabindex: 0, role: 'link', 'aria-label': label, testid: 'exemplar-point', 'data-trace-id': e.traceId },
        svg('title', null, label));
      const open = () => onOpen && onOpen(e.traceId);
      dot.addEventListener('click', open);
      dot.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter' || ev.key === ' ') {
          ev.preventDefault();
          open();
        }
      });
      g.append(dot);
    }
    root.append(g);
  });
  root.style.maxWidth = `${WIDTH}px`;
  root.style.minWidth = `${Math.min(WIDTH, 560)}px`;
  figure.append(h('div', { class: 'chart-scroll' }, root));
  figure.append(dataTable(['', 'p50', 'p95', 'SLA', 'count'], rows.map((r) => [r.category, formatDuration(r.p50), formatDuration(r.p95), r.sla === null ? '—' : formatDuration(r.sla), String(r.count)])));
  return figure;
}

// series: [{key, label, cls, points:[{t, v}]}] from scales.timeSeries.
export function lineChart(series, { title, testid, stepSeconds, width = WIDTH } = {}) {
  const WIDTH = width;
  const figure = h('figure', { class: 'chart', testid });
  figure.append(h('figcaption', null, title));
  const all = series.flatMap((s) => s.points);
  if (!all.length) return emptyChart(figure, 'No points yet.', width);
  const height = 240;
  const x0 = 48;
  const x1 = WIDTH - RIGHT_PAD;
  const y0 = height - 28;
  const y1 = 16;
  const tMin = Math.min(...all.map((p) => p.t));
  const tMax = Math.max(...all.map((p) => p.t));
  const vMax = Math.max(1, ...all.map((p) => p.v));
  const yTicks = niceTicks(0, vMax, 4);
  const x = linearScale([tMin, tMax], [x0, x1]);
  const y = linearScale([0, yTicks[yTicks.length - 1]], [y0, y1]);
  const root = svg('svg', { viewBox: `0 0 ${WIDTH} ${height}`, class: 'chart-svg', role: 'img', 'aria-label': `${title}; the numbers are in the table below` });
  for (const t of yTicks) {
    root.append(svg('line', { x1: x0, x2: x1, y1: y(t), y2: y(t), class: 'grid' }));
    root.append(svg('text', { x: x0 - 6, y: y(t) + 4, class: 'tick', 'text-anchor': 'end' }, String(t)));
  }
  const xTickCount = 5;
  // Minutes when the range is long, seconds when it is short; the date when it spans days.
  const span = tMax - tMin;
  const clock = (t) => {
    const iso = new Date(t).toISOString();
    if (span > 2 * 86_400_000) return iso.slice(5, 16).replace('T', ' ');
    return span < 15 * 60_000 ? iso.slice(11, 19) : iso.slice(11, 16);
  };
  for (let i = 0; i <= xTickCount; i++) {
    const t = tMin + (span * i) / xTickCount;
    root.append(svg('text', { x: x(t), y: height - 8, class: 'tick', 'text-anchor': i === 0 ? 'start' : i === xTickCount ? 'end' : 'middle' }, clock(t)));
  }
  for (const s of series) {
    const pts = s.points.map((p) => ({ x: x(p.t), y: y(p.v) }));
    root.append(svg('path', { d: linePath(pts), class: `line ${s.cls}` }));
    s.points.forEach((p, i) => {
      if (p.v > 0) root.append(svg('circle', { cx: pts[i].x, cy: pts[i].y, r: 2.5, class: `dot ${s.cls}` }, svg('title', null, `${s.label}: ${p.v} at ${formatUtc(p.t)}`)));
    });
  }
  root.style.maxWidth = `${WIDTH}px`;
  figure.append(h('ul', { class: 'legend-list' }, series.map((s) => h('li', null, h('span', { class: `swatch ${s.cls}`, 'aria-hidden': 'true' }), s.label))));
  figure.append(h('div', { class: 'chart-scroll' }, root));
  figure.append(h('p', { class: 'muted small' }, `UTC; one point per ${formatDuration(stepSeconds || 60)}.`));
  const times = [...new Set(all.map((p) => p.t))].sort((a, b) => a - b);
  figure.append(dataTable(['time (UTC)', ...series.map((s) => s.label)], times.map((t) => [formatUtc(t), ...series.map((s) => String(s.points.find((p) => p.t === t)?.v ?? 0))])));
  return figure;
}

// An empty frame, so every chart has its SVG even before the first observation.
function emptyChart(figure, text, width = WIDTH) {
  figure.append(h('div', { class: 'chart-scroll' }, svg('svg', { viewBox: `0 0 ${width} 60`, class: 'chart-svg empty', role: 'img', 'aria-label': text },
    svg('rect', { x: 0.5, y: 0.5, width: width - 1, height: 59, class: 'frame' }),
    svg('text', { x: width / 2, y: 35, 'text-anchor': 'middle', class: 'tick' }, text))));
  return figure;
}

function dataTable(head, rows) {
  return h('details', { class: 'chart-table' }, h('summary', null, 'Show the numbers'),
    h('div', { class: 'table-wrap' }, h('table', { class: 'list compact' },
      h('thead', null, h('tr', null, head.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, rows.map((r) => h('tr', null, r.map((c, i) => (i === 0 ? h('th', { scope: 'row' }, c) : h('td', null, c)))))))));
}
