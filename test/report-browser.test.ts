/**
 * The report in headless Chromium (Debian's chromium; .ci/run installs it): a finished
 * federation and an experiment open from a file with the network off, without a console
 * error, every chart drawn with data, a screenshot that is not blank; hostile names stay text;
 * and the live view follows a new global commit.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { tempDir, runCli, waitFor, startCli, exited, toyPlan } from './helpers/temp.js';
import { setUpFederation } from './helpers/federation.js';
import { Repository } from '../operator/git/repository.js';
import { readGlobalHead } from '../operator/store/federation.js';
import { troubledFederation, hostileFederation, comparisonFixture, HOSTILE } from './helpers/report-scenarios.js';
import { startToyFederation } from './helpers/toy-federation.js';
import { Browser, browserMissing, type Page } from './helpers/chromium.js';
import { decodePng, pixelStats } from './helpers/png.js';
import { whereFrom } from '../operator/commands/locate.js';
import { startReportServer } from '../operator/report/serve.js';
import { createLogger } from '../operator/runtime/logging.js';
import { builtinRegistries } from '../bin/registries.js';

const skip = browserMissing();
let browser: Browser;
before(async () => {
  if (!skip) browser = await Browser.launch();
});
after(async () => {
  await browser?.close();
});

type ChartState = { id: string; points: number; painted: number };

/** Every chart on the page: how many values it plots, and how many of its canvas pixels are painted. */
const chartStates = (page: Page) => page.evaluate<{ canvases: number; charts: ChartState[] }>(`({
  canvases: document.querySelectorAll('canvas').length,
  charts: (window.fedgitCharts || []).map((c) => {
    const points = c.data.datasets.reduce((n, d) => n + d.data.filter((v) => v !== null && v !== undefined).length, 0);
    const { width, height } = c.canvas;
    const pixels = c.canvas.getContext('2d').getImageData(0, 0, width, height).data;
    let painted = 0;
    for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
    return { id: c.canvas.id, points, painted };
  }),
})`);

/** Opens a report file offline and checks it; `expectedCharts`: exactly these, or (`atLeast`) these among others. */
async function checkReportFile(file: string, expectedCharts: readonly string[], atLeast = false, more?: (page: Page) => Promise<void>) {
  const page = await browser.newPage({ offline: true, width: 1280, height: 900 });
  const started = Date.now();
  await page.open(pathToFileURL(file).href);
  const loadMs = Date.now() - started;
  const { canvases, charts } = await chartStates(page);
  assert.deepEqual(page.problems, [], 'no console error, exception or blocked load');
  assert.deepEqual(page.requests.filter((u) => !u.startsWith('file:') && !u.startsWith('data:')), [], 'no request leaves the file');
  if (atLeast) for (const id of expectedCharts) assert.ok(charts.some((c) => c.id === id), `${id} is on the page`);
  else assert.deepEqual(charts.map((c) => c.id).sort(), [...expectedCharts].sort());
  assert.equal(canvases, charts.length, 'every canvas holds a chart');
  for (const c of charts) {
    assert.ok(c.points > 0, `${c.id} plots data`);
    assert.ok(c.painted > 1000, `${c.id} is drawn (${c.painted} pixels)`);
  }
  await more?.(page);
  const png = await page.screenshot();
  const stats = pixelStats(decodePng(png));
  console.log(`${path.basename(file)}: loaded in ${loadMs} ms offline; screenshot ${(png.length / 1024).toFixed(0)} KiB, luminance σ ${stats.stdDev.toFixed(1)}, ${stats.colours} colours, ${(stats.nonWhiteFraction * 100).toFixed(1)} % non-white`);
  assert.ok(stats.stdDev > 10 && stats.colours > 100 && stats.nonWhiteFraction > 0.02, `the screenshot is not blank: ${JSON.stringify(stats)}`);
  await page.close();
  return { page, loadMs };
}

test('the report of a finished federation opens offline from a file: no console error, every chart drawn with data, not blank', { skip, timeout: 180_000 }, async (t) => {
  const dir = await tempDir(t, 'fedgit-report-browser-');
  const f = await troubledFederation(dir);
  t.after(() => f.close());
  const out = path.join(dir, 'report.html');
  const cli = await runCli(['report', '--repos', f.repos, '--out', out], { cwd: dir });
  assert.equal(cli.code, 0, cli.stderr);
  await checkReportFile(out, ['chart-metric-0', 'chart-metric-1', 'chart-push-delay', 'chart-merge-weights']);
});

