// Headless-browser test of the web UI: Debian's chromium driven by playwright-core against a
// kachel serving the test fixtures over TLS. Needs the KACHEL_PG_* variables of scripts/test.sh,
// KACHEL_BINARY and KACHEL_FIXTURES_DIR; saves a screenshot to KACHEL_ARTIFACTS_DIR.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run through scripts/test.sh (ctest)`);
  return value;
};

const db = `kachel-browser-${process.pid}`;
const psql = (user, database, args) => execFileSync('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1',
  '-h', env('KACHEL_PG_SOCKET'), '-p', env('KACHEL_PG_PORT'), '-U', user, '-d', database, ...args],
{ stdio: ['ignore', 'ignore', 'inherit'] });

function startKachel(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(env('KACHEL_BINARY'), args, {
      env: { ...process.env, PGSSLROOTCERT: env('KACHEL_PG_CA'), DATABASE_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const timer = setTimeout(() => reject(new Error(`kachel did not start:\n${output}`)), 60000);
    const onData = (chunk) => {
      output += chunk;
      const m = output.match(/kachel is now active\. See http:\/\/127\.0\.0\.1:(\d+)\/catalog/);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]) });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`kachel exited with ${code}:\n${output}`)));
  });
}

let kachel;
let browser;

test.before(async () => {
  psql('postgres', 'postgres', ['-c', `CREATE DATABASE "${db}" OWNER kachel`]);
  psql('postgres', db, ['-c', 'CREATE EXTENSION postgis']);
  const sqlDir = join(env('KACHEL_FIXTURES_DIR'), 'sql');
  for (const file of readdirSync(sqlDir).filter((f) => f.endsWith('.sql')).sort()) {
    psql('kachel', db, ['-f', join(sqlDir, file)]);
  }
  const url = `postgresql://kachel:${env('KACHEL_PG_PASSWORD')}@localhost:${env('KACHEL_PG_PORT')}/${db}` +
    '?sslmode=verify-full';
  kachel = await startKachel(['-l', '127.0.0.1:0', '-W', '2', url]);
  browser = await chromium.launch({
    executablePath: process.env.KACHEL_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // The closed-network flags these machines need, and software WebGL for MapLibre. Playwright
    // starts every launch with a fresh, empty profile (user data dir) of its own.
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--no-first-run', '--disable-sync', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'],
  });
});

test.after(async () => {
  await browser?.close();
  kachel?.child.kill('SIGTERM');
  try {
    psql('postgres', 'postgres', ['-c', `DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`]);
  } catch { /* best effort */ }
});

test('the UI lists the sources, maps one, and shows a feature in a popup', async () => {
  const base = `http://127.0.0.1:${kachel.port}`;
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(e.message));

  await page.goto(`${base}/`);
  await page.waitForSelector('#sources li[data-id="points"]');
  const ids = await page.$$eval('#sources li', (items) => items.map((li) => li.dataset.id));
  for (const id of ['points', 'polygons', 'lines', 'geog_places']) assert.ok(ids.includes(id), `${id} listed`);

  // The filter box narrows the list.
  await page.fill('#filter', 'polyg');
  assert.deepEqual(await page.$$eval('#sources li', (items) => items.map((li) => li.dataset.id)),
    ['polygons', 'polygons_mat']);
  await page.fill('#filter', '');

  await page.click('#sources li[data-id="points"] .id');
  await page.waitForFunction(() => document.body.dataset.selected === 'points');
  await page.evaluate(() => new Promise((resolve) => {
    const map = window.kachelMap;
    if (map.loaded() && map.areTilesLoaded()) resolve(); else map.once('idle', resolve);
  }));

  const rendered = await page.evaluate(() => window.kachelMap.queryRenderedFeatures({ layers: ['points-circle'] })
    .map((f) => f.properties.name));
  assert.ok(rendered.length > 0, 'features were rendered');
  assert.ok(rendered.includes('p_10_20'), 'the known feature is on screen');

  assert.equal(await page.inputValue('#tilejson-url'), `${base}/points`);
  const snippet = JSON.parse(await page.textContent('#snippet-maplibre'));
  assert.equal(snippet.sources.kachel.url, `${base}/points`);

  // Click the point at lon 10, lat 20: the popup shows its properties.
  const { x, y } = await page.evaluate(() => {
    const p = window.kachelMap.project([10, 20]);
    const rect = window.kachelMap.getCanvas().getBoundingClientRect();
    return { x: rect.left + p.x, y: rect.top + p.y };
  });
  await page.mouse.move(x, y);
  await page.mouse.click(x, y);
  await page.waitForSelector('.maplibregl-popup');
  const popup = await page.textContent('.maplibregl-popup');
  assert.match(popup, /p_10_20/);
  assert.match(await page.textContent('#status'), /tile \d+\/\d+\/\d+/);

  const artifacts = process.env.KACHEL_ARTIFACTS_DIR || tmpdir();
  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, 'webui-points.png') });
  assert.deepEqual(errors, [], 'no console errors');
  await page.close();
});

test('a composite of two sources draws both layers', async () => {
  const page = await browser.newPage({ viewport: { width: 1024, height: 700 } });
  await page.goto(`http://127.0.0.1:${kachel.port}/?source=points,polygons`);
  await page.waitForFunction(() => document.body.dataset.selected === 'points,polygons');
  await page.evaluate(() => new Promise((resolve) => window.kachelMap.once('idle', resolve)));
  const layers = await page.evaluate(() => [...new Set(window.kachelMap.queryRenderedFeatures()
    .map((f) => f.sourceLayer).filter(Boolean))].sort());
  assert.deepEqual(layers, ['points', 'polygons']);
  await page.close();
});
