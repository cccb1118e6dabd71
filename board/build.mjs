#!/usr/bin/env node
// Builds the warning board: one self-contained HTML file that opens offline.
// Input: the JSON that scripts/board.sh reads from churn.board_charts (the
// chart specs with their data) and churn.pipeline_status; the Vega, Vega-Lite
// and vega-embed browser builds from node_modules (board/package-lock.json)
// are inlined, with the page's script and style. Node's standard library only.
//
//   node board/build.mjs --in board.json --out board.html --modules DIR
//
// DIR holds node_modules/ (board/deps.sh prints it).
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
for (const k of ['in', 'out', 'modules']) {
  if (!args[k]) {
    console.error(`usage: node build.mjs --in board.json --out board.html --modules DIR (missing --${k})`);
    process.exit(2);
  }
}

const board = JSON.parse(readFileSync(args.in, 'utf8'));
if (!board || !Array.isArray(board.charts) || board.charts.length === 0) {
  console.error('build.mjs: the input holds no charts');
  process.exit(1);
}

const mod = (pkg, file) => join(args.modules, 'node_modules', pkg, file);
const version = (pkg) => JSON.parse(readFileSync(mod(pkg, 'package.json'), 'utf8')).version;
// A library inside <script>: no "</script" may end it early, no source map to fetch.
const inlineJs = (path) =>
  readFileSync(path, 'utf8').replace(/\/\/# sourceMappingURL=\S+\s*$/, '').replace(/<\/script/gi, '<\\/script');
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

const libs = ['vega', 'vega-lite', 'vega-embed'];
const files = { vega: 'build/vega.min.js', 'vega-lite': 'build/vega-lite.min.js', 'vega-embed': 'build/vega-embed.min.js' };
const versions = Object.fromEntries(libs.map((l) => [l, version(l)]));
board.libraries = versions;

const st = board.status || {};
const asOf = st.as_of || 'no refresh yet';
// JSON inside <script type="application/json">: "<" escaped, so no tag can close it
const dataJson = JSON.stringify(board).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');

const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="churn_warning board (board/build.mjs)">
<title>Warning board · ${esc(board.pipeline)} · ${esc(asOf)}</title>
<style>
${readFileSync(join(here, 'board.css'), 'utf8')}
</style>
</head>
<body>
<header class="top">
  <div class="headline">
    <h1>Warning board <span class="pipeline">${esc(board.pipeline)}</span></h1>
    <p class="meta" id="meta"></p>
  </div>
  <div class="filters">
  <label class="filter">Zone
    <select id="zone" aria-label="filter the charts by zone">
      <option value="all">all zones</option><option value="red">red</option><option value="yellow">yellow</option>
      <option value="blue">blue</option><option value="none">none (no warning)</option>
    </select>
  </label>
  <label class="filter">Store
    <select id="store" aria-label="filter the charts by store">
      <option value="all">all stores</option>
    </select>
  </label>
  </div>
</header>
<section class="kpis" id="kpis" aria-label="key numbers"></section>
<main id="board"></main>
<footer>
  <p>Built by <code>scripts/board.sh</code> from <code>churn.board_charts('${esc(board.pipeline)}')</code> on ${esc(board.generated_at)}:
  every number comes from the product's views (<code>churn.current_warnings</code>, <code>churn.tier_changes</code>,
  <code>churn.pipeline_runs</code>, <code>churn.open_alerts</code>, <code>churn.retention_plan</code>, <code>churn.retention_effect</code>)
  and, for the model checks, a stored <code>churn.backtest</code>. Charts: Vega ${esc(versions.vega)}, Vega-Lite ${esc(versions['vega-lite'])},
  vega-embed ${esc(versions['vega-embed'])}, inlined: this file needs no server and no network.</p>
</footer>
<div id="bindings" hidden></div>
${libs.map((l) => `<script>\n${inlineJs(mod(l, files[l]))}\n</script>`).join('\n')}
<script type="application/json" id="board-data">${dataJson}</script>
<script>
${readFileSync(join(here, 'board.js'), 'utf8')}
</script>
</body>
</html>
`;

const tmp = `${args.out}.tmp${process.pid}`;
writeFileSync(tmp, html);
renameSync(tmp, args.out);
console.log(`${args.out}: ${board.charts.length} charts, ${(Buffer.byteLength(html) / 1024).toFixed(0)} kB`);
