/*
 * common.js -- what every view of the Tessera dashboard shares: the
 * constants, the formatting of sizes, rates and durations, the API key
 * (from the URL fragment into sessionStorage) and the API call that
 * sends it, and the live line charts (Chart.js).  Exported as
 * window.Tessera for tracker.js, node.js and app.js.
 *
 * Every value from the server is put on the page as text (textContent),
 * never as HTML.
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

  window.Tessera = {
    POLL_MS: POLL_MS,
    KEY_SLOT: KEY_SLOT,
    PALETTE: PALETTE,
    state: state,
    $: $,
    el: el,
    clear: clear,
    num: num,
    fmtBytes: fmtBytes,
    fmtRate: fmtRate,
    axisRate: axisRate,
    fmtDur: fmtDur,
    fmtNum: fmtNum,
    clock: clock,
    setConn: setConn,
    banner: banner,
    takeKey: takeKey,
    ApiError: ApiError,
    api: api,
    lineChart: lineChart,
    series: series,
    push: push,
    trimChart: trimChart,
    stat: stat,
    kvRow: kvRow
  };
}());
