// Charts from ordertrace's own figures (/api/v1/charts), so no Prometheus is needed: stage
// durations p50/p95 against their SLA, price calculation by complexity class, publish-to-consume
// latency by queue, and gaps and errors over time. A partner sees its own SLA figures instead.
import { apiGet, ApiError } from '../api.js';
import { h, loading, errorBox, section, timeAgo } from '../dom.js';
import * as fmt from '../format.js';
import { barSeries, timeSeries } from '../scales.js';
import { barChart, lineChart } from '../charts.js';

// The lifecycle's statuses in order, as /api/v1/charts names them (set by render).
let stageOrder = [];
const CLASS_ORDER = ['low', 'simple', 'medium', 'high', 'complex', 'very_complex', 'extreme'];

function histogram(charts, name) {
  return (charts.histograms || []).find((x) => x.name === name) || null;
}

function stageRank(label) {
  const i = stageOrder.indexOf(label.split(' → ')[0]);
  return i < 0 ? 99 : i;
}

async function partnerView(ctx) {
  ctx.root.append(h('h1', null, 'Your SLA figures'));
  const box = h('div', null, loading());
  ctx.root.append(box);
  let report;
  try {
    report = await apiGet('/api/v1/sla', { signal: ctx.signal });
  } catch (e) {
    if (e.name === 'AbortError') return;
    box.replaceChildren(errorBox(e, 'your SLA figures'));
    return;
  }
  const now = ctx.now();
  const stages = (report.stages || []).filter((s) => s.completed > 0 || s.current > 0);
  const rows = stages.map((s) => ({
    category: s.stage, labels: {}, count: s.completed, p50: s.completed ? s.p50_seconds : null, p95: s.completed ? s.p95_seconds : null,
    sla: s.sla_seconds ?? null, exemplars: [],
  }));
  box.replaceChildren(h('section', { class: 'card', testid: 'partner-sla', 'aria-labelledby': 'h-psla' },
    h('h2', { id: 'h-psla' }, `Partner ${report.partner_id || ctx.session?.partner_id || ''}: ${report.orders} order${report.orders === 1 ? '' : 's'}`),
    h('p', { class: 'muted' }, 'As of ', timeAgo(fmt.isoToMs(report.as_of), now, fmt), report.truncated ? ' (the newest orders only)' : ''),
    barChart(rows, { title: 'Time in each stage, p50 and p95, as a share of its SLA', mode: 'sla', width: 1000, labelWidth: 300 }),
    h('div', { class: 'table-wrap' }, h('table', { class: 'list' },
      h('thead', null, h('tr', null, ['Stage', 'SLA', 'Completed', 'Within SLA', 'p50', 'p95', 'Max', 'In it now', 'Over SLA now'].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, (report.stages || []).map((s) => h('tr', { 'data-stage': s.stage },
        h('th', { scope: 'row', 'data-label': 'Stage' }, s.stage),
        h('td', { 'data-label': 'SLA' }, s.sla_seconds === null || s.sla_seconds === undefined ? '—' : fmt.formatDuration(s.sla_seconds)),
        h('td', { 'data-label': 'Completed' }, String(s.completed)),
        h('td', { 'data-label': 'Within SLA' }, s.completed ? `${s.completed_within_sla} (${Math.round((100 * s.completed_within_sla) / s.completed)}%)` : '—'),
        h('td', { 'data-label': 'p50' }, s.completed ? fmt.formatDuration(s.p50_seconds) : '—'),
        h('td', { 'data-label': 'p95' }, s.completed ? fmt.formatDuration(s.p95_seconds) : '—'),
        h('td', { 'data-label': 'Max' }, s.completed ? fmt.formatDuration(s.max_seconds) : '—'),
        h('td', { 'data-label': 'In it now' }, String(s.current)),
        h('td', { 'data-label': 'Over SLA now', class: s.current_over_sla ? 'bad' : null }, String(s.current_over_sla)))))))));
}

export async function render(ctx) {
  if (ctx.session?.may && ctx.session.may.charts === false) return partnerView(ctx);
  const box = h('div', null, loading('Loading charts…'));
  ctx.root.append(h('h1', null, 'Charts'), box);
  let charts;
  try {
    charts = await apiGet('/api/v1/charts', { signal: ctx.signal });
    stageOrder = charts.stages || [];
  } catch (e) {
    if (e.name === 'AbortError') return;
    if (e instanceof ApiError && e.status === 403) {
      ctx.root.replaceChildren();
      return partnerView(ctx);
    }
    box.replaceChildren(errorBox(e, 'the charts'));
    return;
  }
  const open = (traceId) => ctx.navigate(`/traces/${traceId}`);
  const sla = charts.sla_seconds || {};
  const stageSla = sla.stages || {};
  const stageRows = barSeries(histogram(charts, 'stage_duration_seconds'), {
    labelOf: (l) => (l.to_status ? `${l.from_status} → ${l.to_status}` : l.from_status || '(all)'),
    slaOf: (l) => stageSla[l.from_status] ?? null,
  }).sort((a, b) => stageRank(a.category) - stageRank(b.category) || a.category.localeCompare(b.category));
  const priceRows = barSeries(histogram(charts, 'price_calc_duration_seconds'), {
    labelOf: (l) => l.complexity_class || '(unclassified)',
    slaOf: () => sla.price_calc ?? null,
    order: CLASS_ORDER,
  });
  const queueRows = barSeries(histogram(charts, 'publish_to_consume_latency_seconds'), {
    labelOf: (l) => l.queue || '(no queue)',
    slaOf: () => sla.message ?? null,
  });
  const lines = timeSeries(charts.over_time, ['gaps_detected', 'open_gaps', 'order_errors']);
  const labels = { gaps_detected: 'gaps opened', open_gaps: 'open gaps', order_errors: 'order errors' };
  const now = ctx.now();
  box.replaceChildren(
    h('p', { class: 'lead' }, 'From ordertrace\u2019s own figures, as of ', timeAgo(fmt.isoToMs(charts.as_of), now, fmt),
      '. A dot is an exemplar: a real order at that value; click it or press Enter to open its trace.'),
    section('Stage durations against their SLA', null,
      barChart(stageRows, { title: 'Time from one status to the next: p50 (dark) and p95 (light), as a share of the stage SLA (100% line)', mode: 'sla', onOpen: open, testid: 'chart-stage-duration', width: 1200, labelWidth: 400 })),
    h('div', { class: 'two-col' },
      section('Price calculation', null,
        barChart(priceRows, { title: `By complexity class${sla.price_calc ? `; SLA ${fmt.formatDuration(sla.price_calc)} (red mark)` : ''}`, onOpen: open, testid: 'chart-price-calc', width: 580, labelWidth: 250 })),
      section('RabbitMQ: publish to consume', null,
        barChart(queueRows, { title: `Latency by queue${sla.message ? `; a message may wait ${fmt.formatDuration(sla.message)} (red mark)` : ''}`, onOpen: open, testid: 'chart-queue-latency', width: 580, labelWidth: 250 }))),
    section('Gaps and errors over time', null,
      lineChart(lines.map((l, i) => ({ ...l, label: labels[l.key], cls: `s${i}` })), {
        title: 'Gaps opened and order errors per step; open gaps at each step', testid: 'chart-over-time', stepSeconds: charts.over_time?.step_seconds, width: 1200,
      })));
}
