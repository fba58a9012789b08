/* mlreg dashboard: a read-only view of the registry built from the /api/v1
 * JSON API alone (the same endpoints and tokens as the CLI).
 *
 * Rules this file keeps, because every name, metric, reason and title it
 * shows comes from pushers and may hold markup:
 *  - the DOM is built with createElement / createElementNS and text goes in
 *    through text nodes (textContent); no innerHTML, no HTML strings, no eval;
 *  - links are only the hash routes built here (#/models/..., #/audit);
 *  - every request goes to this page's own origin (the server also sends a
 *    CSP with connect-src 'self');
 *  - the token pasted into the form lives in sessionStorage (gone when the
 *    tab closes) and is sent only as "Authorization: Bearer".
 *
 * Routes: #/ (models), #/models/M, #/models/M/releases/V, #/audit.
 */
'use strict';

(function () {
  const TOKEN_KEY = 'mlreg.token';
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const MAX_PAGES = 50; /* pages of promotions followed on a model page */
  const AUDIT_TAIL = 200; /* audit entries shown, newest first */
  const view = document.getElementById('view');
  let renderSeq = 0; /* a newer navigation makes older renders drop their result */

  /* ---- DOM helpers --------------------------------------------------------- */

  function append(node, children) {
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      if (Array.isArray(c)) append(node, c);
      else if (typeof c === 'string' || typeof c === 'number') node.appendChild(document.createTextNode(String(c)));
      else node.appendChild(c);
    }
    return node;
  }

  /* el('td', {class: 'num'}, 'text', child...): attributes are set with
   * setAttribute (values are never parsed as markup). */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined) node.setAttribute(k, String(v));
    }
    return append(node, children);
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined) node.setAttribute(k, String(v));
    }
    return append(node, children);
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function table(head, rows, attrs) {
    return el('table', attrs || {},
      el('thead', {}, el('tr', {}, head.map((h) => el('th', {}, h)))),
      el('tbody', {}, rows));
  }

  /* ---- formatting ------------------------------------------------------------ */

  /* A metric as the API gave it: JavaScript prints a number as its shortest
   * round-trip decimal, like the server. */
  function num(v) {
    return typeof v === 'number' ? String(v) : (v === null || v === undefined ? '—' : String(v));
  }

  /* A difference of two decimals (0.87 - 0.88 = -0.010000000000000009):
   * twelve significant digits drop the binary noise. */
  function delta(v) {
    if (typeof v !== 'number') return '—';
    const r = Number(v.toPrecision(12));
    return (r > 0 ? '+' : '') + String(r);
  }

  function bytes(n) {
    if (typeof n !== 'number') return '—';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let v = n;
    let u = 0;
    while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
    return u === 0 ? n + ' B' : v.toFixed(1) + ' ' + units[u];
  }

  function when(t) {
    return typeof t === 'string' ? t.replace(/\.\d+Z$/, 'Z') : '—';
  }

  function short(d, n) {
    return typeof d === 'string' ? d.slice(0, n) : '—';
  }

  function segs(name) {
    return String(name).split('/').map(encodeURIComponent).join('/');
  }

  function modelHref(m) { return '#/models/' + segs(m); }
  function releaseHref(m, v) { return modelHref(m) + '/releases/' + encodeURIComponent(v); }
  function apiModel(m) { return '/api/v1/models/' + segs(m); }
  function apiRelease(m, v) { return apiModel(m) + '/versions/' + encodeURIComponent(v); }

  function badge(text, kind) { return el('span', { class: 'badge ' + kind }, text); }

  /* ---- the API ---------------------------------------------------------------- */

  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
  }

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  /* GET @p path of this origin with the token; JSON (or text when @p text).
   * A non-2xx answer throws an ApiError with the API's own message. */
  async function api(path, text) {
    const headers = {};
    const t = token();
    if (t) headers.Authorization = 'Bearer ' + t;
    const r = await fetch(path, { headers, cache: 'no-store', credentials: 'omit', redirect: 'error' });
    if (!r.ok) {
      let msg = r.status + ' ' + r.statusText;
      try {
        const j = await r.json();
        if (j && j.errors && j.errors[0] && j.errors[0].message) msg = r.status + ': ' + j.errors[0].message;
      } catch (e) { /* not JSON: keep the status line */ }
      throw new ApiError(r.status, msg);
    }
    return text ? r.text() : r.json();
  }

  /* The items @p key of the paged listing @p base (?since=SEQ&limit=N,
   * "next" the since of the next page or null) from @p since on, following
   * at most MAX_PAGES pages. */
  async function apiPages(base, key, since, limit) {
    let out = [];
    let at = since;
    for (let i = 0; i < MAX_PAGES && at !== null && at !== undefined; i++) {
      const j = await api(base + '?since=' + encodeURIComponent(at) + (limit ? '&limit=' + limit : ''));
      out = out.concat(j[key] || []);
      at = j.next;
    }
    return out;
  }

  /* ---- token form ----------------------------------------------------------- */

  function showTokenState() {
    const s = document.getElementById('token-state');
    s.textContent = token() ? 'token set for this tab' : 'no token';
  }

  function setupToken() {
    const form = document.getElementById('token-form');
    const input = document.getElementById('token-input');
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const v = input.value.trim();
      input.value = '';
      try {
        if (v) sessionStorage.setItem(TOKEN_KEY, v);
      } catch (e) { /* storage refused: nothing kept */ }
      showTokenState();
      route();
    });
    document.getElementById('token-forget').addEventListener('click', () => {
      try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* nothing kept */ }
      showTokenState();
      route();
    });
    showTokenState();
  }

  /* ---- pages ------------------------------------------------------------------ */

  function problem(err) {
    const box = el('div', { class: 'error', role: 'alert' }, String(err.message || err));
    if (err.status === 401 || err.status === 403) {
      append(box, [el('br'), 'Paste a token with the read role into the form above.']);
    }
    return box;
  }

  async function pageModels() {
    const j = await api('/api/v1/models');
    const models = j.models || [];
    const stages = await Promise.all(models.map((m) =>
      api(apiModel(m.name) + '/stages').catch(() => null)));
    const rows = models.map((m, i) => {
      const st = stages[i] ? stages[i].stages.filter((s) => s.version !== null) : [];
      const latest = m.latest || {};
      return el('tr', { 'data-model': m.name },
        el('td', {}, el('a', { href: modelHref(m.name) }, m.name)),
        el('td', { class: 'num releases' }, String(m.releases)),
        el('td', { class: 'latest' }, latest.version ? el('a', { href: releaseHref(m.name, latest.version) }, latest.version) : '—',
          latest.withdrawn ? [' ', badge('withdrawn', 'bad')] : null),
        el('td', {}, when(latest.created)),
        el('td', { class: 'stages' }, st.length ? st.map((s) => el('span', { class: 'stage-chip' }, s.stage + ': ' + s.version)) : '—'));
    });
    return [el('h1', {}, 'Models'),
      models.length ? table(['Model', 'Releases', 'Latest', 'Created', 'Stages'], rows, { id: 'models' })
        : el('p', {}, 'No models yet.')];
  }

  function stagesTable(name, stages) {
    const rows = stages.map((s) => el('tr', { 'data-stage': s.stage },
      el('td', {}, s.stage),
      el('td', { class: 'version' }, s.version ? el('a', { href: releaseHref(name, s.version) }, s.version) : 'empty',
        s.withdrawn ? [' ', badge('withdrawn', 'bad')] : null),
      el('td', {}, when(s.since)),
      el('td', {}, s.by || '—'),
      el('td', { class: 'mono' }, s.image || '—')));
    return table(['Stage', 'Release', 'Since', 'By', 'Image'], rows, { id: 'stages' });
  }

  function signerText(sigs) {
    if (!sigs) return '?';
    if (!sigs.length) return 'unsigned';
    return sigs.map((s) => (s.key_name || s.key_id) + ' (' + s.status + ')').join(', ');
  }

  function metricsList(metrics) {
    const names = Object.keys(metrics || {});
    if (!names.length) return '—';
    return el('ul', { class: 'metrics' }, names.map((k) =>
      el('li', { 'data-metric': k }, el('span', { class: 'mname' }, k), ' ', el('span', { class: 'mval' }, num(metrics[k])))));
  }

  function versionsTable(name, releases, sigs) {
    const rows = releases.map((r, i) => el('tr', { 'data-version': r.version, class: r.withdrawn ? 'withdrawn' : null },
      el('td', {}, el('a', { href: releaseHref(name, r.version) }, r.version)),
      el('td', {}, when(r.created)),
      el('td', { class: 'mono git', title: r.git_sha || '' }, r.git_sha ? short(r.git_sha, 12) : '—'),
      el('td', { class: 'num size', title: typeof r.size === 'number' ? r.size + ' bytes' : '' }, bytes(r.size)),
      el('td', { class: 'num' }, String(r.files)),
      el('td', { class: 'signers' }, signerText(sigs[i])),
      el('td', { class: 'state' }, r.withdrawn
        ? [badge('withdrawn', 'bad'), ' ', el('span', { class: 'reason' }, r.withdrawn.reason || ''), ' (' + (r.withdrawn.by || '?') + ', ' + when(r.withdrawn.time) + ')']
        : (r.purged ? badge('purged', 'bad') : 'available')),
      el('td', {}, metricsList(r.metrics))));
    return table(['Version', 'Created', 'Git SHA', 'Size', 'Files', 'Signers', 'State', 'Metrics'], rows, { id: 'versions' });
  }

  /* The gate thresholds to draw, from the rules each stage has now (the
   * stages answer carries them): a min / max rule at its value; a drop
   * rule as the floor the next promotion to that stage must reach,
   * measured from the release the stage holds now (its baseline):
   * baseline - X for max_drop, baseline - |baseline| * P / 100 for
   * max_drop_pct. */
  function thresholds(stages, releases) {
    const seen = new Map();
    for (const st of stages) {
      for (const r of st.gates || []) {
        if (!r.metric || typeof r.threshold !== 'number') continue;
        seen.set(st.stage + '\u0000' + r.type + '\u0000' + r.metric, { stage: st.stage, metric: r.metric, type: r.type, t: r.threshold });
      }
    }
    const out = [];
    for (const g of seen.values()) {
      if (g.type === 'min' || g.type === 'max') {
        out.push({ stage: g.stage, metric: g.metric, type: g.type, value: g.t, label: g.stage + ' ' + g.type + ' ' + num(g.t) });
        continue;
      }
      if (g.type !== 'max_drop' && g.type !== 'max_drop_pct') continue;
      const st = stages.find((x) => x.stage === g.stage);
      const holder = st && st.version !== null ? releases.find((x) => x.version === st.version) : null;
      const base = holder && holder.metrics ? holder.metrics[g.metric] : undefined;
      if (typeof base !== 'number') continue;
      const floor = Number((g.type === 'max_drop' ? base - g.t : base - (Math.abs(base) * g.t) / 100).toPrecision(12));
      out.push({ stage: g.stage, metric: g.metric, type: 'floor', value: floor, label: g.stage + ' floor ' + num(floor) });
    }
    return out;
  }

  /* One line chart of @p metric across the versions (in push order), the
   * min / max gate thresholds as dashed lines, and the versions that
   * entered a stage marked with the stage's initial. */
  function trendChart(metric, releases, lines, moves) {
    const pts = releases.map((r, i) => ({ r, i, v: r.metrics ? r.metrics[metric] : undefined }))
      .filter((p) => typeof p.v === 'number');
    const W = 580, H = 210, L = 64, R = 150, T = 16, B = 34;
    const values = pts.map((p) => p.v).concat(lines.map((l) => l.value));
    let lo = Math.min(...values), hi = Math.max(...values);
    if (lo === hi) { lo -= Math.abs(lo) * 0.1 || 1; hi += Math.abs(hi) * 0.1 || 1; }
    const pad = (hi - lo) * 0.08;
    lo -= pad; hi += pad;
    const n = releases.length;
    const x = (i) => L + (n <= 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (n - 1));
    const y = (v) => T + ((hi - v) * (H - T - B)) / (hi - lo);
    const root = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, class: 'chart', role: 'img', 'data-metric': metric });
    append(root, [svg('title', {}, metric + ' across versions')]);
    append(root, [svg('line', { x1: L, y1: T, x2: L, y2: H - B, class: 'axis' }),
      svg('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, class: 'axis' }),
      svg('text', { x: L - 10, y: T + 4, class: 'tick', 'text-anchor': 'end' }, num(Number(hi.toPrecision(4)))),
      svg('text', { x: L - 10, y: H - B, class: 'tick', 'text-anchor': 'end' }, num(Number(lo.toPrecision(4))))]);
    releases.forEach((r, i) => {
      append(root, [svg('text', { x: x(i), y: H - B + 14, class: 'tick', 'text-anchor': 'middle' }, r.version)]);
    });
    for (const l of lines) {
      append(root, [svg('line', { x1: L, y1: y(l.value), x2: W - R, y2: y(l.value), class: 'threshold ' + l.type }),
        svg('text', { x: W - R + 4, y: y(l.value) + 4, class: 'tlabel' }, l.label)]);
    }
    if (pts.length > 1) {
      append(root, [svg('polyline', { points: pts.map((p) => x(p.i) + ',' + y(p.v)).join(' '), class: 'series' })]);
    }
    for (const p of pts) {
      append(root, [svg('circle', { cx: x(p.i), cy: y(p.v), r: 4, class: 'point' + (p.r.withdrawn ? ' withdrawn' : ''), 'data-version': p.r.version, 'data-value': String(p.v) },
        svg('title', {}, p.r.version + ': ' + num(p.v) + (p.r.withdrawn ? ' (withdrawn)' : '')))]);
    }
    const stacked = new Map();
    for (const m of moves) {
      const i = releases.findIndex((r) => r.version === m.version);
      if (i < 0) continue;
      const k = stacked.get(i) || 0;
      stacked.set(i, k + 1);
      append(root, [svg('g', { class: 'promo ' + m.action, 'data-version': m.version, 'data-stage': m.to },
        svg('title', {}, m.action + ' of ' + m.version + ' to ' + m.to + ' (' + when(m.time) + ')'),
        svg('rect', { x: x(i) - 7, y: T + k * 15 - 2, width: 14, height: 13, rx: 2 }),
        svg('text', { x: x(i), y: T + k * 15 + 8, 'text-anchor': 'middle' }, m.to.slice(0, 1).toUpperCase()))]);
    }
    return root;
  }

  function charts(releases, promotions, stages) {
    const names = [];
    for (const r of releases) {
      for (const k of Object.keys(r.metrics || {})) if (!names.includes(k)) names.push(k);
    }
    if (!names.length) return el('p', {}, 'No metrics.');
    const lim = thresholds(stages, releases);
    const moves = promotions.filter((p) => p.passed && p.action !== 'refused');
    return el('div', { class: 'charts' }, names.map((k) => el('figure', { class: 'chart-box' },
      el('figcaption', {}, k),
      trendChart(k, releases, lim.filter((l) => l.metric === k), moves))));
  }

  /* A rule's outcome: "pass", "fail" or "hold" (a comparison that could
   * not be made, e.g. the baseline was measured on another dataset).
   * Registries that predate "outcome" give only "passed". */
  function outcome(r) {
    if (r.outcome === 'pass' || r.outcome === 'fail' || r.outcome === 'hold') return r.outcome;
    return r.passed ? 'pass' : 'fail';
  }

  function resultBadge(o) {
    if (o === 'pass') return badge('PASS', 'good');
    if (o === 'hold') return badge('HOLD', 'hold');
    return badge('FAIL', 'bad');
  }

  /* "nightly-eval (KEYID) #seq, evaluated 2026-..." for an evaluation
   * reference {"key_id","key_name","seq","evaluated_at"} of a gate row. */
  function evalRef(label, e) {
    if (!e || typeof e !== 'object') return null;
    return el('div', { class: 'eval-ref' }, label + ': ',
      el('span', { class: 'key' }, typeof e.key_name === 'string' && e.key_name ? e.key_name : '?'),
      ' (' + (typeof e.key_id === 'string' ? e.key_id : '?') + ')',
      typeof e.seq === 'number' ? ' #' + e.seq : '',
      e.evaluated_at ? ', evaluated ' + when(e.evaluated_at) : '');
  }

  /* The dataset and eval code digests a comparison row compared; a pair
   * that differs is marked. */
  function digestPairs(d) {
    if (!d || typeof d !== 'object') return null;
    const c = d.candidate || {}, b = d.baseline || {};
    return ['dataset', 'eval_code'].map((k) => {
      const cv = typeof c[k] === 'string' ? c[k] : null, bv = typeof b[k] === 'string' ? b[k] : null;
      if (cv === null && bv === null) return null;
      return el('div', { class: 'digest-pair' + (cv !== bv ? ' differs' : ''), 'data-digest': k },
        k + ': ', el('span', { class: 'mono', title: cv || '' }, cv ? short(cv, 19) : 'none'),
        cv !== bv ? ' ≠ ' : ' = ', el('span', { class: 'mono', title: bv || '' }, bv ? short(bv, 19) : 'none'));
    });
  }

  /* Where a row's numbers came from, when the registry says so. */
  function evidence(r) {
    return [r.source === 'evaluator' || r.source === 'pusher' ? el('span', { class: 'source ' + r.source }, r.source) : null,
      evalRef('candidate', r.evaluation), evalRef('baseline', r.baseline_evaluation), digestPairs(r.digests)];
  }

  function gateTable(p) {
    const rules = p.rules || [];
    const withEvidence = rules.some((r) => r.source !== undefined || r.evaluation || r.baseline_evaluation || r.digests);
    const rows = rules.map((r) => el('tr', { class: outcome(r), 'data-rule': r.rule },
      el('td', {}, r.rule),
      el('td', { class: 'num' }, num(r.candidate)),
      el('td', { class: 'num' }, r.baseline === null || r.baseline === undefined ? '—' : num(r.baseline) + (r.baseline_version ? ' (' + r.baseline_version + ')' : '')),
      el('td', { class: 'num' }, delta(r.delta)),
      el('td', { class: 'result' }, resultBadge(outcome(r))),
      el('td', {}, r.detail || ''),
      withEvidence ? el('td', { class: 'evidence' }, evidence(r)) : null));
    const head = ['Rule', 'Candidate', 'Baseline', 'Delta', 'Result', 'Detail'].concat(withEvidence ? ['Evidence'] : []);
    return rows.length ? table(head, rows, { class: 'gates' })
      : el('p', { class: 'muted' }, 'No gate rules.');
  }

  /* A promotion's verdict: held (no rule failed, one is on hold), refused,
   * or moved. */
  function verdictOf(p) {
    const rules = p.rules || [];
    const failed = rules.filter((r) => outcome(r) === 'fail').length;
    const held = rules.filter((r) => outcome(r) === 'hold').length;
    if (p.passed) return { kind: 'passed', failed, held, text: p.action === 'rollback' ? 'ROLLED BACK' : 'PROMOTED' };
    if (p.held === true || (failed === 0 && held > 0)) {
      return { kind: 'held', failed, held, text: 'HELD (' + held + ' of ' + rules.length + ' rules on hold)' };
    }
    return { kind: 'refused', failed, held, text: 'REFUSED (' + failed + ' of ' + rules.length + ' rules failed)' };
  }

  function promotionItem(name, p) {
    const v = verdictOf(p);
    const failed = v.failed;
    const verdict = badge(v.text, v.kind === 'passed' ? 'good' : (v.kind === 'held' ? 'hold' : 'bad'));
    /* a break-glass move: the gates failed and it moved anyway */
    const override = p.override === true;
    return el('section', { class: 'promotion ' + v.kind + (override ? ' override' : ''), 'data-seq': p.seq },
      el('h3', {}, '#' + p.seq + ' ', p.action + ' ',
        el('a', { href: releaseHref(name, p.version) }, p.version), ' → ' + p.to + ' ',
        verdict, override ? [' ', badge('OVERRIDE (' + failed + ' of ' + (p.rules || []).length + ' rules failed)', 'override')] : ''),
      el('p', { class: 'meta' }, when(p.time) + ' by ' + (p.actor || '?'),
        p.from_version ? ', replacing ' + p.from_version : '',
        p.reason ? [', reason: ', el('q', { class: 'reason' }, p.reason)] : ''),
      override ? el('p', { class: 'meta override' }, 'break-glass override approved by ' +
        (Array.isArray(p.override_approvers) ? p.override_approvers.map(String).join(', ') : '?'),
      typeof p.override_reason === 'string' ? [', reason: ', el('q', { class: 'reason override-reason' }, p.override_reason)] : '') : null,
      p.action === 'rollback' ? null : gateTable(p));
  }

  async function pageModel(name) {
    const [model, stages, promotions] = await Promise.all([
      api(apiModel(name)), api(apiModel(name) + '/stages'), apiPages(apiModel(name) + '/promotions', 'promotions', 0, 0)]);
    const releases = model.releases || [];
    const sigs = releases.map((r) => (Array.isArray(r.signers) ? r.signers : null));
    const newestFirst = promotions.slice().sort((a, b) => b.seq - a.seq);
    return [el('p', { class: 'crumbs' }, el('a', { href: '#/' }, 'Models'), ' / ' + name),
      el('h1', {}, name),
      el('h2', {}, 'Stages'), stagesTable(name, stages.stages || []),
      el('h2', {}, 'Versions (' + releases.length + ')'), versionsTable(name, releases, sigs),
      el('h2', {}, 'Metric trends'), charts(releases, promotions, stages.stages || []),
      el('h2', {}, 'Promotion history'),
      newestFirst.length ? el('div', { id: 'promotions' }, newestFirst.map((p) => promotionItem(name, p)))
        : el('p', {}, 'No promotions yet.')];
  }

  /* " [ci_low, ci_high]" of a metric the eval report gave an interval for. */
  function interval(ci) {
    if (!ci || typeof ci !== 'object' || typeof ci.ci_low !== 'number' || typeof ci.ci_high !== 'number') return null;
    return [' ', el('span', { class: 'ci' }, '[' + num(ci.ci_low) + ', ' + num(ci.ci_high) + ']')];
  }

  /* The evaluations attached to a release (docs/evaluations.md), newest
   * first; the one gates would use now (the newest that counts) marked. */
  function evaluationsTable(ans) {
    if (ans === null) return el('p', { class: 'muted' }, 'This registry does not list evaluations.');
    const list = Array.isArray(ans.evaluations) ? ans.evaluations.slice().sort((a, b) => b.seq - a.seq) : [];
    if (!list.length) return el('p', { id: 'no-evaluations' }, 'None.');
    const inForce = list.find((e) => e.counts === true);
    const rows = list.map((e) => el('tr', { 'data-seq': e.seq, class: e === inForce ? 'in-force' : null },
      el('td', { class: 'num' }, String(e.seq)),
      el('td', { class: 'key-name' }, typeof e.key_name === 'string' && e.key_name ? e.key_name : '—'),
      el('td', { class: 'mono key-id' }, e.key_id || '—'),
      el('td', {}, e.role || '—'),
      el('td', { class: 'trust' }, e.counts === true ? badge('trusted evaluator', 'good')
        : badge(String(e.status || '?') + (e.role === 'evaluator' ? '' : ', not an evaluator'), 'bad'),
      e === inForce ? [' ', badge('used by gates', 'good')] : null),
      el('td', { class: 'evaluated-at' }, when(e.evaluated_at)),
      el('td', {}, (e.attached_by || '?') + ', ' + when(e.attached_at)),
      el('td', {}, typeof e.dataset === 'string' ? e.dataset : '—'),
      el('td', { class: 'mono dataset-digest' }, typeof e.dataset_digest === 'string' ? e.dataset_digest : '—'),
      el('td', { class: 'mono code-digest' }, typeof e.eval_code_digest === 'string' ? e.eval_code_digest : '—'),
      el('td', {}, metricsList(e.metrics))));
    return table(['Seq', 'Evaluator', 'Key id', 'Role', 'Trust', 'Evaluated at', 'Attached', 'Dataset',
      'Dataset digest', 'Code digest', 'Metrics'], rows, { id: 'evaluations' });
  }

  /* Every promotion of this release (the history's own entries): the
   * result, and which ones were break-glass overrides. */
  function promotionsOfRelease(list) {
    if (!list.length) return el('p', {}, 'None.');
    const rows = list.map((p) => {
      const v = verdictOf(p);
      return el('tr', { 'data-seq': p.seq, class: v.kind + (p.override === true ? ' override' : '') },
        el('td', { class: 'num' }, String(p.seq)), el('td', {}, p.to || '—'), el('td', {}, when(p.time)),
        el('td', {}, p.actor || '—'),
        el('td', { class: 'result' }, badge(v.text, v.kind === 'passed' ? 'good' : (v.kind === 'held' ? 'hold' : 'bad')),
          p.override === true ? [' ', badge('OVERRIDE', 'override')] : null),
        el('td', { class: 'override-by' }, p.override === true
          ? 'approved by ' + (Array.isArray(p.override_approvers) ? p.override_approvers.map(String).join(', ') : '?') : ''),
        el('td', { class: 'reason' }, typeof p.override_reason === 'string' ? p.override_reason : (p.reason || '')));
    });
    return table(['Seq', 'Stage', 'Time', 'By', 'Result', 'Override', 'Reason'], rows, { id: 'release-promotions' });
  }

  /* The statement inside a DSSE envelope (base64 JSON), or null. */
  function statement(env) {
    try {
      const bin = atob(env.payload);
      const bytesArr = Uint8Array.from(bin, (c) => c.charCodeAt(0));
      return JSON.parse(new TextDecoder().decode(bytesArr));
    } catch (e) {
      return null;
    }
  }

  async function pageRelease(name, version) {
    const base = apiRelease(name, version);
    const [rel, sigs, att, imgs, apps, stages, evals, promotions] = await Promise.all([
      api(base), api(base + '/signatures'), api(base + '/attestations'), api(base + '/images'),
      api(base + '/approvals'), api(apiModel(name) + '/stages'),
      /* a registry without evaluations answers 404: the section says so */
      api(base + '/evaluations').catch((e) => { if (e.status === 404) return null; throw e; }),
      apiPages(apiModel(name) + '/promotions', 'promotions', 0, 0)]);
    const holding = (stages.stages || []).filter((s) => s.version === rel.version).map((s) => s.stage);
    const summary = [
      ['Digest', el('span', { class: 'mono', id: 'release-digest' }, rel.digest)],
      ['Created', when(rel.created)],
      ['Pushed by', rel.pushed_by || '—'],
      ['Git SHA', el('span', { class: 'mono' }, rel.git_sha || '—')],
      ['Eval dataset', rel.eval_dataset || '—'],
      ['Eval dataset digest', el('span', { class: 'mono', id: 'eval-dataset-digest' }, typeof rel.eval_dataset_digest === 'string' ? rel.eval_dataset_digest : '—')],
      ['Eval code digest', el('span', { class: 'mono', id: 'eval-code-digest' }, typeof rel.eval_code_digest === 'string' ? rel.eval_code_digest : '—')],
      ['Size', bytes(rel.size) + ' (' + rel.size + ' bytes)'],
      ['Stages', holding.length ? holding.join(', ') : 'none'],
      ['State', rel.withdrawn ? [badge('withdrawn', 'bad'), ' ', el('span', { class: 'reason' }, rel.withdrawn.reason || ''), ' by ' + (rel.withdrawn.by || '?') + ' at ' + when(rel.withdrawn.time)]
        : (rel.purged ? badge('purged', 'bad') : 'available')]];
    const files = (rel.files || []).map((f) => el('tr', {},
      el('td', {}, f.kind || '—'), el('td', {}, f.title || '—'),
      el('td', { class: 'num', title: f.size + ' bytes' }, bytes(f.size)),
      el('td', { class: 'mono' }, f.digest), el('td', { class: 'mono' }, f.media_type || '—')));
    const intervals = rel.metric_intervals && typeof rel.metric_intervals === 'object' ? rel.metric_intervals : {};
    const metricRows = Object.keys(rel.metrics || {}).map((k) => el('tr', { 'data-metric': k },
      el('td', {}, k), el('td', { class: 'num' }, el('span', { class: 'mval' }, num(rel.metrics[k])),
        interval(intervals[k]))));
    const sigRows = (sigs.signatures || []).map((s) => el('tr', {},
      el('td', {}, s.key_name || '—'), el('td', { class: 'mono' }, s.key_id), el('td', {}, s.role || '—'),
      el('td', {}, s.status === 'trusted' ? badge(s.status, 'good') : badge(String(s.status), 'bad')),
      el('td', {}, s.counts ? 'yes' : 'no'), el('td', {}, (s.attached_by || '?') + ', ' + when(s.attached_at))));
    const attRows = (att.attestations || []).map((a) => {
      const st = statement(a.envelope || {});
      const pred = st && st.predicate ? st.predicate : {};
      const gates = Array.isArray(pred.gates) ? pred.gates : [];
      return el('tr', {},
        el('td', { class: 'num' }, String(a.seq)), el('td', {}, a.action || '—'), el('td', {}, a.stage || '—'),
        el('td', {}, when(pred.time)), el('td', {}, pred.actor || '—'),
        el('td', {}, gates.length ? gates.filter((g) => g.passed).length + ' of ' + gates.length + ' rules passed' : '—',
          pred.held === true ? [' ', badge('HELD', 'hold')] : null, pred.override === true || (pred.override && pred.override.overridden === true) ? [' ', badge('OVERRIDE', 'override')] : null),
        el('td', { class: 'mono' }, (a.envelope && a.envelope.payloadType) || '—'),
        el('td', { class: 'mono' }, ((a.envelope && a.envelope.signatures) || []).map((s) => s.keyid || '?').join(', ')));
    });
    const imgRows = (imgs.images || []).map((i) => el('tr', {},
      el('td', { class: 'mono image' }, i.image), el('td', { class: 'mono' }, i.digest || '—'),
      el('td', {}, when(i.time)), el('td', {}, i.actor || '—')));
    const appRows = (apps.approvals || []).map((a) => el('tr', {},
      el('td', {}, a.stage || '—'), el('td', { class: 'approver' }, a.approver || '—'), el('td', {}, when(a.time)),
      el('td', { class: 'comment' }, typeof a.comment === 'string' ? a.comment : '')));
    const mine = promotions.filter((p) => p.version === rel.version && p.digest === rel.digest && p.action !== 'rollback')
      .sort((a, b) => b.seq - a.seq);
    return [el('p', { class: 'crumbs' }, el('a', { href: '#/' }, 'Models'), ' / ',
      el('a', { href: modelHref(name) }, name), ' / ' + rel.version),
      el('h1', {}, name + '@' + rel.version),
      el('dl', { class: 'summary' }, summary.map(([k, v]) => [el('dt', {}, k), el('dd', {}, v)])),
      el('h2', {}, 'Metrics'), metricRows.length ? table(['Metric', 'Value'], metricRows, { id: 'release-metrics' }) : el('p', {}, 'No metrics.'),
      el('h2', {}, 'Evaluations'), evaluationsTable(evals),
      el('h2', {}, 'Promotions of this release'), promotionsOfRelease(mine),
      el('h2', {}, 'Files (' + files.length + ')'), table(['Kind', 'Title', 'Size', 'Digest', 'Media type'], files, { id: 'files' }),
      el('h2', {}, 'Signatures'), sigRows.length ? table(['Key', 'Key id', 'Role', 'Status', 'Counts', 'Attached'], sigRows, { id: 'signatures' }) : el('p', {}, 'Unsigned.'),
      el('h2', {}, 'Approvals'), appRows.length ? table(['Stage', 'Approver', 'Time', 'Comment'], appRows, { id: 'approvals' }) : el('p', {}, 'None.'),
      el('h2', {}, 'Promotion attestations'), attRows.length ? table(['Seq', 'Action', 'Stage', 'Time', 'Actor', 'Gates', 'Payload type', 'Signed by'], attRows, { id: 'attestations' }) : el('p', {}, 'None.'),
      el('h2', {}, 'Image tags'), imgRows.length ? table(['Image', 'Digest', 'Recorded', 'By'], imgRows, { id: 'images' }) : el('p', {}, 'None recorded.')];
  }

  function auditRow(text) {
    let e = null;
    try { e = JSON.parse(text); } catch (err) { e = null; }
    if (!e) return el('tr', { class: 'bad' }, el('td', { colspan: 6 }, 'unreadable entry'));
    const subject = e.subject ? Object.entries(e.subject).map(([k, v]) => k + '=' + (typeof v === 'string' ? v : JSON.stringify(v))).join(' ') : '';
    const details = e.details ? JSON.stringify(e.details) : '';
    return el('tr', { 'data-action': e.action || '', class: e.action === 'blob.link' ? 'blob-link' : null },
      el('td', { class: 'num' }, String(e.seq)), el('td', {}, when(e.time)), el('td', {}, e.actor || '—'),
      el('td', {}, e.action || '—'), el('td', { class: 'mono subject' }, subject),
      el('td', { class: 'mono details' }, details));
  }

  function b64bytes(t) {
    const bin = atob(t);
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  }

  function hexUpper(bytesArr) {
    return Array.from(bytesArr, (b) => b.toString(16).padStart(2, '0')).join('').toUpperCase();
  }

  /* Checks the signed note @p cp (docs/audit-api.md: a checkpoint signed
   * as a golang.org/x/mod/sumdb/note) with the log key @p keyText (minisign
   * format) here in the browser, with WebCrypto's Ed25519: the note's origin
   * must be "mlreg-audit/<KEYID>" of that key, and a signature line of
   * that origin whose key hash is the key's must verify over the text up to
   * the blank line. Resolves to {ok, keyId, message}; ok is null when the
   * browser cannot check (no WebCrypto Ed25519, e.g. a page not served
   * over https or from loopback). This checks the registry's checkpoint
   * against the registry's own key: compare the key id with the one you
   * pinned (mlreg audit verify --log-key). */
  async function verifyCheckpoint(cp, keyText) {
    const subtle = window.crypto && window.crypto.subtle;
    if (!subtle) return { ok: null, keyId: null, message: 'not checked: this browser offers no WebCrypto here (a page over plain http from another host)' };
    const keyLine = keyText.split('\n')[1] || '';
    let raw;
    try { raw = b64bytes(keyLine.trim()); } catch (e) { return { ok: false, keyId: null, message: 'the log key is not minisign base64' }; }
    if (raw.length !== 42 || raw[0] !== 0x45 || raw[1] !== 0x64) return { ok: false, keyId: null, message: 'the log key is not a minisign Ed25519 key' };
    const keyId = hexUpper(raw.slice(2, 10).reverse());
    const pk = raw.slice(10);
    let key;
    try {
      key = await subtle.importKey('raw', pk, { name: 'Ed25519' }, false, ['verify']);
    } catch (e) {
      return { ok: null, keyId, message: 'not checked: this browser\'s WebCrypto has no Ed25519' };
    }
    const at = cp.lastIndexOf('\n\n');
    if (at < 0 || !cp.endsWith('\n')) return { ok: false, keyId, message: 'malformed checkpoint: no signature block' };
    const body = new TextEncoder().encode(cp.slice(0, at + 1));
    const origin = cp.slice(0, cp.indexOf('\n'));
    if (origin !== 'mlreg-audit/' + keyId) return { ok: false, keyId, message: 'the checkpoint names origin ' + origin + ', not mlreg-audit/' + keyId };
    const hashIn = new Uint8Array(origin.length + 2 + 32);
    hashIn.set(new TextEncoder().encode(origin + '\n'), 0);
    hashIn[origin.length + 1] = 1;
    hashIn.set(pk, origin.length + 2);
    const kh = new Uint8Array(await subtle.digest('SHA-256', hashIn)).slice(0, 4);
    for (const line of cp.slice(at + 2).split('\n')) {
      if (!line.startsWith('\u2014 ' + origin + ' ')) continue;
      let sig;
      try { sig = b64bytes(line.slice(origin.length + 3)); } catch (e) { continue; }
      if (sig.length !== 68 || sig[0] !== kh[0] || sig[1] !== kh[1] || sig[2] !== kh[2] || sig[3] !== kh[3]) continue;
      const good = await subtle.verify({ name: 'Ed25519' }, key, sig.slice(4), body);
      return good ? { ok: true, keyId, message: 'signature verified in this browser (WebCrypto Ed25519) with log key ' + keyId }
        : { ok: false, keyId, message: 'the signature by log key ' + keyId + ' does NOT verify' };
    }
    return { ok: false, keyId, message: 'no signature by log key ' + keyId };
  }

  async function pageAudit() {
    const [cp, first, logKey] = await Promise.all([api('/api/v1/audit/checkpoint', true), api('/api/v1/audit?limit=1'),
      api('/api/v1/audit/key', true)]);
    const check = await verifyCheckpoint(cp, logKey);
    const size = first.size || 0;
    const since = Math.max(0, size - AUDIT_TAIL);
    const entries = size ? await apiPages('/api/v1/audit', 'entries', since, AUDIT_TAIL) : [];
    const rows = entries.slice().reverse().map(auditRow);
    const tbl = table(['Seq', 'Time', 'Actor', 'Action', 'Subject', 'Details'], rows, { id: 'audit', class: 'hide-blob-links' });
    const toggle = el('input', { type: 'checkbox', id: 'show-blob-links' });
    toggle.addEventListener('change', () => tbl.classList.toggle('hide-blob-links', !toggle.checked));
    return [el('h1', {}, 'Audit log'),
      el('h2', {}, 'Latest signed checkpoint'), el('pre', { class: 'checkpoint', id: 'checkpoint' }, cp),
      el('p', { id: 'checkpoint-status', class: 'cp-status ' + (check.ok === true ? 'good' : (check.ok === false ? 'bad' : 'unknown')),
        'data-ok': String(check.ok), 'data-key-id': check.keyId || '' },
      check.ok === true ? badge('VERIFIED', 'good') : (check.ok === false ? badge('NOT VERIFIED', 'bad') : badge('NOT CHECKED', 'hold')),
      ' ' + check.message + (check.ok === true ? '; compare the key id with the log key you pinned (mlreg audit verify --log-key).' : '')),
      el('p', {}, size + ' entries; the latest ' + entries.length + ' below, newest first. ',
        el('label', {}, toggle, ' show blob.link rows')),
      tbl];
  }

  /* ---- router ----------------------------------------------------------------- */

  function parseHash() {
    const h = location.hash.replace(/^#/, '');
    if (h === '' || h === '/') return { page: 'models' };
    if (h === '/audit') return { page: 'audit' };
    if (h.startsWith('/models/')) {
      const rest = h.slice('/models/'.length);
      const at = rest.lastIndexOf('/releases/');
      try {
        if (at > 0) {
          return { page: 'release', name: rest.slice(0, at).split('/').map(decodeURIComponent).join('/'),
            version: decodeURIComponent(rest.slice(at + '/releases/'.length)) };
        }
        return { page: 'model', name: rest.split('/').map(decodeURIComponent).join('/') };
      } catch (e) {
        return { page: 'unknown' };
      }
    }
    return { page: 'unknown' };
  }

  async function route() {
    const seq = ++renderSeq;
    const r = parseHash();
    clear(view);
    view.setAttribute('data-page', r.page);
    view.setAttribute('aria-busy', 'true');
    append(view, [el('p', { class: 'muted' }, 'Loading…')]);
    let content;
    try {
      if (r.page === 'models') content = await pageModels();
      else if (r.page === 'model') content = await pageModel(r.name);
      else if (r.page === 'release') content = await pageRelease(r.name, r.version);
      else if (r.page === 'audit') content = await pageAudit();
      else content = [el('h1', {}, 'Not found'), el('p', {}, el('a', { href: '#/' }, 'Models'))];
    } catch (err) {
      content = [problem(err)];
    }
    if (seq !== renderSeq) return;
    clear(view);
    append(view, content);
    view.setAttribute('data-render', String(seq));
    view.setAttribute('aria-busy', 'false');
  }

  setupToken();
  window.addEventListener('hashchange', route);
  route();
})();
