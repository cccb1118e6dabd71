#!/usr/bin/env node
// Opens a built board in headless Chromium (Debian's, through playwright-core)
// and checks it as a person would see it:
//   - no console error, no page error, no network request (the page is offline);
//   - every chart drew marks (counted in the Vega scenegraph: data marks only);
//   - the numbers on the page (key-number tiles, the totals drawn in the zone,
//     SLA and funnel charts) equal the numbers in --expect, which the caller
//     queried from the views;
//   - the zone filter reaches every chart and the call table;
//   - the store filter (--expect store_filter) reaches the per-store charts and the call table;
//   - on a phone the page does not scroll sideways.
// Optionally saves full-page screenshots at desktop and phone widths.
//
//   node check.mjs --html board.html [--expect expect.json] [--shots DIR --shot-prefix board]
// Prints one line per check; exits 1 when one fails.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
if (!args.html) {
  console.error('usage: node check.mjs --html board.html [--expect expect.json] [--shots DIR] [--modules DIR]');
  process.exit(2);
}
const require = createRequire(join(resolve(args.modules || '.'), 'node_modules', 'x.js'));
const { chromium } = require('playwright-core');
const expect = args.expect ? JSON.parse(readFileSync(args.expect, 'utf8')) : {};
const url = pathToFileURL(resolve(args.html)).href;
const executablePath = process.env.CW_CHROMIUM || '/usr/bin/chromium';

let failed = 0;
const ok = (cond, what) => {
  console.log(`${cond ? 'ok' : 'FAILED'}: ${what}`);
  if (!cond) failed += 1;
};

const browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu', '--font-render-hinting=none'] });
try {
  for (const device of [
    { name: 'desktop', viewport: { width: 1366, height: 900 } },
    { name: 'phone', viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true }
  ]) {
    const context = await browser.newContext({ viewport: device.viewport, isMobile: !!device.isMobile,
      hasTouch: !!device.hasTouch, deviceScaleFactor: 1, offline: true });
    const page = await context.newPage();
    const errors = [];
    const warnings = [];
    const requests = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
      if (m.type() === 'warning') warnings.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
    await page.route('**/*', (route) => {
      const u = route.request().url();
      if (u.startsWith('file:') || u.startsWith('data:') || u.startsWith('blob:')) return route.continue();
      requests.push(u);
      return route.abort();
    });
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForSelector('body[data-ready]', { state: 'attached', timeout: 30000 }).catch(() => {});
    const tag = `[${device.name}]`;

    const result = await page.evaluate(() => {
      // data marks of a view: scenegraph items of role "mark" (axes, legends and titles have their own roles)
      const count = (item) => {
        let n = 0;
        const walk = (node) => {
          if (!node) return;
          if (node.marktype && node.items) {
            if (node.role === 'mark' && node.marktype !== 'group') n += node.items.length;
            node.items.forEach(walk);
          } else if (node.items) node.items.forEach(walk);
        };
        walk(item);
        return n;
      };
      const texts = (item) => {
        const out = [];
        const walk = (node) => {
          if (!node) return;
          if (node.marktype === 'text' && node.role === 'mark') node.items.forEach((i) => out.push(String(i.text)));
          (node.items || []).forEach(walk);
        };
        walk(item);
        return out;
      };
      const charts = {};
      for (const c of window.boardData.charts) {
        const v = window.boardViews[c.chart];
        charts[c.chart] = { drawn: !!v, marks: v ? count(v.scenegraph().root) : 0, texts: v ? texts(v.scenegraph().root) : [],
                            note: !!(c.spec.usermeta && c.spec.usermeta.note) };
      }
      const tiles = {};
      document.querySelectorAll('[data-check]').forEach((t) => {
        tiles[t.getAttribute('data-check')] = { value: t.getAttribute('data-value'), text: t.querySelector('.value').textContent };
      });
      return { charts, tiles, ready: document.body.getAttribute('data-ready'), errors: window.boardErrors,
               scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
               callRows: Array.from(document.querySelectorAll('table.calls tbody tr')).filter((r) => !r.hidden).map((r) => r.getAttribute('data-zone')) };
    });

    ok(result.ready === 'yes', `${tag} every chart embedded (${(result.errors || []).join('; ') || 'no embed error'})`);
    ok(errors.length === 0, `${tag} no console errors${errors.length ? ': ' + errors.join(' | ') : ''}`);
    if (warnings.length) console.log(`note: ${tag} console warnings: ${warnings.join(' | ')}`);
    ok(requests.length === 0, `${tag} no network requests${requests.length ? ': ' + requests.join(', ') : ''}`);
    for (const [name, c] of Object.entries(result.charts)) {
      ok(c.drawn && c.marks > 0, `${tag} chart ${name} drew ${c.marks} marks${c.note ? ' (a note)' : ''}`);
    }
    for (const name of expect.charts_with_data || []) {
      ok(result.charts[name] && !result.charts[name].note && result.charts[name].marks > 1, `${tag} chart ${name} has data, not a note`);
    }
    for (const name of expect.charts_with_note || []) {
      ok(result.charts[name] && result.charts[name].note, `${tag} chart ${name} is a note`);
    }

    // numbers on the page against the views
    const num = (s) => Number(String(s).replace(/[^0-9.+-]/g, ''));
    for (const [key, want] of Object.entries(expect.tiles || {})) {
      const t = result.tiles[key];
      if (key.startsWith('uplift:')) {
        ok(t && Math.abs(Number(t.value) - want) < 1e-9 && t.text === `${want >= 0 ? '+' : ''}${(100 * want).toFixed(1)} pp`,
           `${tag} tile ${key}: page ${t ? t.text : 'missing'} = view ${(100 * want).toFixed(1)} pp`);
      } else {
        ok(t && Number(t.value) === want && num(t.text) === want, `${tag} tile ${key}: page ${t ? t.text : 'missing'} = view ${want}`);
      }
    }
    for (const [chart, wants] of Object.entries(expect.chart_texts || {})) {
      const texts = (result.charts[chart] || {}).texts || [];
      for (const w of wants) ok(texts.includes(w), `${tag} chart ${chart} shows "${w}"`);
    }
    // charts whose text marks must be exactly these (the cells of the heat map), in any order
    for (const [chart, wants] of Object.entries(expect.chart_cells || {})) {
      const got = ((result.charts[chart] || {}).texts || []).slice().sort();
      const want = wants.slice().sort();
      ok(JSON.stringify(got) === JSON.stringify(want), `${tag} chart ${chart} shows exactly ${want.length} cells = the view (page: ${got.join(' ')})`);
    }
    if (device.name === 'phone') {
      ok(result.scrollWidth <= result.innerWidth + 1, `${tag} no sideways scrolling (page ${result.scrollWidth} px, screen ${result.innerWidth} px)`);
    }

    // the zone filter reaches the charts and the call table
    // the zone filter reaches the charts and the call table: the first zone that has customers
    const byZone = await page.evaluate(() => {
      const z = window.boardData.charts.find((c) => c.chart === 'zones');
      return (z && z.spec.usermeta && z.spec.usermeta.by_zone) || {};
    });
    const zone = ['red', 'yellow', 'blue', 'none'].find((z) => byZone[z] > 0);
    if (device.name === 'desktop' && zone && result.charts.zones && !result.charts.zones.note) {
      await page.selectOption('#zone', zone);
      await page.waitForTimeout(300);
      const red = await page.evaluate(() => {
        const v = window.boardViews.zones;
        const zones = new Set();
        const walk = (node) => {
          if (!node) return;
          if (node.role === 'mark' && node.marktype === 'rect') node.items.forEach((i) => i.datum && zones.add(i.datum.zone));
          (node.items || []).forEach(walk);
        };
        walk(v.scenegraph().root);
        return { zones: Array.from(zones),
                 calls: Array.from(document.querySelectorAll('table.calls tbody tr')).filter((r) => !r.hidden).map((r) => r.getAttribute('data-zone')) };
      });
      ok(red.zones.length === 1 && red.zones[0] === zone, `${tag} zone filter ${zone}: the zone chart shows ${red.zones.join(', ') || 'nothing'}`);
      ok(red.calls.every((z) => z === zone), `${tag} zone filter ${zone}: the call table shows ${red.calls.length} ${zone} rows only`);
      await page.selectOption('#zone', 'all');
      await page.waitForTimeout(300);
    }

    // the store filter: every chart with stores and the call table show that store only
    if (device.name === 'desktop' && expect.store_filter) {
      const store = String(expect.store_filter);
      const options = await page.evaluate(() => Array.from(document.querySelectorAll('#store option')).map((o) => o.value));
      ok(options.includes(store), `${tag} the store filter lists store ${store} (${options.length - 1} stores)`);
      await page.selectOption('#store', store);
      await page.waitForTimeout(300);
      const seen = await page.evaluate(() => {
        const stores = {};
        for (const chart of ['stores', 'sla_stores', 'call_today']) {
          const v = window.boardViews[chart];
          const set = new Set();
          let n = 0;
          const walk = (node) => {
            if (!node) return;
            if (node.role === 'mark' && (node.marktype === 'rect' || node.marktype === 'text'))
              node.items.forEach((i) => { if (i.datum && 'store' in i.datum) { set.add(String(i.datum.store)); n += 1; } });
            (node.items || []).forEach(walk);
          };
          if (v) walk(v.scenegraph().root);
          stores[chart] = { stores: Array.from(set), n };
        }
        const calls = Array.from(document.querySelectorAll('table.calls tbody tr')).filter((r) => !r.hidden).map((r) => r.getAttribute('data-store'));
        return { stores, calls };
      });
      for (const [chart, got] of Object.entries(seen.stores)) {
        ok(got.stores.every((x) => x === store) && (chart === 'call_today' || got.n > 0),
           `${tag} store filter ${store}: chart ${chart} shows ${got.n} marks of store ${got.stores.join(', ') || '(none)'}`);
      }
      ok(seen.calls.every((x) => x === store), `${tag} store filter ${store}: the call table shows ${seen.calls.length} rows of that store only`);
      const cells = (expect.store_filter_texts || []);
      const texts = await page.evaluate(() => {
        const out = [];
        const walk = (node) => {
          if (!node) return;
          if (node.marktype === 'text' && node.role === 'mark') node.items.forEach((i) => out.push(String(i.text)));
          (node.items || []).forEach(walk);
        };
        walk(window.boardViews.stores.scenegraph().root);
        return out;
      });
      ok(cells.every((w) => texts.includes(w)) && texts.length === cells.length,
         `${tag} store filter ${store}: the heat map shows ${texts.join(', ')} = churn.alerts_by_store ${cells.join(', ')}`);
      await page.selectOption('#store', 'all');
      await page.waitForTimeout(300);
    }

    if (args.shots) {
      const file = join(args.shots, `${args['shot-prefix'] || 'board'}-${device.name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      console.log(`screenshot: ${file}`);
    }
    await context.close();
  }
} finally {
  await browser.close();
}
console.log(failed ? `board check: ${failed} failed` : 'board check: all passed');
process.exit(failed ? 1 : 0);
