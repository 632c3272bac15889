/*
 * app.js -- the Tessera dashboard: finds out whether it talks to a
 * tracker or a node, then polls that endpoint's JSON API and draws it.
 *
 * The API key: taken from the URL fragment (#key=KEY, which the browser
 * never sends), kept in this tab's sessionStorage, removed from the
 * address bar, and sent as X-API-Key with every /api request.  No key,
 * or a key the server refuses (401), shows a clear message and a field
 * to paste one.
 *
 * Tracker view: /api/v1/cluster every POLL_MS: one tile per tracker (up
 * or down, leader, replication lag, in sync or not, request rate) and a
 * history chart of requests/s and lag.  Node view: /api/v1/node,
 * /downloads, /uploads, /shares and each download's chunk map: progress,
 * rate over time, ETA, sources and what each contributed, a chunk map
 * coloured by source, and who downloads from this node.
 *
 * Every value from the server is put on the page as text (textContent),
 * never as HTML.  Polls never overlap: the next one is scheduled when
 * the previous one ends.
 */
'use strict';

(function () {
  const POLL_MS = 1500;
  const HISTORY_MS = 5 * 60 * 1000;
  const FETCH_TIMEOUT_MS = 5000;
  const KEY_SLOT = 'tessera-api-key';
  const PALETTE = ['#2f7ed8', '#2ca02c', '#9467bd', '#d62728', '#17becf',
                   '#8c564b', '#e377c2', '#1f3b73', '#7f7f00', '#ff7f0e',
                   '#006d5b', '#b5179e'];
  const C_MISSING = '#e3e6ea';
  const C_INFLIGHT = '#ffb703';
  const C_UNKNOWN = '#8fa3b8';
  const MAP_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz' +
                    '0123456789';

  const state = { kind: null, polls: 0, errors: 0, lastOk: 0 };
  window.tesseraState = state;        // read by the browser test

  // ---- small helpers ----------------------------------------------------

  function $(id) { return document.getElementById(id); }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function num(v) { return typeof v === 'number' && isFinite(v) ? v : null; }

  function fmtBytes(b) {
    b = num(b);
    if (b === null) return '\u2014';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
    return (i === 0 ? b.toFixed(0) : b.toFixed(b < 10 ? 2 : 1)) + ' ' + u[i];
  }

  function fmtRate(bps) {
    return num(bps) === null ? '\u2014' : fmtBytes(bps) + '/s';
  }

  // an axis label: "2 MiB/s", not "2.00 MiB/s"
  function axisRate(v) {
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return parseFloat(v.toFixed(2)) + ' ' + u[i] + '/s';
  }

  function fmtDur(s) {
    s = num(s);
    if (s === null || s < 0) return '\u2014';
    s = Math.round(s);
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
    if (s < 86400) {
      return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) +
             ' min';
    }
    return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) +
           ' h';
  }

  function fmtNum(n, digits) {
    n = num(n);
    if (n === null) return '\u2014';
    return n.toLocaleString('en-US', { maximumFractionDigits: digits || 0 });
  }

  function clock(ms) {
    const d = new Date(ms);
    return d.toTimeString().slice(0, 8);
  }

  function setConn(text, cls) {
    const c = $('conn');
    c.textContent = text;
    c.className = 'pill ' + cls;
  }

  function banner(text, info) {
    const b = $('banner');
    if (!text) { b.hidden = true; return; }
    b.textContent = text;
    b.className = info ? 'banner info' : 'banner';
    b.hidden = false;
  }

  // ---- the key and the API ----------------------------------------------

  function takeKey() {
    const m = /(?:^#|&)key=([^&]*)/.exec(location.hash);
    if (m) {
      let k = m[1];
      try { k = decodeURIComponent(k); } catch (e) { /* keep it raw */ }
      sessionStorage.setItem(KEY_SLOT, k.trim());
      // out of the address bar (and of bookmarks, history, screenshots)
      history.replaceState(null, '', location.pathname + location.search);
    }
    return sessionStorage.getItem(KEY_SLOT) || '';
  }

  class ApiError extends Error {
    constructor(status, msg) { super(msg); this.status = status; }
  }

  async function api(path, opts) {
    const ctl = new AbortController();
    const t = setTimeout(function () { ctl.abort(); }, FETCH_TIMEOUT_MS);
    const init = { headers: { 'X-API-Key': state.key }, cache: 'no-store',
                   signal: ctl.signal };
    if (opts && opts.post) {
      init.method = 'POST';
      init.headers['Content-Type'] = 'application/json';
      init.body = '{}';
    }
    let r;
    try {
      r = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, e.name === 'AbortError'
        ? 'no answer within ' + FETCH_TIMEOUT_MS / 1000 + ' s'
        : 'cannot reach the server');
    } finally {
      clearTimeout(t);
    }
    let body = null;
    try { body = await r.json(); } catch (e) { body = null; }
    if (!r.ok) {
      throw new ApiError(r.status, body && body.error ? body.error
                                                      : 'HTTP ' + r.status);
    }
    return body;
  }

  function askKey(why) {
    $('key-why').textContent = why;
    $('key-url').textContent = location.origin + '/#key=KEY';
    $('keybox').hidden = false;
    $('tracker-page').hidden = true;
    $('node-page').hidden = true;
    setConn('no access', 'pill-bad');
    banner(null);
  }

  function setupKeyForm() {
    $('keyform').addEventListener('submit', function (ev) {
      ev.preventDefault();
      const k = $('keyinput').value.trim();
      if (!k) return;
      sessionStorage.setItem(KEY_SLOT, k);
      $('keyinput').value = '';
      location.reload();
    });
  }

  // ---- what are we talking to -------------------------------------------

  async function detect() {
    let hint = null;
    try {
      const r = await fetch('/assets/site.json', { cache: 'no-store' });
      if (r.ok) hint = (await r.json()).kind;
    } catch (e) { hint = null; }
    const order = hint === 'tracker' ? ['tracker'] : hint === 'node'
      ? ['node'] : ['node', 'tracker'];
    let last = null;
    for (const k of order) {
      try {
        if (k === 'node') {
          const n = await api('/api/v1/node');
          if (n && n.kind === 'node') return { kind: 'node', first: n };
        } else {
          const s = await api('/api/v1/status');
          if (s && s.tracker_id !== undefined) {
            return { kind: 'tracker', first: s };
          }
        }
      } catch (e) {
        if (e.status === 401) throw e;
        last = e;
      }
    }
    throw last || new ApiError(0, 'this server is neither a tracker nor ' +
                                  'a node');
  }

  // ---- a live line chart --------------------------------------------------

  // A rate axis on round binary steps (256 KiB/s, 1 MiB/s, 2.5 MiB/s...)
  // rather than Chart.js's decimal ones (976.6 KiB/s).
  function binarySteps(scale) {
    const max = scale.max;
    if (!(max > 0)) return;
    const unit = Math.pow(1024, Math.max(0, Math.floor(Math.log(max) /
                                                        Math.log(1024))));
    const raw = max / unit / 4;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map(function (x) { return x * mag; })
      .find(function (x) { return x >= raw; }) * unit;
    scale.max = Math.ceil(max / step) * step;
    scale.options.ticks.stepSize = step;
  }

  function lineChart(canvas, yTitle, y2Title, fmtY) {
    const scales = {
      x: { type: 'linear', ticks: { maxTicksLimit: 7, maxRotation: 0,
                                    includeBounds: false,
                                    callback: function (v) {
                                      return clock(v);
                                    } },
           grid: { display: false } },
      y: { beginAtZero: true, title: { display: true, text: yTitle },
           ticks: { callback: fmtY || function (v) { return fmtNum(v, 1); } } }
    };
    if (fmtY) scales.y.afterDataLimits = binarySteps;
    if (y2Title) {
      scales.y2 = { beginAtZero: true, position: 'right',
                    title: { display: true, text: y2Title },
                    grid: { drawOnChartArea: false },
                    ticks: { precision: 0 } };
    }
    if (!window.Chart) {
      // no chart library: the rest of the page still works
      return { data: { datasets: [] }, update: function () {},
               destroy: function () {},
               options: { scales: { x: {} }, plugins: { legend: {} } } };
    }
    return new window.Chart(canvas, {
      type: 'line',
      data: { datasets: [] },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        parsing: false, normalized: true,
        interaction: { mode: 'nearest', axis: 'x', intersect: false },
        elements: { point: { radius: 0 }, line: { borderWidth: 2,
                                                  tension: 0 } },
        scales: scales,
        plugins: { legend: { position: 'bottom',
                             labels: { boxWidth: 12 } },
                   tooltip: { callbacks: { title: function (it) {
                     return it.length ? clock(it[0].parsed.x) : '';
                   } } } }
      }
    });
  }

  // series(chart, key, label, color, axis, dashed) -> its data array
  function series(chart, key, label, color, axis, dashed) {
    let ds = chart.data.datasets.find(function (d) { return d.key === key; });
    if (!ds) {
      ds = { key: key, label: label, data: [], borderColor: color,
             backgroundColor: color, yAxisID: axis || 'y',
             borderDash: dashed ? [5, 4] : [] };
      chart.data.datasets.push(ds);
    }
    ds.label = label;
    return ds.data;
  }

  function push(arr, x, y) {
    arr.push({ x: x, y: y });
    while (arr.length && arr[0].x < x - HISTORY_MS) arr.shift();
  }

  // The x axis: from the first sample (the page's start) until the
  // window is full, then the last HISTORY_MS.
  function trimChart(chart, now) {
    if (!chart.t0) chart.t0 = now;
    const min = Math.max(chart.t0, now - HISTORY_MS);
    const x = chart.options.scales.x;
    x.min = min;
    x.max = now;
    // whole seconds between ticks, at most about 6 of them
    const span = Math.max(1000, now - min);
    x.ticks.stepSize = [1, 2, 5, 10, 15, 30, 60, 120].map(function (v) {
      return v * 1000;
    }).find(function (v) { return span / v <= 6; }) || 120000;
    chart.update('none');
  }

  // ---- tracker view -------------------------------------------------------

  const trk = { chart: null, tiles: {} };

  function stat(k, v, cls, sub) {
    const s = el('div', 'stat');
    s.appendChild(el('div', 'k', k));
    s.appendChild(el('div', 'v' + (cls ? ' ' + cls : ''), v));
    if (sub) s.appendChild(el('div', 's', sub));
    return s;
  }

  function kvRow(dl, k, v, cls) {
    dl.appendChild(el('dt', null, k));
    dl.appendChild(el('dd', cls || null, v));
  }

  function trackerTile(t, c) {
    const up = !!t.reachable;
    const tile = el('article', 'tile' + (up ? '' : t.error ===
                                         'not polled yet' ? ' wait'
                                                          : ' down'));
    tile.dataset.id = t.id;
    tile.dataset.up = up ? '1' : '0';
    const head = el('div', 'tile-head');
    head.appendChild(el('span', 'name', 'Tracker ' + t.id +
                                        (t.self ? ' (this one)' : '')));
    if (c.leader === t.id) head.appendChild(el('span', 'pill pill-lead',
                                               'leader'));
    const checking = !up && t.error === 'not polled yet';
    head.appendChild(el('span', 'pill ' + (up ? 'pill-ok' : checking
                                           ? 'pill-wait' : 'pill-bad'),
                        up ? 'up' : checking ? 'checking' : 'down'));
    tile.appendChild(head);
    tile.appendChild(el('div', 'addr', t.address || ''));
    const dl = el('dl', 'kv');
    if (t.self) {
      kvRow(dl, 'Serving', t.ready ? 'ready' : 'not ready',
            t.ready ? 'good' : 'bad');
      kvRow(dl, 'Replication lag', 'reference');
      const allUp = c.trackers_reachable === (c.trackers_total ||
                                              c.trackers.length);
      kvRow(dl, 'Converged with all', c.digests_agree ? 'yes'
            : allUp ? 'no' : 'unknown', c.digests_agree ? 'good' : 'bad');
    } else {
      const lag = (num(t.lag_ops_behind) || 0) +
                  (num(t.lag_ops_missing_here) || 0);
      kvRow(dl, 'Replication link', t.sync_link === 'up' ? 'up' : 'down',
            t.sync_link === 'up' ? 'good' : 'bad');
      // a tracker that does not answer: its last figures are stale
      kvRow(dl, 'Replication lag', t.lag_ops_behind === undefined || !up
            ? '\u2014' : fmtNum(lag) + (lag === 1 ? ' op' : ' ops'),
            up && lag > 0 ? 'bad' : null);
      const conv = up ? t.digest_agrees : undefined;
      kvRow(dl, 'Converged', conv === undefined ? 'unknown' : conv ? 'yes'
            : 'no', conv ? 'good' : 'bad');
    }
    kvRow(dl, 'Requests', up ? fmtNum(t.request_rate_per_s, 1) + ' /s'
                             : '\u2014');
    const sess = t.sessions && typeof t.sessions === 'object'
      ? t.sessions.replicated : t.sessions;
    kvRow(dl, 'Users', fmtNum(t.users));
    kvRow(dl, 'Sessions', fmtNum(sess));
    kvRow(dl, 'Up for', fmtDur(t.uptime_s));
    if (!t.self && !up) {
      kvRow(dl, 'Last answer', num(t.status_age_s) !== null &&
            t.status_age_s >= 0 ? fmtDur(t.status_age_s) + ' ago' : 'never');
    }
    tile.appendChild(dl);
    if (!up && t.error) tile.appendChild(el('div', 'err', t.error));
    if (t.self && !t.ready && t.reasons && t.reasons.length) {
      tile.appendChild(el('div', 'err', t.reasons.join('; ')));
    }
    return tile;
  }

  function renderCluster(c) {
    const now = Date.now();
    const rows = (c.trackers || []).slice().sort(function (a, b) {
      return a.id - b.id;
    });
    const total = c.trackers_total || rows.length;
    const sum = $('cluster-summary');
    clear(sum);
    sum.appendChild(stat('Trackers up', c.trackers_reachable + ' of ' + total,
                         c.trackers_reachable === total ? 'good' : 'bad'));
    sum.appendChild(stat('Leader', c.leader ? 'tracker ' + c.leader
                                            : 'none'));
    const allUp = c.trackers_reachable === total;
    sum.appendChild(stat('Converged', c.digests_agree ? 'yes' : allUp ? 'no'
                         : 'unknown', c.digests_agree ? 'good' : 'bad',
                         c.digests_agree ? 'every tracker holds the same data'
                         : allUp ? 'trackers still differ'
                         : 'a tracker cannot be reached'));
    let rate = 0;
    rows.forEach(function (t) {
      if (t.reachable) rate += num(t.request_rate_per_s) || 0;
    });
    sum.appendChild(stat('Requests, whole cluster', fmtNum(rate, 1) + ' /s'));
    const tiles = $('tiles');
    clear(tiles);
    rows.forEach(function (t) { tiles.appendChild(trackerTile(t, c)); });

    if (!trk.chart) {
      trk.chart = lineChart($('cluster-chart'), 'requests / s', 'lag (ops)');
    }
    rows.forEach(function (t, i) {
      const col = PALETTE[i % PALETTE.length];
      push(series(trk.chart, 'r' + t.id, 'Tracker ' + t.id + ' requests/s',
                  col), now, t.reachable ? num(t.request_rate_per_s) : null);
      if (!t.self) {
        const lag = t.lag_ops_behind === undefined ? null
          : (num(t.lag_ops_behind) || 0) + (num(t.lag_ops_missing_here) || 0);
        push(series(trk.chart, 'l' + t.id, 'Tracker ' + t.id + ' lag',
                    col, 'y2', true), now, t.reachable ? lag : null);
      }
    });
    trimChart(trk.chart, now);
  }

  async function trackerTick() {
    renderCluster(await api('/api/v1/cluster'));
  }

  // ---- node view ----------------------------------------------------------

  const node = { chart: null, dls: {}, maps: {}, tick: 0 };

  const DL_STATE = { running: 'downloading', waiting: 'waiting for sources',
                     paused: 'paused', done: 'complete', failed: 'failed',
                     denied: 'access denied' };
  const DL_PILL = { running: 'pill-ok', waiting: 'pill-warn',
                    paused: 'pill-wait', done: 'pill-info', failed: 'pill-bad',
                    denied: 'pill-bad' };

  function renderNode(n) {
    const sum = $('node-summary');
    clear(sum);
    sum.appendChild(stat('Downloading', fmtRate(n.down_Bps), null,
                         n.down_cap_Bps ? 'limit ' + fmtRate(n.down_cap_Bps)
                                        : 'no limit'));
    sum.appendChild(stat('Uploading', fmtRate(n.up_Bps), null,
                         n.up_cap_Bps ? 'limit ' + fmtRate(n.up_cap_Bps)
                                      : 'no limit'));
    sum.appendChild(stat('Received in all', fmtBytes(n.down_total_B)));
    sum.appendChild(stat('Sent in all', fmtBytes(n.up_total_B)));
    sum.appendChild(stat('Logged in as', n.user || 'nobody',
                         n.user ? null : 'bad', 'up for ' + fmtDur(n.uptime_s)));
    $('where').textContent = 'node ' + (n.addr || '') +
      (n.state_dir ? ' \u00b7 ' + n.state_dir : '');
    const now = Date.now();
    if (!node.chart) {
      node.chart = lineChart($('node-chart'), 'rate', null, axisRate);
    }
    push(series(node.chart, 'down', 'download', '#2f7ed8'), now,
         num(n.down_Bps));
    push(series(node.chart, 'up', 'upload', '#2ca02c'), now, num(n.up_Bps));
    trimChart(node.chart, now);
  }

  function dlKey(d) { return d.group + '/' + d.name; }

  function dlPath(d) {
    return '/api/v1/downloads/' + encodeURIComponent(d.group) + '/' +
           encodeURIComponent(d.name);
  }

  // The card of one download, made once and updated in place.
  function dlCard(d) {
    const k = dlKey(d);
    let c = node.dls[k];
    if (c) return c;
    c = { root: el('div', 'dl') };
    c.root.dataset.dl = k;
    const head = el('div', 'dl-head');
    c.name = el('span', 'dl-name', d.name);
    c.group = el('span', 'dl-group', 'group ' + d.group);
    c.pill = el('span', 'pill');
    c.actions = el('span', 'dl-actions');
    head.append(c.name, c.group, c.pill, c.actions);
    c.bar = el('div', 'bar');
    c.fill = el('div');
    c.bar.appendChild(c.fill);
    c.facts = el('div', 'dl-facts');
    c.err = el('div', 'dl-error');
    const body = el('div', 'dl-body');
    const left = el('div', 'map-box');
    left.appendChild(el('h3', null, 'Chunks'));
    c.map = el('canvas', 'chunkmap');
    c.map.setAttribute('role', 'img');
    c.legend = el('div', 'legend');
    left.append(c.map, c.legend);
    const right = el('div');
    right.appendChild(el('h3', null, 'Download rate'));
    const box = el('div', 'chart-box small');
    const cv = el('canvas');
    box.appendChild(cv);
    right.appendChild(box);
    body.append(left, right);
    c.srcTitle = el('h3', null, 'Sources');
    c.srcWrap = el('div', 'scroll');
    c.src = el('table', 'grid');
    const th = el('thead');
    const tr = el('tr');
    ['Source', 'State', 'Share of the file', 'Chunks', 'Received', 'Rate',
     'Asking now'].forEach(function (h, i) {
      tr.appendChild(el('th', i >= 3 ? 'num' : null, h));
    });
    th.appendChild(tr);
    c.srcBody = el('tbody');
    c.src.append(th, c.srcBody);
    c.srcWrap.appendChild(c.src);
    c.root.append(head, c.bar, c.facts, c.err, body, c.srcTitle, c.srcWrap);
    $('downloads').appendChild(c.root);
    c.chart = lineChart(cv, 'rate', null, axisRate);
    c.chart.options.plugins.legend.display = false;
    node.dls[k] = c;
    return c;
  }

  function actionButtons(c, d) {
    const want = { running: ['pause', 'cancel'], waiting: ['pause', 'cancel'],
                   paused: ['resume', 'cancel'], failed: ['retry', 'cancel'],
                   denied: ['retry', 'cancel'], done: [] }[d.state] || [];
    const sig = want.join(',');
    if (c.actSig === sig) return;
    c.actSig = sig;
    clear(c.actions);
    want.forEach(function (a) {
      const b = el('button', 'light', a);
      b.addEventListener('click', async function () {
        if (a === 'cancel' && !window.confirm('Cancel the download of ' +
                                              d.name + '?')) return;
        b.disabled = true;
        try {
          await api(dlPath(d) + '/' + a, { post: true });
          banner(null);
        } catch (e) {
          banner('Could not ' + a + ' ' + d.name + ': ' + e.message);
        }
        b.disabled = false;
      });
      c.actions.appendChild(b);
    });
  }

  function fact(parent, label, value) {
    const s = el('span', null, label + ' ');
    s.appendChild(el('b', null, value));
    parent.appendChild(s);
  }

  function updateDl(d, now) {
    const c = dlCard(d);
    const pct = num(d.pct) !== null ? d.pct
      : d.size ? 100 * d.bytes / d.size : 0;
    c.root.className = 'dl ' + d.state;
    c.root.dataset.pct = String(pct);
    c.root.dataset.bytes = String(d.bytes || 0);
    c.pill.textContent = DL_STATE[d.state] || d.state;
    c.pill.className = 'pill ' + (DL_PILL[d.state] || 'pill-info');
    c.fill.style.width = Math.max(0, Math.min(100, pct)).toFixed(1) + '%';
    clear(c.facts);
    fact(c.facts, '', pct.toFixed(1) + ' %');
    fact(c.facts, '', fmtBytes(d.bytes) + ' of ' + fmtBytes(d.size));
    fact(c.facts, 'chunks', fmtNum(d.chunks_done) + ' / ' +
                            fmtNum(d.nchunks));
    if (d.state === 'running' || d.state === 'waiting') {
      fact(c.facts, 'rate', fmtRate(d.bps));
      fact(c.facts, 'time left', fmtDur(d.eta_s));
    }
    if (d.dest) fact(c.facts, 'into', d.dest);
    c.err.textContent = d.error || '';
    c.err.hidden = !d.error;
    actionButtons(c, d);
    if (d.state !== 'done' || !c.finished) {
      push(series(c.chart, 'bps', 'rate', '#2f7ed8'), now,
           d.state === 'running' ? num(d.bps) : 0);
      trimChart(c.chart, now);
    }
    c.finished = d.state === 'done';
    updateSources(c, d);
  }

  // Colour of a source: by its place in the chunk map's list of sources.
  function srcColor(m, addr) {
    const i = m && m.sources ? m.sources.indexOf(addr) : -1;
    return i >= 0 ? PALETTE[i % PALETTE.length] : C_UNKNOWN;
  }

  function updateSources(c, d) {
    const m = node.maps[dlKey(d)];
    const srcs = (d.sources || []).slice().sort(function (a, b) {
      return (b.bytes || 0) - (a.bytes || 0);
    });
    let total = 0;
    srcs.forEach(function (s) { total += s.bytes || 0; });
    clear(c.srcBody);
    c.srcTitle.hidden = c.srcWrap.hidden = srcs.length === 0;
    srcs.forEach(function (s) {
      const tr = el('tr');
      tr.dataset.addr = s.addr;
      tr.dataset.bytes = String(s.bytes || 0);
      const who = el('td');
      const sw = el('span', 'sw');
      sw.style.background = srcColor(m, s.addr);
      who.append(sw, document.createTextNode(s.addr));
      if (s.fp) who.title = 'certificate ' + s.fp;
      const share = el('td');
      const bar = el('span', 'share');
      const fill = el('span');
      const frac = total ? (s.bytes || 0) / total : 0;
      fill.style.width = (100 * frac).toFixed(1) + '%';
      fill.style.background = srcColor(m, s.addr);
      bar.appendChild(fill);
      share.append(bar, document.createTextNode((100 * frac).toFixed(0) +
                                                ' %'));
      tr.append(who, el('td', null, s.state || ''), share,
                el('td', 'num', fmtNum(s.chunks)),
                el('td', 'num', fmtBytes(s.bytes)),
                el('td', 'num', fmtRate(s.rate_Bps)),
                el('td', 'num', fmtNum(s.inflight)));
      c.srcBody.appendChild(tr);
    });
  }

  // The colour of one chunk map character.
  function chunkColor(ch, m) {
    if (ch === '.') return C_MISSING;
    if (ch === '*') return C_INFLIGHT;
    if (ch === '+') return C_UNKNOWN;
    const i = MAP_CHARS.indexOf(ch);
    return i >= 0 && m.sources && i < m.sources.length
      ? PALETTE[i % PALETTE.length] : C_UNKNOWN;
  }

  // Draws the chunk map: one cell per chunk, or per bucket of chunks when
  // the file has more chunks than the canvas has cells (a bucket shows
  // "in flight" if any of its chunks is, else its most common state).
  function drawMap(c, m) {
    const cv = c.map;
    const n = m.nchunks || 0;
    const map = m.map || '';
    const w = Math.max(100, cv.clientWidth || 300);
    const maxH = 180;
    let cell = 3;
    let per = 1;
    if (n > 0 && w / n >= 12) {
      cell = Math.min(28, Math.floor(w / n));     // one row fills the width
    } else {
      for (const s of [20, 16, 14, 12, 10, 8, 6, 5, 4, 3]) {
        const cols = Math.floor(w / s);
        if (Math.ceil(n / cols) * s <= maxH) { cell = s; break; }
      }
    }
    const cols = Math.max(1, Math.floor(w / cell));
    const rowsMax = Math.floor(maxH / cell);
    if (Math.ceil(n / cols) > rowsMax) per = Math.ceil(n / (cols * rowsMax));
    const cells = Math.ceil(n / per);
    const rows = Math.max(1, Math.ceil(cells / cols));
    const dpr = window.devicePixelRatio || 1;
    cv.style.height = rows * cell + 'px';
    cv.width = Math.round(w * dpr);
    cv.height = Math.round(rows * cell * dpr);
    const g = cv.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, rows * cell);
    const gap = cell >= 6 ? 1 : 0;
    let done = 0;
    let inflight = 0;
    for (let i = 0; i < n; i++) {
      const ch = map[i] || '.';
      if (ch === '*') inflight++;
      else if (ch !== '.') done++;
    }
    for (let b = 0; b < cells; b++) {
      let ch = map[b * per] || '.';
      if (per > 1) {
        const cnt = {};
        let best = '.';
        let bestN = -1;
        for (let i = b * per; i < Math.min(n, (b + 1) * per); i++) {
          const x = map[i] || '.';
          if (x === '*') { best = '*'; bestN = Infinity; break; }
          cnt[x] = (cnt[x] || 0) + 1;
          if (cnt[x] > bestN) { best = x; bestN = cnt[x]; }
        }
        ch = best;
      }
      g.fillStyle = chunkColor(ch, m);
      g.fillRect((b % cols) * cell, Math.floor(b / cols) * cell,
                 cell - gap, cell - gap);
    }
    cv.dataset.n = String(n);
    cv.dataset.done = String(done);
    cv.dataset.inflight = String(inflight);
    cv.setAttribute('aria-label', done + ' of ' + n + ' chunks done, ' +
                    inflight + ' in flight');
    legend(c, m, per);
  }

  function legend(c, m, per) {
    clear(c.legend);
    function item(color, text) {
      const s = el('span');
      const sw = el('span', 'sw');
      sw.style.background = color;
      s.append(sw, document.createTextNode(text));
      c.legend.appendChild(s);
    }
    (m.sources || []).forEach(function (a, i) {
      item(PALETTE[i % PALETTE.length], 'from ' + a);
    });
    item(C_UNKNOWN, 'done (earlier)');
    item(C_INFLIGHT, 'in flight');
    item(C_MISSING, 'missing');
    if (per > 1) c.legend.appendChild(el('span', null, '1 cell = ' + per +
                                                       ' chunks'));
  }

  async function fetchMap(d) {
    const k = dlKey(d);
    try {
      const m = await api(dlPath(d) + '/chunks');
      if (!node.dls[k]) return;       // gone meanwhile
      node.maps[k] = m;
      drawMap(node.dls[k], m);
      updateSources(node.dls[k], d);
    } catch (e) {
      if (e.status === 401) throw e;
      /* the download may just have gone: the next poll tells */
    }
  }

  function renderDownloads(list) {
    const now = Date.now();
    const seen = {};
    list.forEach(function (d) { seen[dlKey(d)] = true; updateDl(d, now); });
    Object.keys(node.dls).forEach(function (k) {
      if (!seen[k]) {
        node.dls[k].chart.destroy();
        node.dls[k].root.remove();
        delete node.dls[k];
        delete node.maps[k];
      }
    });
    $('dl-empty').hidden = list.length > 0;
    // maps of downloads in progress every poll, a finished one once more
    return list.filter(function (d) {
      const c = node.dls[dlKey(d)];
      const again = d.state !== 'done' || !c.mapFinal;
      if (d.state === 'done') c.mapFinal = true;
      return again;
    });
  }

  function fillTable(id, emptyId, rows, cells) {
    const t = $(id);
    const tb = t.tBodies[0];
    clear(tb);
    rows.forEach(function (r) {
      const tr = el('tr');
      cells(r).forEach(function (c, i) {
        tr.appendChild(el('td', i >= 2 ? 'num' : null, c));
      });
      tb.appendChild(tr);
    });
    t.hidden = rows.length === 0;
    $(emptyId).hidden = rows.length > 0;
  }

  async function nodeTick() {
    const wantShares = node.tick++ % 4 === 0;
    const res = await Promise.all([
      api('/api/v1/node'), api('/api/v1/downloads'), api('/api/v1/uploads'),
      wantShares ? api('/api/v1/shares') : Promise.resolve(null)
    ]);
    renderNode(res[0]);
    const maps = renderDownloads(res[1].downloads || []);
    // the tab's title tells the progress, as a download manager's does
    let size = 0;
    let got = 0;
    (res[1].downloads || []).forEach(function (d) {
      if (d.state === 'running' || d.state === 'waiting') {
        size += d.size || 0;
        got += d.bytes || 0;
      }
    });
    document.title = (size ? Math.floor(100 * got / size) + ' % \u00b7 ' : '') +
                     'Tessera node ' + (res[0].addr || '');
    fillTable('uploads', 'up-empty', (res[2].peers || []).slice()
      .sort(function (a, b) { return (b.rate_Bps || 0) - (a.rate_Bps || 0); }),
    function (p) {
      return [p.addr, p.fp ? p.fp.slice(0, 16) + '\u2026' : '',
              fmtNum(p.chunks), fmtBytes(p.bytes), fmtRate(p.rate_Bps)];
    });
    if (res[3]) {
      fillTable('shares', 'sh-empty', res[3].shares || [], function (s) {
        return [s.name, s.group, fmtBytes(s.size), fmtNum(s.chunks_up),
                fmtBytes(s.bytes_up)];
      });
    }
    await Promise.all(maps.map(fetchMap));
  }

  // ---- the loop -----------------------------------------------------------

  async function loop(tick) {
    try {
      await tick();
      state.polls++;
      state.lastOk = Date.now();
      setConn('live', 'pill-ok');
      banner(null);
    } catch (e) {
      state.errors++;
      state.lastError = e.message;
      if (e.status === 401) {
        askKey('The server refused this API key.  Check that it is the ' +
               'key of this tracker or node (it changes when the data ' +
               'directory is made anew).');
        return;                       // no retry with a wrong key
      }
      setConn('connection lost', 'pill-bad');
      banner('The dashboard cannot get fresh figures (' + e.message +
             '); retrying.  What you see is from ' +
             (state.lastOk ? clock(state.lastOk) : 'nothing yet') + '.');
    }
    $('foot').textContent = 'Updated every ' + POLL_MS / 1000 + ' s' +
      (state.lastOk ? '; last update ' + clock(state.lastOk) : '') + '.';
    setTimeout(function () { loop(tick); }, POLL_MS);
  }

  async function start() {
    setupKeyForm();
    state.key = takeKey();
    if (!state.key) {
      askKey('No API key was given.');
      return;
    }
    if (!window.Chart) {
      banner('The chart library did not load; charts are off.');
    }
    let found;
    try {
      found = await detect();
    } catch (e) {
      if (e.status === 401) {
        askKey('The server refused this API key.');
        return;
      }
      setConn('unreachable', 'pill-bad');
      banner('Cannot read this server: ' + e.message + '.  Reload to retry.');
      return;
    }
    state.kind = found.kind;
    document.body.dataset.kind = found.kind;
    if (found.kind === 'tracker') {
      $('kind-title').textContent = '\u00b7 tracker cluster';
      $('where').textContent = 'seen from tracker ' + found.first.tracker_id +
                               ' at ' + (found.first.address || '') +
                               (found.first.version ? ' \u00b7 version ' +
                                found.first.version : '');
      document.title = 'Tessera cluster (tracker ' + found.first.tracker_id +
                       ')';
      $('tracker-page').hidden = false;
      loop(trackerTick);
    } else {
      $('kind-title').textContent = '\u00b7 node';
      document.title = 'Tessera node ' + (found.first.addr || '');
      $('node-page').hidden = false;
      loop(nodeTick);
    }
  }

  document.addEventListener('DOMContentLoaded', start);
}());
