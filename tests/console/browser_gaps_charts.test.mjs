// /gaps and /charts against the whole system run.sh started: the stuck orders and the
// count per stage as GET /api/v1/gaps?state=open says, the filters in the URL, the charts drawn
// from GET /api/v1/charts, and an exemplar point that opens its trace (by click and by keyboard).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  apiJson, assertNoProblems, attrList, checked, gotoConsole, launchBrowser, openGaps, openPage,
  system, tabTo, tid, traceSpans,
} from './harness.mjs';

async function gapRows(page) {
  return page.locator(`${tid('gaps-table')} ${tid('gap-row')}`).evaluateAll((els) => els.map((e) => ({
    order: e.getAttribute('data-order-id'),
    stage: e.getAttribute('data-stage'),
    kind: e.getAttribute('data-gap-kind'),
    links: [...e.querySelectorAll('a[href]')].map((a) => new URL(a.href).pathname),
  })));
}

const gapKey = (g) => `${g.order ?? g.order_id}|${g.stage}|${g.kind}`;

describe('stuck orders and charts', () => {
  let browser;
  let page;

  before(async () => {
    browser = await launchBrowser();
    page = await openPage(browser);
  });
  after(async () => {
    await browser?.close();
  });

  test('/gaps lists every open gap, oldest first, with its count per stage', async () => {
    const gaps = await openGaps();
    const stuck = system().stuck_orders;
    await checked(page, 'gaps', async () => {
      await gotoConsole(page, '/gaps');
      await page.locator(`${tid('gaps-table')} ${tid('gap-row')}`).first().waitFor();
      await page.locator(`${tid('gaps-per-stage')} ${tid('stage-count')}`).first().waitFor();
      const rows = await gapRows(page);
      assert.deepEqual(rows.map(gapKey).sort(), gaps.map(gapKey).sort(),
        'gap rows differ from GET /api/v1/gaps?state=open');
      for (const id of stuck) {
        assert.ok(rows.some((r) => r.order === id), `stuck order ${id} is not on /gaps`);
      }
      for (const r of rows) {
        assert.ok(r.links.includes(`/orders/${encodeURIComponent(r.order)}`),
          `the gap row of ${r.order} has no link to its order`);
      }
      // Oldest first: by `since`.
      const since = new Map(gaps.map((g) => [gapKey(g), g.since]));
      const shownSince = rows.map((r) => since.get(gapKey(r)));
      assert.deepEqual(shownSince, [...shownSince].sort(), 'gap rows are not sorted oldest first');

      // Counts per stage: as many as rows at that stage, as the API says.
      const counts = await page.locator(`${tid('gaps-per-stage')} ${tid('stage-count')}`).evaluateAll(
        (els) => els.map((e) => [e.getAttribute('data-stage'), Number(e.getAttribute('data-count'))]));
      const apiCounts = {};
      for (const g of gaps) apiCounts[g.stage] = (apiCounts[g.stage] ?? 0) + 1;
      assert.deepEqual(Object.fromEntries(counts), apiCounts,
        'stage-count differs from the open gaps per stage of the API');
      const stuckStage = gaps.find((g) => g.order_id === stuck[0]).stage;
      assert.equal(Object.fromEntries(counts)[stuckStage],
        rows.filter((r) => r.stage === stuckStage).length,
        `stage-count of ${stuckStage} differs from its gap rows`);
    });
    assertNoProblems(page);
  });

  test('one lost price request is one incident at one stage: every gap of a stuck order at SUBMITTED', async () => {
    // lost_price_request: the order waits at SUBMITTED for the price calculation, and its price
    // request waits in mes.price.requests. The request is published by the submit itself, so its
    // gap belongs to SUBMITTED too (not to the status before, whose time the publish precedes).
    const gaps = await openGaps();
    await checked(page, 'gaps-one-incident', async () => {
      await gotoConsole(page, '/gaps');
      await page.locator(`${tid('gaps-table')} ${tid('gap-row')}`).first().waitFor();
      const rows = await gapRows(page);
      for (const id of system().stuck_orders) {
        const own = gaps.filter((g) => g.order_id === id);
        assert.ok(own.some((g) => g.kind === 'missing_transition' && g.stage === 'SUBMITTED'),
          `${id}: no missing_transition gap at SUBMITTED: ${JSON.stringify(own.map(gapKey))}`);
        for (const g of own) {
          assert.equal(g.stage, 'SUBMITTED', `${id}: its ${g.kind} gap is at ${g.stage}`);
        }
        assert.deepEqual([...new Set(rows.filter((r) => r.order === id).map((r) => r.stage))], ['SUBMITTED'],
          `${id}: the page shows its gaps at other stages`);
      }
    });
    assertNoProblems(page);
  });

  test('/gaps filters by kind and stage, in the page URL', async () => {
    const gaps = await openGaps();
    const { kind, stage } = gaps.find((g) => g.order_id === system().stuck_orders[0]);
    const expected = (await openGaps({ kind, stage })).map(gapKey).sort();
    await checked(page, 'gaps-filtered', async () => {
      await gotoConsole(page, '/gaps');
      await page.locator(`${tid('gaps-table')} ${tid('gap-row')}`).first().waitFor();
      await page.locator(`select${tid('filter-kind')}`).selectOption(kind);
      await page.waitForURL((u) => u.searchParams.get('kind') === kind);
      await page.locator(`select${tid('filter-stage')}`).selectOption(stage);
      await page.waitForURL((u) => u.searchParams.get('stage') === stage &&
        u.searchParams.get('kind') === kind);
      await page.waitForFunction(({ sel, n }) => document.querySelectorAll(sel).length === n,
        { sel: `${tid('gaps-table')} ${tid('gap-row')}`, n: expected.length });
      assert.deepEqual((await gapRows(page)).map(gapKey).sort(), expected,
        `filtered rows differ from GET /api/v1/gaps?state=open&kind=${kind}&stage=${stage}`);
      // A fresh load of the filtered URL shows the same.
      const url = page.url();
      await page.goto(url);
      await page.locator(`${tid('gaps-table')} ${tid('gap-row')}`).first().waitFor();
      assert.deepEqual((await gapRows(page)).map(gapKey).sort(), expected,
        `a fresh load of ${url} shows other rows`);
      assert.equal(await page.locator(`select${tid('filter-kind')}`).inputValue(), kind);
      assert.equal(await page.locator(`select${tid('filter-stage')}`).inputValue(), stage);
    });
    assertNoProblems(page);
  });

  test('/charts draws the four charts with exemplar points from the API', async () => {
    const charts = await apiJson('/api/v1/charts');
    const exemplarTraces = new Set();
    for (const h of charts.histograms) {
      for (const s of h.series) for (const e of s.exemplars ?? []) exemplarTraces.add(e.trace_id);
    }
    assert.ok(exemplarTraces.size >= 1, 'GET /api/v1/charts holds no exemplar after the simulation');
    await checked(page, 'charts', async () => {
      await gotoConsole(page, '/charts');
      for (const id of ['chart-stage-duration', 'chart-price-calc', 'chart-queue-latency',
        'chart-over-time']) {
        await page.locator(`${tid(id)} svg`).first().waitFor();
      }
      // Every stage with figures is on the stage chart.
      const stageChart = await page.locator(tid('chart-stage-duration')).textContent();
      const stageHist = charts.histograms.find((h) => h.name === 'stage_duration_seconds');
      for (const s of stageHist?.series ?? []) {
        if (s.count > 0) {
          assert.ok(stageChart.includes(s.labels.from_status),
            `chart-stage-duration does not name stage ${s.labels.from_status}`);
        }
      }
      await page.locator(tid('exemplar-point')).first().waitFor();
      const shown = await attrList(page, tid('exemplar-point'), 'data-trace-id');
      for (const t of shown) {
        assert.ok(exemplarTraces.has(t), `exemplar-point ${t} is no exemplar of GET /api/v1/charts`);
      }
      const point = page.locator(tid('exemplar-point')).first();
      assert.equal(await point.getAttribute('tabindex'), '0', 'an exemplar point is not focusable');
      assert.equal(await point.getAttribute('role'), 'link');
      assert.ok((await point.getAttribute('aria-label'))?.trim(), 'an exemplar point has no aria-label');
    });
    assertNoProblems(page);
  });

  async function assertTracePage(traceId) {
    await page.waitForURL(`**/traces/${traceId}`);
    await page.locator(`${tid('waterfall')} ${tid('span-row')}`).first().waitFor();
    const spans = traceSpans(await apiJson(`/api/traces/${traceId}`));
    const shown = await attrList(page, `${tid('waterfall')} ${tid('span-row')}`, 'data-span-id');
    assert.deepEqual([...shown].sort(), spans.map((s) => s.spanId).sort(),
      `the waterfall differs from GET /api/traces/${traceId}`);
  }

  test('clicking an exemplar point opens its trace', async () => {
    await checked(page, 'charts-exemplar-trace', async () => {
      await gotoConsole(page, '/charts');
      const point = page.locator(tid('exemplar-point')).first();
      await point.waitFor();
      const traceId = await point.getAttribute('data-trace-id');
      await point.click();
      await assertTracePage(traceId);
    });
    assertNoProblems(page);
  });

  test('keyboard: Tab to an exemplar point, Enter opens its trace', async () => {
    await checked(page, 'charts-exemplar-keyboard', async () => {
      await gotoConsole(page, '/charts');
      await page.locator(tid('exemplar-point')).first().waitFor();
      await page.locator('body').focus();
      const point = await tabTo(page, tid('exemplar-point'), 1000);
      assert.ok(point, 'Tab never reaches an exemplar point');
      const traceId = await point.evaluate((e) => e.getAttribute('data-trace-id'));
      await page.keyboard.press('Enter');
      await assertTracePage(traceId);
    });
    assertNoProblems(page);
  });
});