test('the report of a 20-round, 4-edge run opens offline with every chart drawn (its load time is printed)', { skip, timeout: 300_000 }, async (t) => {
  const dir = await tempDir(t, 'fedgit-report-browser-20-');
  const f = await startToyFederation(dir, { rounds: 20, edges: ['hospital-a', 'hospital-b', 'hospital-c', 'hospital-d'] });
  t.after(() => f.close());
  for (let r = 0; r < 20; r++) await f.round();
  const out = path.join(dir, 'report.html');
  const cli = await runCli(['report', '--repos', f.repos, '--out', out], { cwd: dir });
  assert.equal(cli.code, 0, cli.stderr);
  const { loadMs } = await checkReportFile(out, ['chart-metric-0', 'chart-metric-1', 'chart-push-delay', 'chart-merge-weights']);
  console.log(`20 rounds × 4 edges: ${(statSync(out).size / 1024).toFixed(0)} KiB, opened in ${loadMs} ms`);
});

test("an experiment's report (central vs federated vs round 0) renders every chart", { skip, timeout: 180_000 }, async (t) => {
  const dir = await tempDir(t, 'fedgit-report-browser-exp-');
  const f = await startToyFederation(dir, { rounds: 2, edges: ['hospital-a', 'hospital-b'] });
  t.after(() => f.close());
  await f.round();
  await f.round();
  await writeFile(path.join(dir, 'comparison.json'), JSON.stringify(comparisonFixture()));
  const out = path.join(dir, 'report.html');
  const cli = await runCli(['report', '--repos', f.repos, '--out', out, '--experiment', 'comparison.json'], { cwd: dir });
  assert.equal(cli.code, 0, cli.stderr);
  await checkReportFile(out, ['chart-metric-0', 'chart-metric-1', 'chart-push-delay', 'chart-merge-weights', 'chart-headline', 'chart-region-auc', 'chart-central-vs-federated', 'chart-roc', 'chart-bland-altman'], false, async (page) => {
    const images = await page.evaluate<Array<{ complete: boolean; width: number }>>('[...document.querySelectorAll(".slice img")].map((i) => ({ complete: i.complete, width: i.naturalWidth }))');
    assert.equal(images.length, 1, 'the example slice is on the page');
    assert.ok(images.every((i) => i.complete && i.width > 0), 'and its image decoded');
  });
});

// CI runs `npm start` before `npm test`: the default experiment's own report is then on disk.
const DEFAULT_EXPERIMENT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'results', 'experiment');
const noDefaultReport = (): string | false => {
  if (existsSync(path.join(DEFAULT_EXPERIMENT, 'report.html'))) return false;
  if (process.env.CI) throw new Error(`npm start ran but wrote no ${path.join(DEFAULT_EXPERIMENT, 'report.html')}`);
  return 'no results/experiment/report.html: npm start has not run here';
};

test("the default experiment's report (npm start) opens offline with every chart drawn", { skip: skip || noDefaultReport(), timeout: 120_000 }, async () => {
  const comparison = JSON.parse(readFileSync(path.join(DEFAULT_EXPERIMENT, 'comparison.json'), 'utf8')) as { predictions?: unknown; examples?: unknown[] };
  const expected = ['chart-metric-0', 'chart-push-delay', 'chart-merge-weights', 'chart-headline', 'chart-region-auc', 'chart-central-vs-federated'];
  // A results folder from before per-scan predictions were saved has no ROC, Bland–Altman or slices.
  if (comparison.predictions) expected.push('chart-roc', 'chart-bland-altman');
  await checkReportFile(path.join(DEFAULT_EXPERIMENT, 'report.html'), expected, true, async (page) => {
    const images = await page.evaluate<number[]>('[...document.querySelectorAll(".slice img")].map((i) => i.naturalWidth)');
    assert.equal(images.length, (comparison.examples ?? []).length * 2, 'two slices per example scan');
    assert.ok(images.every((w) => w > 0));
  });
});

test('hostile names render as text: no injected script runs, the text is shown as written', { skip, timeout: 180_000 }, async (t) => {
  const dir = await tempDir(t, 'fedgit-report-browser-hostile-');
  const f = await hostileFederation(dir);
  t.after(() => f.close());
  const out = path.join(dir, 'report.html');
  const cli = await runCli(['report', '--repos', f.repos, '--out', out], { cwd: dir });
  assert.equal(cli.code, 0, cli.stderr);
  const page = await browser.newPage({ offline: true });
  await page.open(pathToFileURL(out).href);
  assert.equal(await page.evaluate('typeof window.pwned'), 'undefined', 'no injected code ran');
  assert.equal(await page.evaluate('document.querySelectorAll("script").length'), 3);
  assert.equal(await page.evaluate('document.querySelectorAll("main img, main b, main svg").length'), 0, 'no element came from a name');
  const text = await page.evaluate<string>('document.body.innerText');
  for (const s of [HOSTILE.tensor, HOSTILE.edge, HOSTILE.reason, HOSTILE.claimed]) assert.ok(text.includes(s), `the page shows ${s} as text`);
  const titles = await page.evaluate<string[]>('window.fedgitCharts.map((c) => c.options.scales.y.title.text)');
  assert.ok(titles.includes(HOSTILE.metric), 'the hostile metric name labels its chart as text');
  assert.deepEqual(page.problems, []);
  await page.close();
});

