// dashboard.test.mjs: the dashboard in a real browser (Debian's chromium,
// driven by playwright-core) against a running, seeded `mlreg serve`.
// Run by tests/integration/test_dashboard.sh, which seeds the server and
// sets:
//   MLREG_URL        the server (http://127.0.0.1:PORT)
//   DASH_TOKEN       a token with the read role
//   DASH_ARTIFACTS   where the screenshots go
//   DASH_PREFIX_TOKEN  a token whose read role is limited to vision/
// Prints one TAP line per check ("ok - ..." / "not ok - ...") and exits 1
// when any failed. Every number the page shows is compared with what the
// API answers to the same token.
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const URL_BASE = process.env.MLREG_URL;
const TOKEN = process.env.DASH_TOKEN;
const ART = process.env.DASH_ARTIFACTS;
const MODEL = 'vision/clf';
let failed = 0;

function ok(cond, name, detail) {
  if (cond) {
    console.log('ok - ' + name);
  } else {
    failed++;
    console.log('not ok - ' + name + (detail === undefined ? '' : ' (' + String(detail).slice(0, 400) + ')'));
  }
}

async function api(path, text) {
  const r = await fetch(URL_BASE + path, { headers: { Authorization: 'Bearer ' + TOKEN } });
  if (!r.ok) throw new Error(path + ': ' + r.status);
  return text ? r.text() : r.json();
}

if (!URL_BASE || !TOKEN || !ART) {
  console.log('not ok - MLREG_URL, DASH_TOKEN and DASH_ARTIFACTS are set');
  process.exit(1);
}
mkdirSync(ART, { recursive: true });

const profile = mkdtempSync(join(tmpdir(), 'mlreg-chromium-'));
const requests = [];
const dialogs = [];
const pageErrors = [];
const cspReports = [];
let ctx;
const watchdog = setTimeout(() => {
  console.log('not ok - the browser test ends within 50 s');
  process.exit(1);
}, 50000);

