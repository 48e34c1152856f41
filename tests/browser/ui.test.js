// Headless-browser test of the web UI: Debian's chromium driven by playwright-core against a
// kachel serving the test fixtures over TLS. Needs the KACHEL_PG_* variables of scripts/test.sh,
// KACHEL_BINARY and KACHEL_FIXTURES_DIR; saves a screenshot to KACHEL_ARTIFACTS_DIR.
import test from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
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
/** The first column of a query's rows, as text. */
const psqlValue = (database, sql) => execFileSync('psql', ['-X', '-q', '-At', '-h', env('KACHEL_PG_SOCKET'),
  '-p', env('KACHEL_PG_PORT'), '-U', 'kachel', '-d', database, '-c', sql]).toString().trim();
const kachelEnv = () => ({ ...process.env, PGSSLROOTCERT: env('KACHEL_PG_CA'), DATABASE_URL: '' });

function startKachel(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(env('KACHEL_BINARY'), args, {
      env: kachelEnv(),
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

/** The page's console errors and uncaught exceptions, collected as they come. */
function consoleErrors(page) {
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(e.message));
  return errors;
}

/** Resolves once the page's map has loaded everything it shows. */
const mapIdle = (page) => page.evaluate(() => new Promise((resolve) => {
  const map = window.kachelMap;
  if (map.loaded() && map.areTilesLoaded()) resolve(); else map.once('idle', resolve);
}));

test.before(async () => {
  psql('postgres', 'postgres', ['-c', `CREATE DATABASE "${db}" OWNER kachel`]);
  psql('postgres', db, ['-c', 'CREATE EXTENSION postgis']);
  const sqlDir = join(env('KACHEL_FIXTURES_DIR'), 'sql');
  for (const file of readdirSync(sqlDir).filter((f) => f.endsWith('.sql')).sort()) {
    psql('kachel', db, ['-f', join(sqlDir, file)]);
  }
  const url = `postgresql://kachel:${env('KACHEL_PG_PASSWORD')}@localhost:${env('KACHEL_PG_PORT')}/${db}` +
    '?sslmode=verify-full';
  browser = await chromium.launch({
    executablePath: process.env.KACHEL_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // The closed-network flags these machines need, and software WebGL for MapLibre. Playwright
    // starts every launch with a fresh, empty profile (user data dir) of its own.
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--no-first-run', '--disable-sync', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'],
  });
  const archive = await writeRasterArchive();
  // The tables notify their changes, with the SQL kachel prints, run as a DBA would.
  const triggers = execFileSync(env('KACHEL_BINARY'), ['--notify-changes', '--print-change-triggers', url],
    { env: { ...kachelEnv(), RUST_LOG: 'warn' }, stdio: ['ignore', 'pipe', 'inherit'] });
  writeFileSync(join(rasterDir, 'triggers.sql'), triggers);
  psql('postgres', db, ['-f', join(rasterDir, 'triggers.sql')]); // a superuser: the event triggers too
  kachel = await startKachel(['-l', '127.0.0.1:0', '-W', '2', '--notify-changes', url, archive]);
});

// A raster MBTiles archive, raster.mbtiles: zooms 0 to 2, every tile one PNG (a 256 px square
// of one colour, made by the browser), written by the sqlite3 command-line tool.
const rasterDir = join(tmpdir(), `kachel-browser-raster-${process.pid}`);
async function writeRasterArchive() {
  rmSync(rasterDir, { recursive: true, force: true });
  mkdirSync(rasterDir, { recursive: true });
  const page = await browser.newPage({ viewport: { width: 256, height: 256 } });
  await page.setContent('<body style="margin:0;background:#3366cc"></body>');
  writeFileSync(join(rasterDir, 'tile.png'), await page.screenshot({ type: 'png' }));
  await page.close();
  const rows = [];
  for (let z = 0; z <= 2; z++) {
    for (let x = 0; x < 2 ** z; x++) {
      for (let y = 0; y < 2 ** z; y++) rows.push(`(${z}, ${x}, ${y}, readfile('tile.png'))`);
    }
  }
  const sql = `CREATE TABLE metadata (name text, value text);
INSERT INTO metadata VALUES ('name', 'Raster'), ('format', 'png'), ('minzoom', '0'), ('maxzoom', '2');
CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, tile_data blob);
INSERT INTO tiles VALUES ${rows.join(', ')};`;
  execFileSync('sqlite3', ['raster.mbtiles', sql], { cwd: rasterDir });
  return join(rasterDir, 'raster.mbtiles');
}

test.after(async () => {
  await browser?.close();
  kachel?.child.kill('SIGTERM');
  rmSync(rasterDir, { recursive: true, force: true });
  try {
    psql('postgres', 'postgres', ['-c', `DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`]);
  } catch { /* best effort */ }
});

test('the UI lists the sources, maps one, and shows a feature in a popup', async () => {
  const base = `http://127.0.0.1:${kachel.port}`;
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors = consoleErrors(page);

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
  await mapIdle(page);

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

test('the tile inspector labels each tile with its size, features per layer and server time', async () => {
  const page = await browser.newPage({ viewport: { width: 1024, height: 700 } });
  const errors = consoleErrors(page);
  await page.goto(`http://127.0.0.1:${kachel.port}/?source=points,polygons`);
  await page.waitForFunction(() => document.body.dataset.selected === 'points,polygons');
  await page.evaluate(() => window.kachelMap.jumpTo({ center: [10, 20], zoom: 2.5 }));
  await mapIdle(page);
  await page.check('#inspect');
  await page.waitForFunction(() => Number(document.body.dataset.inspected || 0) > 0);
  const labels = await page.$$eval('#inspector .tile-info', (items) => items.map((d) => ({
    tile: d.dataset.tile, text: d.textContent })));
  assert.ok(labels.length >= 4, `tiles labelled: ${JSON.stringify(labels)}`);
  assert.equal(await page.evaluate(() => window.kachelMap.showTileBoundaries), true);
  for (const { tile, text } of labels) {
    assert.match(text, new RegExp(`^${tile}\\n\\d+(\\.\\d)? k?B · `), text);
    assert.match(text, /(db \d+(\.\d+)? ms, encode \d+(\.\d+)? ms|cached, made in \d+(\.\d+)? ms)$/, text);
    // The count of points the label gives is the one PostGIS finds in the tile and its buffer.
    const [z, x, y] = tile.split('/');
    const expected = Number(psqlValue(db, 'SELECT count(*) FROM points WHERE ' +
      `ST_Transform(geom, 3857) && ST_TileEnvelope(${z}, ${x}, ${y}, margin => 64.0 / 4096)`));
    const shown = (text.match(/ · points (\d+)/) || [null, '0'])[1];
    if (expected > 0) assert.equal(Number(shown), expected, text);
    else assert.ok(!text.includes('points '), text);
  }
  assert.ok(labels.some(({ text }) => / · polygons \d+/.test(text)), JSON.stringify(labels));
  // Labels follow the map; unticking removes them.
  await page.uncheck('#inspect');
  assert.equal(await page.$$eval('#inspector .tile-info', (items) => items.length), 0);
  assert.deepEqual(errors, [], 'no console errors');
  await page.close();
});

test('a raster archive is listed and previewed with its PNG tiles', async () => {
  const page = await browser.newPage({ viewport: { width: 1024, height: 700 } });
  const errors = consoleErrors(page);
  const tiles = [];
  page.on('response', (r) => {
    if (/^\/raster\/\d+\/\d+\/\d+$/.test(new URL(r.url()).pathname)) {
      tiles.push({ status: r.status(), type: r.headers()['content-type'] });
    }
  });
  await page.goto(`http://127.0.0.1:${kachel.port}/`);
  await page.waitForSelector('#sources li[data-id="raster"]');
  await page.click('#sources li[data-id="raster"] .id');
  await page.waitForFunction(() => document.body.dataset.selected === 'raster');
  await mapIdle(page);
  const shown = await page.evaluate(() => ({
    source: window.kachelMap.getSource('kachel')?.type,
    layer: window.kachelMap.getLayer('kachel-raster')?.type,
    loaded: window.kachelMap.isSourceLoaded('kachel'),
  }));
  assert.deepEqual(shown, { source: 'raster', layer: 'raster', loaded: true });
  assert.ok(tiles.length > 0, 'PNG tiles were fetched');
  for (const t of tiles) assert.deepEqual(t, { status: 200, type: 'image/png' });
  assert.deepEqual(errors, [], 'no console errors');
  await page.close();
});

test('an edit in the database redraws the open map: only the tiles it touched, without a reload', async (t) => {
  const page = await browser.newPage({ viewport: { width: 1024, height: 700 } });
  const errors = consoleErrors(page);
  const fetched = [];
  page.on('response', (r) => {
    const m = new URL(r.url()).pathname.match(/^\/points\/(\d+)\/(\d+)\/(\d+)$/);
    if (m) fetched.push({ z: Number(m[1]), x: Number(m[2]), y: Number(m[3]), status: r.status() });
  });
  await page.goto(`http://127.0.0.1:${kachel.port}/?source=points`);
  await page.waitForFunction(() => document.body.dataset.selected === 'points' && document.body.dataset.live === 'on');
  await mapIdle(page);
  // Closer in, so that the view holds many tiles and the edit touches few of them.
  await page.evaluate(() => new Promise((resolve) => {
    const map = window.kachelMap;
    map.once('idle', resolve);
    map.jumpTo({ center: [10, 20], zoom: 5.5 });
  }));
  const names = () => page.evaluate(() => window.kachelMap.queryRenderedFeatures({ layers: ['points-circle'] })
    .map((f) => f.properties.name));
  assert.ok((await names()).includes('p_10_20'), 'the point is drawn before the edit');
  const loadedBefore = fetched.length;
  const inView = fetched.filter((t) => t.z === fetched[fetched.length - 1].z).length;
  await page.evaluate(() => { window.kachelMarker = 'same page'; });

  psql('kachel', db, ['-c', "UPDATE points SET name = 'p_10_20_edited' WHERE name = 'p_10_20'"]);
  await page.waitForFunction(() => window.kachelMap.queryRenderedFeatures({ layers: ['points-circle'] })
    .some((f) => f.properties.name === 'p_10_20_edited'), null, { timeout: 15000 });

  assert.equal(await page.evaluate(() => window.kachelMarker), 'same page', 'the page was not reloaded');
  assert.ok(!(await names()).includes('p_10_20'), 'the old name is gone');
  // Only tiles at the edited point (its tile, or a neighbour within the source's buffer) were
  // fetched again: far fewer than the view holds.
  const again = fetched.slice(loadedBefore);
  assert.ok(again.length > 0, 'the touched tiles were fetched again');
  t.diagnostic(`refetched ${again.map((f) => `${f.z}/${f.x}/${f.y}`).join(' ')}; the view holds ${inView}`);
  assert.ok(again.length < inView, `${again.length} refetched; the view holds ${inView}`);

  // A table created meanwhile joins the list, still without a reload.
  psql('kachel', db, ['-c', 'CREATE TABLE live_added (id integer, geom geometry(Point, 4326))']);
  await page.waitForSelector('#sources li[data-id="live_added"]', { timeout: 15000 });
  assert.equal(await page.evaluate(() => window.kachelMarker), 'same page', 'the page was not reloaded');
  for (const tile of again) {
    const n = 2 ** tile.z;
    const x = ((10 + 180) / 360) * n;
    const rad = (20 * Math.PI) / 180;
    const y = ((1 - Math.log(Math.tan(rad) + 1 / Math.cos(rad)) / Math.PI) / 2) * n;
    assert.ok(Math.abs(tile.x + 0.5 - x) < 1.6 && Math.abs(tile.y + 0.5 - y) < 1.6,
      `tile ${tile.z}/${tile.x}/${tile.y} is near lon 10, lat 20`);
    assert.equal(tile.status, 200);
  }
  assert.deepEqual(errors, [], 'no console errors');
  await page.close();
});