test('the live view updates after a new global commit', { skip, timeout: 180_000 }, async (t) => {
  const dir = await tempDir(t, 'fedgit-report-browser-live-');
  const f = await startToyFederation(dir, { rounds: 3, edges: ['hospital-a', 'hospital-b'] });
  t.after(() => f.close());
  await f.round();
  const server = await startReportServer({ where: await whereFrom({ repos: f.repos }), registries: builtinRegistries, host: '127.0.0.1', port: 0, log: createLogger({ participant: 'serve', console: false }) });
  t.after(() => server.close());
  const page = await browser.newPage();
  await page.open(server.url);
  const roundsShown = () => page.evaluate<string>('document.getElementById("fedgit-state").dataset.roundsDone');
  assert.equal(await roundsShown(), '1');
  await waitFor('the live connection', async () => (await page.evaluate<string>('document.getElementById("fedgit-live").textContent')).includes('connected'), 30_000, 50);
  const chartsBefore = (await chartStates(page)).charts.length;

  for (const expected of ['2', '3']) {
    await f.round();
    const mergedMs = Date.now(); // the global branch has moved
    const sawMs = await waitFor(`the page showing round ${expected}`, async () => ((await roundsShown()) === expected ? Date.now() : undefined), 30_000, 50);
    console.log(`live view: round ${expected} on the page ${sawMs - mergedMs} ms after the global branch moved`);
  }
  // The final tag is its own ref write after the last merge: the page may show round 3 a rebuild before it.
  await waitFor('the page showing the plan finished', async () => /3 of 3 rounds merged — finished/.test(await page.evaluate<string>('document.body.innerText')), 30_000, 50);
  const { charts } = await chartStates(page);
  assert.ok(charts.length >= chartsBefore && charts.every((c) => c.points > 0), 'the charts were redrawn with the new data');
  assert.deepEqual(page.problems, []);
  await page.close();
});

test('the live view follows a federation run by `fedgit run` processes while the page is open', { skip, timeout: 240_000 }, async (t) => {
  const dir = await tempDir(t, 'fedgit-report-browser-run-');
  const { plan, repos, where } = await setUpFederation(dir, toyPlan({ rounds: 4, epochDelayMs: 700 }));
  const server = await startReportServer({ where: await whereFrom({ repos }), registries: builtinRegistries, host: '127.0.0.1', port: 0, log: createLogger({ participant: 'serve', console: false }) });
  t.after(() => server.close());
  const page = await browser.newPage();
  await page.open(server.url);
  const run = startCli(['run', 'plan.yaml', '--repos', 'repos', '--timeout', '180'], { cwd: dir });
  t.after(async () => {
    run.kill('SIGKILL');
    await exited(run);
  });

  // When each global round lands in git (polled here) and when the page shows it.
  const global = new Repository(where.global);
  const landed = new Map<number, number>();
  const shown = new Map<number, number>();
  await waitFor('the page showing the finished plan', async () => {
    const head = await readGlobalHead(global, plan);
    if (head && !landed.has(head.round)) landed.set(head.round, Date.now());
    const rounds = Number(await page.evaluate<string>('document.getElementById("fedgit-state").dataset.roundsDone'));
    if (!shown.has(rounds)) shown.set(rounds, Date.now());
    return rounds === 4 && (await page.evaluate<string>('document.getElementById("fedgit-state").textContent')).includes('finished');
  }, 200_000, 25);
  assert.equal(await exited(run), 0, run.output().slice(-2000));
  const lags = [...landed].filter(([r]) => r > 0 && shown.has(r)).map(([r, at]) => `round ${r}: ${shown.get(r)! - at} ms`);
  console.log(`fedgit run with the page open: shown after landing — ${lags.join(', ')}`);
  assert.ok(shown.size >= 3, `the page followed the rounds (${[...shown.keys()].join(', ')}), not only the end`);
  assert.deepEqual(page.problems, []);
  await page.close();
});