try {
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = ctx.pages()[0] || await ctx.newPage();
  page.setDefaultTimeout(10000);
  ctx.on('request', (r) => requests.push(r.url()));
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) cspReports.push(m.text()); });

  // Goes to @p hash and waits for that render to finish (data-render
  // counts the renders, so the page left behind cannot pass for it).
  const loaded = async (hash) => {
    const before = await page.getAttribute('#view', 'data-render');
    await page.evaluate((h) => { location.hash = h; }, hash);
    await page.waitForFunction((b) => {
      const v = document.getElementById('view');
      return v.getAttribute('aria-busy') === 'false' && v.getAttribute('data-render') !== b;
    }, before);
  };
  const xssFlag = () => page.evaluate(() => window.__mlreg_xss);

  // ---- no token yet: the page loads, the API asks for one ----------------------
  await page.goto(URL_BASE + '/');
  await page.waitForSelector('#view[aria-busy="false"]');
  const noTok = await page.textContent('#view');
  ok(/401/.test(noTok) && /Paste a token/.test(noTok), 'without a token the page says the API wants one', noTok);

  // ---- the token: pasted once, kept in sessionStorage ---------------------------
  await page.fill('#token-input', TOKEN);
  await page.click('#token-form button[type=submit]');
  await page.waitForSelector('#models');
  const stored = await page.evaluate(() => ({
    session: sessionStorage.getItem('mlreg.token'), local: localStorage.length, cookie: document.cookie }));
  ok(stored.session === TOKEN, 'the token is kept in sessionStorage');
  ok(stored.local === 0 && stored.cookie === '', 'nothing in localStorage or cookies');
  ok(await page.inputValue('#token-input') === '', 'the input is cleared after use');

  // ---- models -------------------------------------------------------------------
  const models = (await api('/api/v1/models')).models;
  const rows = await page.$$eval('#models tbody tr', (trs) => trs.map((tr) => ({
    model: tr.getAttribute('data-model'), releases: tr.querySelector('.releases').textContent,
    stages: tr.querySelector('.stages').textContent })));
  ok(rows.length === models.length, 'the models page lists every model', rows.length + ' vs ' + models.length);
  ok(models.every((m) => rows.some((r) => r.model === m.name && r.releases === String(m.releases))),
    'each model shows its release count as the API says', JSON.stringify(rows));
  const clfRow = rows.find((r) => r.model === MODEL) || {};
  ok(/staging: 1\.0/.test(clfRow.stages) && /production: 2\.0/.test(clfRow.stages),
    'the models page shows the stages a model has', clfRow.stages);
  await page.screenshot({ path: join(ART, 'models.png'), fullPage: true });

  // ---- model page -----------------------------------------------------------------
  await page.click('#models a[href="#/models/vision/clf"]');
  await page.waitForSelector('#versions');
  const model = await api('/api/v1/models/vision/clf');
  const stagesApi = (await api('/api/v1/models/vision/clf/stages')).stages;
  const stagesUi = await page.$$eval('#stages tbody tr', (trs) => trs.map((tr) => ({
    stage: tr.getAttribute('data-stage'), version: tr.querySelector('.version').textContent.trim() })));
  ok(stagesApi.every((s) => stagesUi.some((u) => u.stage === s.stage && u.version.startsWith(s.version || 'empty'))),
    'every stage shows the release it holds', JSON.stringify(stagesUi));
  const prodImage = await page.textContent('#stages tr[data-stage="production"]');
  ok(prodImage.includes(stagesApi.find((s) => s.stage === 'production').image), 'production shows its image binding');

  const versionsUi = await page.$$eval('#versions tbody tr', (trs) => trs.map((tr) => ({
    version: tr.getAttribute('data-version'),
    git: tr.querySelector('.git').getAttribute('title'),
    size: tr.querySelector('.size').getAttribute('title'),
    signers: tr.querySelector('.signers').textContent,
    state: tr.querySelector('.state').textContent,
    metrics: Array.from(tr.querySelectorAll('li[data-metric]')).map((li) => [li.getAttribute('data-metric'), li.querySelector('.mval').textContent]),
  })));
  ok(versionsUi.length === model.releases.length, 'every version is listed', versionsUi.length);
  let metricsMatch = true;
  let metricDetail = '';
  for (const r of model.releases) {
    const u = versionsUi.find((v) => v.version === r.version);
    if (!u) { metricsMatch = false; metricDetail = 'missing ' + r.version; break; }
    for (const [k, v] of Object.entries(r.metrics)) {
      const shown = u.metrics.find(([n]) => n === k);
      if (!shown || Number(shown[1]) !== v || shown[1] !== String(v)) { metricsMatch = false; metricDetail = r.version + ' ' + k + ' ' + JSON.stringify(shown); }
    }
    if (u.git !== (r.git_sha || '') || u.size !== r.size + ' bytes') { metricsMatch = false; metricDetail = r.version + ' git/size ' + u.git + ' ' + u.size; }
  }
  ok(metricsMatch, 'metrics, git SHAs and sizes match the API for every version', metricDetail);
  const v10 = versionsUi.find((v) => v.version === '1.0') || {};
  const v11 = versionsUi.find((v) => v.version === '1.1') || {};
  ok(/release-bot \(trusted\)/.test(v10.signers) && v11.signers === 'unsigned', 'signers: 1.0 by release-bot, 1.1 unsigned', v10.signers + ' / ' + v11.signers);
  const perVersionSigs = requests.filter((u) => /\/api\/v1\/models\/vision\/clf\/versions\/[^/]+\/signatures$/.test(new URL(u).pathname));
  ok(perVersionSigs.length === 0, 'the model page takes the signers from the model listing, not one request per version', perVersionSigs.join(' '));
  const w12 = model.releases.find((r) => r.version === '1.2').withdrawn;
  const v12 = versionsUi.find((v) => v.version === '1.2') || {};
  ok(v12.state.includes('withdrawn') && v12.state.includes(w12.reason),
    'the withdrawn release shows its hostile reason as plain text', v12.state);
  ok(v12.metrics.some(([n]) => n === '<img src=x onerror="window.__mlreg_xss=2">'),
    'a hostile metric name is shown as text');

  // charts: one per metric, points at the API's values, thresholds, promotions
  const chartInfo = await page.$$eval('svg.chart', (cs) => cs.map((c) => ({
    metric: c.getAttribute('data-metric'),
    points: Array.from(c.querySelectorAll('circle.point')).map((p) => [p.getAttribute('data-version'), p.getAttribute('data-value')]),
    thresholds: Array.from(c.querySelectorAll('text.tlabel')).map((t) => t.textContent),
    promos: Array.from(c.querySelectorAll('g.promo')).map((g) => g.getAttribute('data-version') + '>' + g.getAttribute('data-stage')),
  })));
  const metricNames = [...new Set(model.releases.flatMap((r) => Object.keys(r.metrics)))];
  ok(chartInfo.length === metricNames.length && metricNames.every((m) => chartInfo.some((c) => c.metric === m)),
    'one trend chart per metric', chartInfo.map((c) => c.metric).join(','));
  const acc = chartInfo.find((c) => c.metric === 'accuracy') || { points: [], thresholds: [], promos: [] };
  ok(model.releases.every((r) => acc.points.some(([v, x]) => v === r.version && Number(x) === r.metrics.accuracy)),
    'the accuracy chart plots the API values of every version', JSON.stringify(acc.points));
  ok(acc.thresholds.includes('staging min 0.85'), 'the staging gate threshold is drawn', JSON.stringify(acc.thresholds));
  // production holds 2.0 (accuracy 0.92) under "accuracy drop <= 0.005"
  ok(acc.thresholds.includes('production floor 0.915'), 'a drop rule is drawn as the floor below the stage holder', JSON.stringify(acc.thresholds));
  const f1c = chartInfo.find((c) => c.metric === 'f1') || { thresholds: [] };
  ok(f1c.thresholds.includes('staging floor 0.86'), 'the f1 drop floor of staging (1.0 holds it, 0.88 - 0.02)', JSON.stringify(f1c.thresholds));
  ok(acc.promos.includes('1.0>staging') && acc.promos.includes('2.0>production') && !acc.promos.includes('1.1>staging'),
    'promotions are marked on the chart, the refused one is not', JSON.stringify(acc.promos));

  // promotion history: the refusal and its failing rule
  const promos = (await api('/api/v1/models/vision/clf/promotions')).promotions;
  const refused = promos.find((p) => !p.passed);
  const sec = await page.$('section.promotion[data-seq="' + refused.seq + '"]');
  ok(sec !== null, 'the refused promotion is in the history');
  if (sec) {
    const head = await sec.$eval('h3', (h) => h.textContent);
    ok(/REFUSED \(1 of 2 rules failed\)/.test(head), 'the refusal says how many rules failed', head);
    const failRows = await sec.$$eval('tr.fail', (trs) => trs.map((tr) => Array.from(tr.cells).map((c) => c.textContent)));
    const failing = refused.rules.find((r) => !r.passed);
    ok(failRows.length === 1 && failRows[0][0] === failing.rule && failRows[0][1] === String(failing.candidate) && failRows[0][4] === 'FAIL',
      'the failing rule is shown with its value and FAIL', JSON.stringify(failRows));
    const f1 = await sec.$eval('tr[data-rule="f1 drop <= 0.02"]', (tr) => Array.from(tr.cells).map((c) => c.textContent));
    ok(f1[2] === '0.88 (1.0)' && f1[3] === '-0.01' && f1[4] === 'PASS', 'the baseline and its delta are shown', JSON.stringify(f1));
    const reason = await sec.$eval('q.reason', (q) => q.textContent);
    ok(reason === refused.reason, 'the hostile promotion reason is plain text', reason);
  }
  ok(await page.$$eval('section.promotion', (s) => s.length) === promos.length, 'every promotion is in the history');
  ok(await page.$('section.promotion.passed h3 >> text=ROLLED BACK') !== null, 'the rollback is in the history');
  await page.screenshot({ path: join(ART, 'model.png'), fullPage: true });
  // the README's picture (docs/img/dashboard.png): the top of a model page
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(ART, 'dashboard.png') });
  // a break-glass move carries a visible OVERRIDE badge (nlp/tagger@0.2 into staging)
  await loaded('#/models/nlp/tagger');
  const ovHead = await page.$eval('section.promotion.override h3 .badge.override', (b) => b.textContent).catch(() => '');
  ok(ovHead === 'OVERRIDE (1 of 2 rules failed)', 'a break-glass promotion shows an OVERRIDE badge', ovHead);
  // nlp/tagger@0.3 was held by the server itself (another dataset than 0.2's)
  const realHeld = await page.$eval('section.promotion.held h3 .badge.hold', (b) => b.textContent).catch(() => '');
  ok(realHeld === 'HELD (1 of 2 rules on hold)', 'the server\'s own held promotion reads HELD', realHeld);
  const realHoldRow = await page.$eval('section.promotion.held tr.hold', (tr) => tr.textContent).catch(() => '');
  ok(/HOLD/.test(realHoldRow) && /re-evaluate the baseline/.test(realHoldRow), 'its f1 row shows HOLD and why', realHoldRow);
  // ... and on its release page
  await loaded('#/models/nlp/tagger/releases/0.2');
  const ovRows = await page.$$eval('#release-promotions tr.override', (trs) => trs.map((tr) => tr.textContent));
  const ovApi = (await api('/api/v1/models/nlp/tagger/promotions')).promotions.filter((p) => p.override === true);
  ok(ovRows.length === 1 && ovApi.length === 1 && ovRows[0].includes('OVERRIDE') &&
    ovRows[0].includes('approved by ' + ovApi[0].override_approvers.join(', ')) && ovRows[0].includes(ovApi[0].override_reason || ovApi[0].reason),
  'the release page says which promotion of the release was an override, by whose approval', JSON.stringify(ovRows));
  const attOv = await page.$$eval('#attestations .badge.override', (n) => n.map((b) => b.textContent));
  ok(attOv.length === 1 && attOv[0] === 'OVERRIDE', 'the override\'s promotion attestation is marked OVERRIDE', JSON.stringify(attOv));

  // the gate table's wire names (outcome, source, evaluation, digests, held),
  // added to the answer in the browser: a registry that sends them gets
  // HOLD rows and a HELD promotion; one that does not (above) is unchanged
  const promoPath = '/api/v1/models/vision/clf/promotions';
  const hostileDs = 'sha256:<b>x</b>';
  const held = {
    seq: 999999, time: '2026-12-05T03:00:00Z', actor: 'release-mgr', action: 'promote', version: '1.1',
    digest: null, to: 'production', from_version: '2.0', passed: false, held: true, reason: null, override: false,
    rules: [
      { rule: 'accuracy drop <= 0.005', type: 'max_drop', metric: 'accuracy', candidate: 0.93, baseline: 0.92,
        baseline_version: '2.0', delta: 0.01, passed: false, outcome: 'hold', source: 'evaluator',
        detail: 'baseline evaluated on another dataset: re-evaluate the baseline',
        evaluation: { key_id: 'ABCDEF0123456789', key_name: '<i>nightly</i>', seq: 41, evaluated_at: '2026-12-05T02:00:00.5Z' },
        baseline_evaluation: null,
        digests: { candidate: { dataset: 'sha256:' + 'a'.repeat(64), eval_code: 'sha256:' + 'c'.repeat(64) },
          baseline: { dataset: hostileDs, eval_code: 'sha256:' + 'c'.repeat(64) } } },
      { rule: 'signed >= 1', type: 'signed', metric: null, candidate: 1, baseline: null, delta: null, passed: true,
        outcome: 'pass', detail: '' }],
  };
  const promoRoute = async (route) => {
    const resp = await route.fetch();
    const j = await resp.json();
    if (j.next === null) j.promotions.push(held);
    await route.fulfill({ response: resp, json: j });
  };
  await page.route((u) => u.pathname === promoPath, promoRoute);
  await loaded('#/models/vision/clf');
  const hsec = await page.$('section.promotion.held[data-seq="999999"]');
  ok(hsec !== null, 'a held promotion is in the history, marked held');
  if (hsec) {
    const hhead = await hsec.$eval('h3 .badge.hold', (b) => b.textContent).catch(() => '');
    ok(hhead === 'HELD (1 of 2 rules on hold)', 'it says HELD, not REFUSED', hhead);
    const hrow = await hsec.$eval('tr.hold', (tr) => ({ cells: Array.from(tr.cells).map((c) => c.textContent),
      differs: Array.from(tr.querySelectorAll('.digest-pair.differs')).map((d) => d.getAttribute('data-digest')) })).catch(() => ({ cells: [], differs: [] }));
    ok(hrow.cells[4] === 'HOLD' && /re-evaluate the baseline/.test(hrow.cells[5]), 'the held row shows HOLD and its detail', JSON.stringify(hrow.cells));
    ok(/^evaluator/.test(hrow.cells[6] || '') && (hrow.cells[6] || '').includes('candidate: <i>nightly</i> (ABCDEF0123456789) #41, evaluated 2026-12-05T02:00:00Z'),
      'the row names its source and the evaluation it used, the key name as text', hrow.cells[6]);
    ok((hrow.cells[6] || '').includes(hostileDs) || (hrow.cells[6] || '').includes(hostileDs.slice(0, 19)), 'the compared digests are shown as text', hrow.cells[6]);
    ok(hrow.differs.length === 1 && hrow.differs[0] === 'dataset', 'the dataset digests that differ are marked, the equal code digests not', JSON.stringify(hrow.differs));
    const passRow = await hsec.$eval('tr.pass', (tr) => tr.cells[4].textContent).catch(() => '');
    ok(passRow === 'PASS', 'a row with outcome pass shows PASS');
    ok(await hsec.$$eval('b, i', (n) => n.length) === 0, 'markup in the evaluation and digests makes no element');
  }
  await page.screenshot({ path: join(ART, 'held.png'), fullPage: true });
  await page.unroute((u) => u.pathname === promoPath, promoRoute);
  await loaded('#/');
  await loaded('#/models/vision/clf');

  // ---- release pages ---------------------------------------------------------------
  await page.click('#versions tr[data-version="2.0"] a');
  await page.waitForSelector('#files');
  const rel = await api('/api/v1/models/vision/clf/versions/2.0');
  ok(await page.textContent('#release-digest') === rel.digest, 'the release page shows the digest');
  const files = await page.$$eval('#files tbody tr', (trs) => trs.map((tr) => tr.cells[3].textContent));
  ok(files.length === rel.files.length && rel.files.every((f) => files.includes(f.digest)), 'every file digest is shown', JSON.stringify(files));
  const sigs = (await api('/api/v1/models/vision/clf/versions/2.0/signatures')).signatures;
  const sigText = await page.textContent('#signatures');
  ok(sigs.length === 1 && sigText.includes(sigs[0].key_id) && sigText.includes('trusted'), 'the signature and its key are shown');
  const att = (await api('/api/v1/models/vision/clf/versions/2.0/attestations')).attestations;
  ok(await page.$$eval('#attestations tbody tr', (t) => t.length) === att.length && att.length >= 2, 'every attestation is listed', att.length);
  const imgs = (await api('/api/v1/models/vision/clf/versions/2.0/images')).images;
  ok((await page.textContent('#images')).includes(imgs[0].image), 'the image tag is shown');
  const apps = (await api('/api/v1/models/vision/clf/versions/2.0/approvals')).approvals;
  const appText = await page.$$eval('#approvals tbody tr', (trs) => trs.map((tr) => [tr.querySelector('.approver').textContent, tr.querySelector('.comment').textContent]));
  ok(apps.length === 1 && appText.length === 1 && appText[0][0] === apps[0].approver && appText[0][1] === (apps[0].comment || ''),
    'the approval is shown with its approver (and its hostile comment as text)', JSON.stringify(appText));
  // evaluations, intervals and the report's digests
  const evals = (await api('/api/v1/models/vision/clf/versions/2.0/evaluations')).evaluations;
  const evalRows = await page.$$eval('#evaluations tbody tr', (trs) => trs.map((tr) => ({
    seq: tr.getAttribute('data-seq'), key: tr.querySelector('.key-name').textContent,
    id: tr.querySelector('.key-id').textContent, trust: tr.querySelector('.trust').textContent,
    at: tr.querySelector('.evaluated-at').textContent, ds: tr.querySelector('.dataset-digest').textContent,
    code: tr.querySelector('.code-digest').textContent,
    metrics: Array.from(tr.querySelectorAll('li[data-metric]')).map((li) => [li.getAttribute('data-metric'), li.querySelector('.mval').textContent]) })));
  ok(evals.length === 1 && evalRows.length === 1, 'the release page lists the evaluation', JSON.stringify(evalRows));
  const e0 = evals[0] || {};
  const r0 = evalRows[0] || { metrics: [] };
  ok(r0.seq === String(e0.seq) && r0.key === 'nightly-eval' && r0.id === e0.key_id && /trusted evaluator/.test(r0.trust) && /used by gates/.test(r0.trust),
    'the evaluation shows its evaluator key, id and that it is trusted and used', JSON.stringify(r0));
  ok(r0.at === e0.evaluated_at.replace(/\.\d+Z$/, 'Z') && r0.ds === e0.dataset_digest && r0.code === e0.eval_code_digest,
    'the evaluation shows evaluated_at and its dataset and code digests', JSON.stringify(r0));
  ok(r0.metrics.some(([n, v]) => n === '<img src=x onerror="window.__mlreg_xss=2">' && v === '0.25') &&
    r0.metrics.some(([n, v]) => n === 'accuracy' && v === String(e0.metrics.accuracy)),
  'the evaluation\'s metrics, a hostile name among them, are shown as text', JSON.stringify(r0.metrics));
  const accRow = await page.$eval('#release-metrics tr[data-metric="accuracy"]', (tr) => tr.cells[1].textContent);
  const ci = rel.metric_intervals.accuracy;
  ok(accRow === rel.metrics.accuracy + ' [' + ci.ci_low + ', ' + ci.ci_high + ']', 'a metric interval is shown as value [ci_low, ci_high]', accRow);
  const f1Row = await page.$eval('#release-metrics tr[data-metric="f1"]', (tr) => tr.cells[1].textContent);
  ok(f1Row === String(rel.metrics.f1), 'a metric without an interval shows its value alone', f1Row);
  ok(await page.textContent('#eval-dataset-digest') === rel.eval_dataset_digest &&
    await page.textContent('#eval-code-digest') === rel.eval_code_digest, 'the report\'s dataset and code digests are shown');
  const relPromos = await page.$$eval('#release-promotions tbody tr', (trs) => trs.map((tr) => tr.getAttribute('data-seq')));
  const promos20 = (await api('/api/v1/models/vision/clf/promotions')).promotions.filter((p) => p.version === '2.0' && p.action !== 'rollback');
  ok(relPromos.length === promos20.length && promos20.every((p) => relPromos.includes(String(p.seq))),
    'the release page lists the promotions of this release', JSON.stringify(relPromos));
  await page.screenshot({ path: join(ART, 'release.png'), fullPage: true });

  // a key name with markup (the registry's names are labels, so the answer
  // is rewritten in the browser) renders as text
  const evalPath = '/api/v1/models/vision/clf/versions/2.0/evaluations';
  const hostileKey = '<script>window.__mlreg_xss=3</script><img src=x onerror="window.__mlreg_xss=4">';
  const evalRoute = async (route) => {
    const resp = await route.fetch();
    const j = await resp.json();
    for (const e of j.evaluations) { e.key_name = hostileKey; e.dataset = hostileKey; }
    await route.fulfill({ response: resp, json: j });
  };
  await page.route((u) => u.pathname === evalPath, evalRoute);
  await loaded('#/models/vision/clf/releases/1.0');
  await loaded('#/models/vision/clf/releases/2.0');
  ok(await page.$eval('#evaluations .key-name', (td) => td.textContent) === hostileKey, 'a hostile evaluator key name is shown as text');
  ok(await page.$$eval('#evaluations script, #evaluations img', (n) => n.length) === 0, '... and makes no element');
  await page.unroute((u) => u.pathname === evalPath, evalRoute);

  await loaded('#/models/vision/clf/releases/1.2');
  const sum12 = await page.textContent('dl.summary');
  ok(sum12.includes(w12.reason) && sum12.includes(rel.eval_dataset), 'release 1.2: withdrawn reason and dataset as text', sum12);

  // ---- audit -----------------------------------------------------------------------
  await page.click('nav a[href="#/audit"]');
  await page.waitForSelector('#checkpoint');
  const cpApi = await api('/api/v1/audit/checkpoint', true);
  const cpUi = await page.textContent('#checkpoint');
  const sizeUi = Number(cpUi.split('\n')[1]);
  const cpNow = await api('/api/v1/audit/checkpoint', true);
  ok(cpUi === cpApi || cpUi === cpNow, 'the audit page shows the signed checkpoint', cpUi);
  const cpStatus = await page.$eval('#checkpoint-status', (p) => ({ ok: p.getAttribute('data-ok'), id: p.getAttribute('data-key-id'), text: p.textContent }));
  const logKeyText = await api('/api/v1/audit/key', true);
  const origin = cpUi.split('\n')[0];
  ok(cpStatus.ok === 'true' && /^VERIFIED signature verified in this browser/.test(cpStatus.text) && origin === 'mlreg-audit/' + cpStatus.id &&
    logKeyText.includes(cpStatus.id), 'the checkpoint signature is verified in the browser with the log key', JSON.stringify(cpStatus));
  const cpPath = '/api/v1/audit/checkpoint';
  const cpRoute = async (route) => {
    const resp = await route.fetch();
    const t = await resp.text();
    const lines = t.split('\n');
    lines[1] = String(Number(lines[1]) + 1); // the tree size changed, the signature kept
    await route.fulfill({ response: resp, body: lines.join('\n') });
  };
  await page.route((u) => u.pathname === cpPath, cpRoute);
  await loaded('#/');
  await loaded('#/audit');
  const badCp = await page.$eval('#checkpoint-status', (p) => ({ ok: p.getAttribute('data-ok'), text: p.textContent }));
  ok(badCp.ok === 'false' && /NOT VERIFIED.*does NOT verify/.test(badCp.text), 'an altered checkpoint is shown as not verified', JSON.stringify(badCp));
  await page.unroute((u) => u.pathname === cpPath, cpRoute);
  await loaded('#/');
  await loaded('#/audit');
  const auditRows = await page.$$eval('#audit tbody tr', (t) => t.length);
  ok(auditRows === sizeUi, 'the audit log lists every entry of the checkpoint', auditRows + ' vs ' + sizeUi);
  const visible = await page.$$eval('#audit tbody tr', (t) => t.filter((r) => r.offsetParent !== null).map((r) => r.getAttribute('data-action')));
  ok(visible.length > 0 && !visible.includes('blob.link'), 'blob.link rows are hidden by default');
  await page.check('#show-blob-links');
  ok(await page.$$eval('#audit tr.blob-link', (t) => t.some((r) => r.offsetParent !== null)), 'the box shows them');
  await page.screenshot({ path: join(ART, 'audit.png'), fullPage: true });

  // ---- the token survives a reload of the tab; forget drops it ---------------------------
  await page.reload();
  await page.waitForSelector('#checkpoint');
  ok(true, 'after a reload the page still reads the API with the kept token');
  await page.click('#token-forget');
  await page.waitForSelector('#view[aria-busy="false"] .error');
  ok(await page.evaluate(() => sessionStorage.getItem('mlreg.token')) === null, 'forget removes the token');

  // ---- a token limited to a prefix: its models' pages, not the registry-wide lists -------
  await page.fill('#token-input', process.env.DASH_PREFIX_TOKEN || '');
  await page.click('#token-form button[type=submit]');
  await loaded('#/models/vision/clf');
  ok(await page.$$eval('#versions tbody tr', (t) => t.length) === model.releases.length,
    'a token limited to vision/ reads the vision/clf page');
  await loaded('#/models/nlp/tagger');
  ok(/^403: /.test(await page.textContent('#view .error')), 'the same token gets the API\'s 403 for nlp/tagger');
  await loaded('#/');
  ok(/^403: /.test(await page.textContent('#view .error')), 'and for the registry-wide models list');

  // ---- nothing from the data ran, nothing left loopback ------------------------------------
  ok(await xssFlag() === undefined, 'no script from the data ran (window flag unset)');
  ok(dialogs.length === 0, 'no dialog opened', dialogs.join('|'));
  ok(pageErrors.length === 0, 'no uncaught error on the page', pageErrors.join('|'));
  ok(cspReports.length === 0, 'no CSP violation (nothing inline was ever tried)', cspReports.join('|'));
  const foreign = requests.filter((u) => new URL(u).hostname !== '127.0.0.1');
  ok(requests.length > 10 && foreign.length === 0, 'every request went to 127.0.0.1', foreign.join(' '));
} catch (e) {
  ok(false, 'the browser run completes', e && e.stack ? e.stack : e);
} finally {
  if (ctx) await ctx.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
  clearTimeout(watchdog);
}
process.exit(failed ? 1 : 0);
