// The board page: draws every chart spec of churn.board_charts with
// vega-embed, shows the key numbers the specs carry (usermeta), and filters
// every chart by zone and, when the pipeline has stores, by store. Inlined into the HTML by board/build.mjs.
(function () {
  'use strict';
  var board = JSON.parse(document.getElementById('board-data').textContent);
  var byName = {};
  board.charts.forEach(function (c) { byName[c.chart] = c; });
  window.boardData = board;
  window.boardViews = {};
  window.boardErrors = [];

  var nf = new Intl.NumberFormat('en-US');
  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function meta(name) { var c = byName[name]; return (c && c.spec && c.spec.usermeta) || {}; }

  // header line: as of, last refresh, model
  var st = board.status || {};
  var parts = [];
  parts.push(st.as_of ? 'as of ' + st.as_of : 'not refreshed yet');
  if (st.last_run_at) parts.push('last refresh ' + String(st.last_run_at).replace('T', ' ').slice(0, 16) + ' (' + st.last_status + ')');
  if (board.model_used) parts.push('model ' + board.model_used);
  else if (st.model) parts.push('model ' + st.model);
  if (st.state === 'paused') parts.push('paused' + (st.paused_reason ? ': ' + st.paused_reason : ''));
  document.getElementById('meta').textContent = parts.join(' · ');

  // key numbers, each tagged with what it checks against (data-check)
  var kpis = document.getElementById('kpis');
  function tile(check, label, value, cls, hint) {
    var t = el('div', { 'class': 'kpi ' + (cls || ''), 'data-check': check });
    if (value !== null && value !== undefined) t.setAttribute('data-value', String(value));
    t.appendChild(el('span', { 'class': 'value' }, value === null || value === undefined ? '–' : (typeof value === 'number' ? nf.format(value) : value)));
    t.appendChild(el('span', { 'class': 'label' }, label));
    if (hint) t.title = hint;
    kpis.appendChild(t);
    return t;
  }
  var z = meta('zones').by_zone;
  if (z) {
    tile('zone:red', 'red: call', z.red, 'red', 'customers in zone red (churn.current_warnings)');
    tile('zone:yellow', 'yellow: promotion', z.yellow, 'yellow', 'customers in zone yellow');
    tile('zone:blue', 'blue: reactivation', z.blue, 'blue', 'customers in zone blue');
    tile('zone:none', 'no warning', z.none, 'none', 'customers in zone none');
  }
  var sla = meta('sla');
  if (sla.open_alerts !== undefined) {
    tile('open_alerts', 'open alerts', sla.open_alerts, 'alerts', 'open and contacted alerts (churn.open_alerts)');
    tile('overdue', 'overdue', sla.overdue, sla.overdue > 0 ? 'overdue' : 'alerts', 'open alerts past their contact deadline');
  }
  var up = meta('retention_effect').uplift;
  if (up) {
    Object.keys(up).forEach(function (zone) {
      var u = up[zone];
      var txt = (u >= 0 ? '+' : '') + (100 * u).toFixed(1) + ' pp';
      tile('uplift:' + zone, 'uplift ' + zone, txt, 'uplift', 'retention rate, treatment minus control (churn.retention_effect)')
        .setAttribute('data-value', String(u));
    });
  }
  if (!kpis.children.length) kpis.appendChild(el('p', { 'class': 'empty' }, 'No numbers yet: the pipeline has not been refreshed.'));

  // sections of the board
  var sections = [
    ['Today', ['call_today']],
    ['Alerts and warnings', ['sla', 'stores', 'sla_stores', 'zones', 'reasons', 'over_time', 'flows']],
    ['Outcomes', ['funnel', 'retention_effect']],
    ['Model check', ['calibration', 'lift', 'early_warning', 'lead_time']]
  ];
  var wide = { call_today: true };
  var placed = {};
  var main = document.getElementById('board');
  var bindings = document.getElementById('bindings');
  var pending = [];
  var callRows = [];
  var current = { zone: 'all', store: 'all' };   // the page's filters
  sections.forEach(function (s) {
    var sec = el('section', { 'class': 'group' });
    sec.appendChild(el('h2', {}, s[0]));
    var grid = el('div', { 'class': 'grid' });
    s[1].forEach(function (name) {
      if (byName[name]) { grid.appendChild(card(byName[name])); placed[name] = true; }
    });
    sec.appendChild(grid);
    main.appendChild(sec);
  });
  // charts this page does not know yet go last
  var rest = board.charts.filter(function (c) { return !placed[c.chart]; });
  if (rest.length) {
    var sec = el('section', { 'class': 'group' });
    sec.appendChild(el('h2', {}, 'More'));
    var grid = el('div', { 'class': 'grid' });
    rest.forEach(function (c) { grid.appendChild(card(c)); });
    sec.appendChild(grid);
    main.appendChild(sec);
  }

  function card(c) {
    var spec = JSON.parse(JSON.stringify(c.spec));
    var title = spec.title || {};
    var isNote = !!(spec.usermeta && spec.usermeta.note);
    var art = el('article', { 'class': 'card' + (isNote ? ' note' : '') + (wide[c.chart] ? ' wide' : ''), id: 'chart-' + c.chart, 'data-chart': c.chart });
    art.appendChild(el('h3', {}, title.text || c.title));
    if (title.subtitle) art.appendChild(el('p', { 'class': 'sub' }, title.subtitle));
    delete spec.title;                    // drawn above in HTML, where it wraps on a phone
    var body = el('div', { 'class': 'card-body' });
    var box = el('div', { 'class': 'chart' });
    body.appendChild(box);
    if (c.chart === 'call_today' && !isNote && spec.data && spec.data.values && spec.data.values.length) {
      body.appendChild(callTable(spec.data.values));
    }
    art.appendChild(body);
    if (spec.description && !isNote) {
      var d = el('details', {});
      d.appendChild(el('summary', {}, 'How to read this'));
      d.appendChild(el('p', {}, spec.description));
      art.appendChild(d);
    }
    pending.push(
      vegaEmbed(box, spec, {
        renderer: 'svg',
        actions: { export: true, source: false, compiled: false, editor: false },
        bind: bindings,
        tooltip: { theme: 'light' }
      }).then(function (res) {
        window.boardViews[c.chart] = res.view;
      }).catch(function (err) {
        window.boardErrors.push(c.chart + ': ' + (err && err.message ? err.message : err));
        box.appendChild(el('p', { 'class': 'error' }, 'This chart could not be drawn: ' + (err && err.message ? err.message : err)));
        console.error('chart ' + c.chart + ': ' + err);
      })
    );
    return art;
  }

  // the call list as a table too: action, channel and the SLA clock at a glance
  function callTable(values) {
    var wrap = el('div', { 'class': 'table-wrap' });
    var t = el('table', { 'class': 'calls' });
    var head = el('tr', {});
    ['customer', 'reason', 'action', 'value kept', 'SLA clock'].forEach(function (h, i) { head.appendChild(el('th', i === 3 ? { 'class': 'num' } : {}, h)); });
    var thead = el('thead', {});
    thead.appendChild(head);
    t.appendChild(thead);
    var body = el('tbody', {});
    values.slice().sort(function (a, b) { return b.value - a.value || a.alert_id - b.alert_id; }).forEach(function (v) {
      var tr = el('tr', { 'data-zone': v.zone, 'data-store': v.store == null ? '' : String(v.store), 'class': 'sla-' + v.sla_status.replace(/[^a-z0-9]+/g, '-') });
      var who = el('td', {});
      who.appendChild(el('span', { 'class': 'customer' }, v.customer_id));
      who.appendChild(el('span', { 'class': 'code ' + v.zone }, v.code));
      tr.appendChild(who);
      tr.appendChild(el('td', { 'class': 'reason' + (v.reason ? ' ' + v.reason : '') }, v.reason || '–'));
      var what = el('td', { 'class': 'action' });
      what.appendChild(el('span', {}, v.action));
      what.appendChild(el('span', { 'class': 'channel' }, v.channel));
      tr.appendChild(what);
      tr.appendChild(el('td', { 'class': 'num' }, nf.format(Math.round(v.value))));
      tr.appendChild(el('td', { 'class': 'sla' }, v.sla_text));
      body.appendChild(tr);
      callRows.push(tr);
    });
    t.appendChild(body);
    wrap.appendChild(t);
    filterCalls();
    return wrap;
  }
  function filterCalls() {
    var shown = 0;
    callRows.forEach(function (tr) {
      var ok = (current.zone === 'all' || tr.getAttribute('data-zone') === current.zone) &&
               (current.store === 'all' || tr.getAttribute('data-store') === current.store) && shown < 15;
      tr.hidden = !ok;
      if (ok) shown += 1;
    });
  }

  // one zone filter for the whole page: the zone parameter of every spec
  var select = document.getElementById('zone');
  function setParam(name, value) {
    current[name] = value;
    filterCalls();
    var runs = Object.keys(window.boardViews).map(function (chart) {
      var v = window.boardViews[chart];
      try { v.signal(name); } catch (e) { return Promise.resolve(); }   // a chart without zones or stores
      return v.signal(name, value).runAsync();
    });
    return Promise.all(runs);
  }
  function setZone(zone) { return setParam('zone', zone); }
  select.addEventListener('change', function () { setZone(select.value); });
  window.boardSetZone = setZone;

  // the store filter: the stores of the pipeline (usermeta.stores of chart "stores");
  // without a store_col it says so and stays disabled
  var storeSelect = document.getElementById('store');
  var stores = (meta('stores').stores || []).slice().sort(function (a, b) {
    return String(a).localeCompare(String(b), undefined, { numeric: true });
  });
  if (stores.length) {
    stores.forEach(function (s) { storeSelect.appendChild(el('option', { value: String(s) }, 'store ' + s)); });
  } else {
    storeSelect.firstElementChild.textContent = 'all (no store_col)';
    storeSelect.disabled = true;
  }
  function setStore(store) { return setParam('store', store); }
  storeSelect.addEventListener('change', function () { setStore(storeSelect.value); });
  window.boardSetStore = setStore;

  Promise.all(pending).then(function () {
    document.body.setAttribute('data-ready', window.boardErrors.length ? 'errors' : 'yes');
  });
})();
