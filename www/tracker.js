/*
 * tracker.js -- the dashboard's tracker view: /api/v1/cluster every
 * poll, one tile per tracker (up or down, leader, replication lag,
 * converged or not, request rate), a summary line and a live chart of
 * requests/s and lag.  Registers Tessera.views.tracker (app.js runs it).
 */
'use strict';

(function () {
  const T = window.Tessera;
  const { PALETTE, $, el, clear, num, fmtNum, fmtDur, api, lineChart,
          series, push, trimChart, stat, kvRow } = T;

  // ---- tracker view -------------------------------------------------------

  const trk = { chart: null, tiles: {} };

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

  T.views = T.views || {};
  T.views.tracker = trackerTick;
}());
