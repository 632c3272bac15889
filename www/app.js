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
 * The views are tracker.js and node.js; what they share is common.js.
 *
 * Every value from the server is put on the page as text (textContent),
 * never as HTML.  Polls never overlap: the next one is scheduled when
 * the previous one ends.
 */
'use strict';

(function () {
  const T = window.Tessera;
  const { POLL_MS, KEY_SLOT, state, $, clock, setConn, banner, takeKey,
          api, ApiError } = T;

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
      loop(T.views.tracker);
    } else {
      $('kind-title').textContent = '\u00b7 node';
      document.title = 'Tessera node ' + (found.first.addr || '');
      $('node-page').hidden = false;
      loop(T.views.node);
    }
  }

  document.addEventListener('DOMContentLoaded', start);
}());

