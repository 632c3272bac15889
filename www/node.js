/*
 * node.js -- the dashboard's node view: the node's rates and totals,
 * each download (progress, rate chart, time left, sources and what each
 * sent, a chunk map coloured by source, pause/resume/cancel/retry), who
 * downloads from this node and the shared files, from /api/v1/node,
 * /downloads, /downloads/G/N/chunks, /uploads and /shares.  Registers
 * Tessera.views.node (app.js runs it).
 */
'use strict';

(function () {
  const T = window.Tessera;
  const { PALETTE, $, el, clear, num, fmtBytes, fmtRate, axisRate, fmtDur,
          fmtNum, banner, api, lineChart, series, push, trimChart, stat } = T;
  const C_MISSING = '#e3e6ea';
  const C_INFLIGHT = '#ffb703';
  const C_UNKNOWN = '#8fa3b8';
  const MAP_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz' +
                    '0123456789';

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

  T.views = T.views || {};
  T.views.node = nodeTick;
}());
