/**
 * `fedgit report` and `fedgit serve` without a browser: what the model says about a federation
 * with stragglers and refusals, that hostile names reach the page only as text, the size of a
 * 20-round report, and the live server's HTTP side (read-only, loopback, server-sent events).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { tempDir, runCli, waitFor } from './helpers/temp.js';
import { troubledFederation, hostileFederation, comparisonFixture, examplesFixture, HOSTILE } from './helpers/report-scenarios.js';
import { decodePng } from './helpers/png.js';
import { crc32, renderPng } from '../operator/report/png.js';
import { renderSlicePng, SLICE_SCALE } from '../operator/report/slices.js';
import { startToyFederation } from './helpers/toy-federation.js';
import { whereFrom, loadPlan } from '../operator/commands/locate.js';
import { readReportModel, renderReportPage } from '../operator/report/build-report.js';
import { parseExperimentView } from '../operator/report/experiment-view.js';
import { pointCount, type ChartSpec } from '../operator/report/charts.js';
import { escapeHtml, renderScriptJson } from '../operator/report/html.js';
import { blandAltman, rocCurve } from '../operator/report/agreement.js';
import { startReportServer } from '../operator/report/serve.js';
import { createLogger } from '../operator/runtime/logging.js';
import { builtinRegistries } from '../bin/registries.js';

const embeddedCharts = (html: string): ChartSpec[] => {
  const m = /<script type="application\/json" id="fedgit-data">([\s\S]*?)<\/script>/.exec(html);
  assert.ok(m, 'the page embeds its chart data');
  return (JSON.parse(m[1]!) as { charts: ChartSpec[] }).charts;
};
const scriptTags = (html: string) => (html.match(/<script\b/gi) ?? []).length;

test('escaping: HTML text, and JSON that cannot end its script element', () => {
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  assert.equal(escapeHtml('a\u0000b\u202ec'), 'a\\x00b\\u202ec');
  const json = renderScriptJson({ s: '</script><!-- \u2028' });
  assert.ok(!json.includes('<') && !json.includes('\u2028'));
  assert.deepEqual(JSON.parse(json), { s: '</script><!-- \u2028' });
});

test('the report of a federation with a straggler and a refused update: timeline, merges, audits, curves', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t, 'fedgit-report-');
  const f = await troubledFederation(dir);
  t.after(() => f.close());
  const where = await whereFrom({ repos: f.repos });
  const model = await readReportModel(where, builtinRegistries, await loadPlan(where, builtinRegistries));
  assert.equal(model.state.roundsDone, 4);
  assert.ok(model.state.finished);
  assert.equal(model.rounds.length, 5);
  assert.ok(model.rounds.every((r) => r.audit?.ok), JSON.stringify(model.rounds.map((r) => r.audit)));
  const status = (round: number, edge: string) => model.timeline[round - 1]!.cells.find((c) => c.edge === edge)!;
  assert.deepEqual(model.timeline.map((row) => row.cells.map((c) => c.status)), [
    ['merged', 'merged', 'merged'],
    ['merged', 'merged', 'late'],
    ['merged', 'merged', 'merged'],
    ['missed', 'merged', 'merged'],
  ]);
  assert.equal(status(3, 'hospital-b').rejected, 1);
  assert.match(status(3, 'hospital-b').reason!, /non-finite value/);
  assert.equal(model.rejections.length, 1);
  assert.equal(model.rejections[0]!.round, 3);
  assert.deepEqual(model.rounds[2]!.merged.map((m) => m.edge), ['hospital-a', 'hospital-b']);
  assert.deepEqual(model.metricNames, ['loss', 'accuracy']);
  assert.equal(status(2, 'hospital-c').commit !== null, true, "hospital-c's late commit is named");
  // Each edge's global-model curve has a point for rounds 0..3 it trained from; hospital-c's late round-2 update counts for its curve.
  const loss = model.curves.loss!;
  assert.deepEqual(loss.find((s) => s.edge === 'hospital-b' && s.kind === 'global')!.points.map(([x]) => x), [0, 1, 2, 3]);
  assert.deepEqual(loss.find((s) => s.edge === 'hospital-a' && s.kind === 'local')!.points.map(([x]) => x), [1, 2, 3]);
  assert.deepEqual(loss.find((s) => s.edge === 'hospital-c' && s.kind === 'local')!.points.map(([x]) => x), [1, 2, 3, 4]);

  const out = path.join(dir, 'out', 'report.html');
  const cli = await runCli(['report', '--repos', f.repos, '--out', out], { cwd: dir });
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, /report written to .*report\.html/);
  const html = await readFile(out, 'utf8');
  assert.equal(scriptTags(html), 3, 'the data, Chart.js and the page script');
  assert.ok(!/\b(src|href)\s*=\s*["']?(https?:)?\/\//i.test(html), 'nothing is loaded from elsewhere');
  assert.match(html, /Content-Security-Policy/);
  const charts = embeddedCharts(html);
  assert.deepEqual(charts.map((c) => c.id), ['chart-metric-0', 'chart-metric-1', 'chart-push-delay', 'chart-merge-weights']);
  for (const c of charts) assert.ok(pointCount(c) > 0, `${c.id} has data`);
  for (const c of charts) assert.ok(html.includes(`<canvas id="${c.id}"`), `${c.id} has a canvas`);
  assert.match(html, /all 5 global commits recomputed bit for bit/);
  // Per edge: hospital-a missed round 4, hospital-b had one update refused, hospital-c was late once.
  const edgeRow = (edge: string) => new RegExp(`<tr><td>${edge}</td><td>(\\d+)</td><td>(\\d+)</td><td>(\\d+)</td><td>(\\d+)</td>`).exec(html)?.slice(1).map(Number);
  assert.deepEqual(edgeRow('hospital-a'), [3, 0, 1, 0]);
  assert.deepEqual(edgeRow('hospital-b'), [4, 0, 0, 1]);
  assert.deepEqual(edgeRow('hospital-c'), [3, 1, 0, 0]);
});

test("the timeline says when each edge began training: its commit's author date", { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t, 'fedgit-report-');
  const f = await startToyFederation(dir, { rounds: 1, edges: ['hospital-a', 'hospital-b'] });
  t.after(() => f.close());
  const opened = await f.head();
  await f.push('hospital-a', { startedMs: opened.timeMs + 3_000 });
  await f.push('hospital-b');
  await f.settle();
  const where = await whereFrom({ repos: f.repos });
  const model = await readReportModel(where, builtinRegistries, await loadPlan(where, builtinRegistries));
  const cell = (edge: string) => model.timeline[0]!.cells.find((c) => c.edge === edge)!;
  assert.equal(cell('hospital-a').status, 'merged');
  assert.equal(cell('hospital-a').startedSeconds, 3);
  assert.equal(cell('hospital-b').startedSeconds, cell('hospital-b').delaySeconds, 'no start given: the commit time');
  const page = await renderReportPage(model);
  assert.match(page, /started training 3 s after the round opened/);
  assert.match(page, /median start delay/);
});

test('hostile tensor names, edge names, metric names and refusal reasons reach the page as text', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t, 'fedgit-report-hostile-');
  const f = await hostileFederation(dir);
  t.after(() => f.close());
  const where = await whereFrom({ repos: f.repos });
  const model = await readReportModel(where, builtinRegistries, await loadPlan(where, builtinRegistries));
  assert.ok(model.rejections.some((r) => r.reason.includes(HOSTILE.tensor)), 'the refused tensor name is in the model as it is');
  assert.ok(model.rejections.some((r) => r.edge === HOSTILE.edge && r.reason === HOSTILE.reason));
  assert.ok(model.metricNames.includes(HOSTILE.metric));
  assert.ok(model.foreign.some((x) => x.claimed === HOSTILE.claimed));
  const html = await renderReportPage(model);
  assert.equal(scriptTags(html), 3, 'no script element besides the page\'s own');
  for (const text of Object.values(HOSTILE)) {
    assert.ok(!html.includes(text), `${text} never appears unescaped`);
  }
  for (const text of [HOSTILE.tensor, HOSTILE.edge, HOSTILE.reason, HOSTILE.claimed]) assert.ok(html.includes(escapeHtml(text)), `${text} appears escaped`);
  assert.ok(embeddedCharts(html).some((c) => c.title === HOSTILE.metric), 'the hostile metric name survives the JSON embedding intact');
});

test('a 20-round, 4-edge report is under 2 MB', { timeout: 300_000 }, async (t) => {
  const dir = await tempDir(t, 'fedgit-report-size-');
  const edges = ['hospital-a', 'hospital-b', 'hospital-c', 'hospital-d'];
  const f = await startToyFederation(dir, { rounds: 20, edges });
  t.after(() => f.close());
  for (let r = 0; r < 20; r++) await f.round();
  assert.equal((await f.head()).round, 20);
  const out = path.join(dir, 'report.html');
  const started = Date.now();
  const cli = await runCli(['report', '--repos', f.repos, '--out', out], { cwd: dir });
  assert.equal(cli.code, 0, cli.stderr);
  const bytes = (await stat(out)).size;
  console.log(`report of 20 rounds × 4 edges: ${(bytes / 1024).toFixed(0)} KiB, built in ${((Date.now() - started) / 1000).toFixed(1)} s (audits included)`);
  assert.ok(bytes < 2 * 1024 * 1024, `${bytes} bytes`);
  const html = await readFile(out, 'utf8');
  assert.match(html, /20 of 20 rounds merged — finished/);
  assert.equal((html.match(/✓ passed/g) ?? []).length, 21, 'every global commit audited');
});

test('slice images: PNG written and read back; outlines say the label, red fill the model', () => {
  const rgb = Uint8Array.from({ length: 5 * 3 * 3 }, (_, i) => (i * 37) % 256);
  const back = decodePng(renderPng(5, 3, rgb));
  assert.deepEqual([back.width, back.height, back.channels], [5, 3, 3]);
  assert.deepEqual([...back.pixels], [...rgb]);
  assert.equal(crc32(Buffer.from('IEND')), 0xae426082);

  const ex = examplesFixture('s');
  const slice = ex.slices[0]!;
  const truth = [true, false, false, false, false, false, false, false, false, false];
  const called = [false, false, false, false, true, false, false, false, false, false];
  const { png, centres } = renderSlicePng({ width: slice.width, height: slice.height, image: Buffer.from(slice.image, 'base64'), regions: Buffer.from(slice.regions, 'base64') }, truth, called);
  const img = decodePng(png);
  assert.deepEqual([img.width, img.height], [24 * SLICE_SCALE, 20 * SLICE_SCALE]);
  const pixel = (x: number, y: number) => [...img.pixels.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3)];
  assert.deepEqual(pixel(4 * SLICE_SCALE, 10 * SLICE_SCALE), [255, 150, 0], 'region 1 (affected) is outlined orange');
  assert.deepEqual(pixel(20 * SLICE_SCALE - 1, 10 * SLICE_SCALE), [0, 200, 230], 'region 5 (unaffected) is outlined cyan');
  const inside1 = pixel(6 * SLICE_SCALE, 8 * SLICE_SCALE), inside5 = pixel(18 * SLICE_SCALE, 8 * SLICE_SCALE);
  assert.equal(inside1[0], inside1[1], 'region 1, not called: grey');
  assert.ok(inside5[0]! > inside5[1]! + 40, 'region 5, called affected: tinted red');
  assert.deepEqual([...centres.keys()].sort(), [1, 5]);
  assert.ok(Math.abs(centres.get(1)![0] - 8 / 24) < 0.01 && Math.abs(centres.get(1)![1] - 10 / 20) < 0.01);
});

test('ROC and Bland–Altman by hand', () => {
  const roc = rocCurve([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]);
  assert.deepEqual(roc.points, [[0, 0], [0, 0.5], [0.5, 0.5], [0.5, 1], [1, 1]]);
  assert.equal(roc.auc, 0.75, 'three of the four positive-negative pairs are ordered right');
  assert.deepEqual(rocCurve([0.5, 0.5], [1, 0]), { auc: 0.5, points: [[0, 0], [1, 1]] }, 'a tie moves diagonally');
  assert.deepEqual(rocCurve([0.1, 0.2], [0, 0]), { auc: null, points: [] });
  const ba = blandAltman([10, 8, 7], [10, 9, 5])!;
  assert.ok(Math.abs(ba.bias - -1 / 3) < 1e-12);
  assert.ok(Math.abs(ba.sd - Math.sqrt(7 / 3)) < 1e-12);
  assert.ok(Math.abs(ba.limits[1] - (-1 / 3 + 1.96 * Math.sqrt(7 / 3))) < 1e-12);
  assert.deepEqual(ba.points, [{ mean: 6, difference: -2, count: 1 }, { mean: 8.5, difference: 1, count: 1 }, { mean: 10, difference: 0, count: 1 }]);
  assert.deepEqual(blandAltman([5, 5], [6, 6])!.points, [{ mean: 5.5, difference: 1, count: 2 }], 'scans with equal scores share one point');
});

test("an experiment's comparison: confusion matrices from recall and support, per-region charts", async (t) => {
  const view = parseExperimentView(comparisonFixture())!;
  assert.deepEqual(view.models.map((m) => m.name), ['round 0', 'central', 'federated']);
  // central: recall(1) = 0.89 of 210 → TP 187, FN 23; recall(0) = 0.94 of 690 → TN 649, FP 41.
  assert.deepEqual(view.models[1]!.confusion, { tp: 187, fn: 23, tn: 649, fp: 41 });
  assert.equal(view.regions.length, 10);
  assert.equal(parseExperimentView({ kind: 'something else' }), null);
  assert.equal(view.scans, 20);
  assert.deepEqual(view.roc.map((r) => r.model), ['round 0', 'central', 'federated']);
  assert.ok(view.roc[1]!.auc! > view.roc[0]!.auc!, 'the better model has the larger AUC');
  assert.deepEqual(view.agreement.map((a) => a.model), ['round 0', 'central', 'federated']);
  assert.equal(view.examples.length, 1);
  assert.deepEqual(view.examples[0]!.probabilities.map(([m]) => m), ['round 0', 'central', 'federated']);
  assert.deepEqual(view.examples[0]!.truth.slice(0, 6), [true, true, true, true, true, false], 'scan-5 has 5 affected regions');
  // An example whose image does not fit its size, or names a scan without predictions, is left out.
  const misfit = comparisonFixture() as { examples: Array<Record<string, unknown>> };
  misfit.examples = [{ ...examplesFixture('scan-5.nii.gz'), slices: [{ ...examplesFixture('x').slices[0], width: 25 }] }, examplesFixture('not-a-scan.nii.gz')];
  assert.deepEqual(parseExperimentView(misfit)!.examples, []);
  // Rows that do not line up with the scans are left out, not trusted.
  const broken = comparisonFixture() as { predictions: { probabilities: Record<string, unknown> } };
  broken.predictions.probabilities.central = [[0.5]];
  assert.deepEqual(parseExperimentView(broken)!.roc.map((r) => r.model), ['round 0', 'federated']);
  const dir = await tempDir(t, 'fedgit-report-exp-');
  const f = await startToyFederation(dir, { rounds: 1, edges: ['hospital-a'] });
  t.after(() => f.close());
  await f.round();
  await writeFile(path.join(dir, 'comparison.json'), JSON.stringify(comparisonFixture()));
  const cli = await runCli(['report', '--repos', f.repos, '--out', 'r.html', '--experiment', 'comparison.json'], { cwd: dir });
  assert.equal(cli.code, 0, cli.stderr);
  const charts = embeddedCharts(await readFile(path.join(dir, 'r.html'), 'utf8'));
  for (const id of ['chart-headline', 'chart-region-auc', 'chart-central-vs-federated', 'chart-roc', 'chart-bland-altman']) {
    const c = charts.find((x) => x.id === id);
    assert.ok(c && pointCount(c) > 0, `${id} has data`);
  }
  const bad = await runCli(['report', '--repos', f.repos, '--experiment', 'missing.json'], { cwd: dir });
  assert.equal(bad.code, 2, bad.stdout + bad.stderr);
});

type Reply = { status: number; headers: http.IncomingHttpHeaders; body: string };
function request(url: string, o: { method?: string; host?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: o.method ?? 'GET', ...(o.host ? { headers: { host: o.host } } : {}) }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d) => (body += d)).on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject).end();
  });
}

test('serve: read-only, loopback only, and an update event after a new global commit', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t, 'fedgit-serve-');
  const f = await startToyFederation(dir, { rounds: 3, edges: ['hospital-a', 'hospital-b'] });
  t.after(() => f.close());
  await f.round();
  const where = await whereFrom({ repos: f.repos });
  const server = await startReportServer({ where, registries: builtinRegistries, host: '127.0.0.1', port: 0, log: createLogger({ participant: 'serve', console: false }) });
  t.after(() => server.close());
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);

  const page = await request(server.url);
  assert.equal(page.status, 200);
  assert.match(page.headers['content-type']!, /text\/html/);
  assert.match(page.body, /data-live="1"/);
  assert.match(page.body, /data-rounds-done="1"/);
  assert.equal((await request(server.url, { method: 'POST' })).status, 405);
  assert.equal((await request(server.url, { method: 'DELETE' })).status, 405);
  assert.equal((await request(`${server.url}events`, { host: 'evil.example:80' })).status, 403, 'a foreign Host (DNS rebinding) is refused');
  assert.equal((await request(`${server.url}.git/config`)).status, 404);
  assert.equal((await request(`${server.url}events`, { method: 'HEAD' })).status, 200, 'HEAD of the stream answers and ends');

  // Server-sent events: the current version on connecting, a new one once round 2 is merged.
  const versions: string[] = [];
  const events = http.get(`${server.url}events`, (res) => {
    assert.match(res.headers['content-type']!, /text\/event-stream/);
    let buffer = '';
    res.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      for (let end; (end = buffer.indexOf('\n\n')) >= 0; buffer = buffer.slice(end + 2)) {
        const m = /^event: update\ndata: (\S+)$/m.exec(buffer.slice(0, end));
        if (m) versions.push(m[1]!);
      }
    });
  });
  t.after(() => events.destroy());
  await waitFor('the first update event', async () => versions.length >= 1, 30_000);
  await f.round();
  // The edges' pushes are news too (round 2 "waiting"); the merge is the event this waits for.
  const merged = await waitFor('an update event for the page of round 2', async () => {
    const now = await request(server.url);
    return /data-rounds-done="2"/.test(now.body) && versions.some((v) => now.body.includes(`data-version="${v}"`)) ? now : undefined;
  }, 30_000);
  assert.ok(merged.body.includes(`data-version="${versions[versions.length - 1]}"`), 'the newest event names the version the page now has');
});

test('serve: close() ends event streams and half-sent requests instead of waiting for the clients to hang up', { timeout: 120_000 }, async (t) => {
  const dir = await tempDir(t, 'fedgit-serve-close-');
  const f = await startToyFederation(dir, { rounds: 2, edges: ['hospital-a'] });
  t.after(() => f.close());
  const server = await startReportServer({ where: await whereFrom({ repos: f.repos }), registries: builtinRegistries, host: '127.0.0.1', port: 0, log: createLogger({ participant: 'serve', console: false }) });
  const { port } = new URL(server.url);
  // An event stream that stays open, and a request whose headers never finish: both hold a connection.
  const stream = await new Promise<http.IncomingMessage>((resolve) => http.get(`${server.url}events`, { agent: new http.Agent({ keepAlive: true }) }, resolve));
  const streamEnded = new Promise((resolve, reject) => stream.on('end', resolve).on('error', reject).resume());
  const stalled = net.connect(Number(port), '127.0.0.1');
  await new Promise((resolve) => stalled.once('connect', resolve));
  stalled.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n');
  // The server drops it without an answer; a reset is what its client sees.
  const stalledClosed = new Promise((resolve) => stalled.on('error', () => undefined).once('close', resolve));
  t.after(() => { stalled.destroy(); stream.destroy(); });

  const outcome = await Promise.race([
    Promise.all([server.close(), streamEnded, stalledClosed]).then(() => 'closed'),
    sleep(30_000).then(() => 'still open after 30 s'),
  ]);
  assert.equal(outcome, 'closed');
});
