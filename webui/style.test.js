import test from 'node:test';
import assert from 'node:assert/strict';
import Pbf from 'pbf';
import { changedTiles, colorFor, layersFor, sourceFor, graticule, tileAt, styleSnippets, filterCatalog, PALETTE,
  tileCorner, tileLayers, tilesInView, tileSummary } from './style.js';

test('colours are distinct for the first palette-size layers and cycle after', () => {
  const first = PALETTE.map((_, i) => colorFor(i));
  assert.equal(new Set(first).size, PALETTE.length);
  assert.equal(colorFor(PALETTE.length), colorFor(0));
});

test('each vector layer gets fill, outline, line and circle filtered by geometry type', () => {
  const layers = layersFor({ vector_layers: [{ id: 'countries' }, { id: 'cities' }] }, 'src');
  assert.deepEqual(layers.map((l) => l.id), ['countries-fill', 'countries-outline', 'countries-line',
    'countries-circle', 'cities-fill', 'cities-outline', 'cities-line', 'cities-circle']);
  assert.ok(layers.every((l) => l.source === 'src'));
  assert.equal(layers[0]['source-layer'], 'countries');
  assert.deepEqual(layers[3].filter, ['match', ['geometry-type'], ['Point', 'MultiPoint'], true, false]);
  assert.notEqual(layers[0].paint['fill-color'], layers[4].paint['fill-color']);
});

test('raster sources get one raster layer', () => {
  const layers = layersFor({ tiles: ['t'] }, 'r', 'image/png');
  assert.deepEqual(layers, [{ id: 'r-raster', type: 'raster', source: 'r' }]);
  assert.equal(sourceFor({ tiles: ['t'] }, 'image/png').type, 'raster');
});

test('source keeps tiles, zooms and bounds', () => {
  const s = sourceFor({ tiles: ['http://h/a/{z}/{x}/{y}'], bounds: [-1, -2, 3, 4], minzoom: 2, name: 'a' });
  assert.deepEqual(s, { type: 'vector', tiles: ['http://h/a/{z}/{x}/{y}'], bounds: [-1, -2, 3, 4], minzoom: 2 });
});

test('graticule has meridians and parallels', () => {
  const g = graticule(30);
  const meridians = g.features.filter((f) => f.properties.kind === 'meridian');
  const parallels = g.features.filter((f) => f.properties.kind === 'parallel');
  assert.equal(meridians.length, 13);
  assert.equal(parallels.length, 5);
});

test('tileAt matches the XYZ scheme', () => {
  assert.deepEqual(tileAt(0, 0, 0), { z: 0, x: 0, y: 0 });
  assert.deepEqual(tileAt(8.54, 47.37, 6), { z: 6, x: 33, y: 22 });
  assert.deepEqual(tileAt(-77.04, -12.05, 2), { z: 2, x: 1, y: 2 });
  assert.deepEqual(tileAt(180, 90, 3.7), { z: 3, x: 7, y: 0 });
});

test('snippets reference the TileJSON URL', () => {
  const { maplibre, openlayers } = styleSnippets('http://h/points', { tiles: ['http://h/points/{z}/{x}/{y}'],
    vector_layers: [{ id: 'points' }] });
  const style = JSON.parse(maplibre);
  assert.equal(style.sources.kachel.url, 'http://h/points');
  assert.equal(style.layers.length, 4);
  assert.ok(!('metadata' in style.layers[0]));
  assert.match(openlayers, /ol\.format\.MVT/);
  assert.match(openlayers, /http:\/\/h\/points\/\{z\}/);
});

test('catalog filter matches id and description', () => {
  const entries = [['countries', { description: 'World countries' }], ['cities', { description: 'Places' }]];
  assert.deepEqual(filterCatalog(entries, 'WORLD').map(([id]) => id), ['countries']);
  assert.deepEqual(filterCatalog(entries, 'cit').map(([id]) => id), ['cities']);
  assert.equal(filterCatalog(entries, '  ').length, 2);
});

test('a change reaches the tiles under its boxes, widened by the margin', () => {
  const paris = { sources: ['pts'], boxes: [[2.35, 48.85, 2.35, 48.85]], margin: 0 };
  assert.deepEqual(changedTiles(paris, 6), [tileAt(2.35, 48.85, 6)]);
  assert.deepEqual(changedTiles(paris, 0), [{ z: 0, x: 0, y: 0 }]);
  // A margin of a quarter tile reaches the neighbour the point is near, not the others.
  const nearEdge = { boxes: [[0.1, 0.1, 0.1, 0.1]], margin: 0.25 };
  assert.deepEqual(changedTiles(nearEdge, 1).map(({ x, y }) => `${x}/${y}`).sort(), ['0/0', '0/1', '1/0', '1/1']);
  assert.deepEqual(changedTiles({ boxes: [[100, 45, 100, 45]], margin: 0.01 }, 2), [{ z: 2, x: 3, y: 1 }]);
  // On a tile edge both tiles count.
  assert.equal(changedTiles({ boxes: [[90, 45, 90, 45]], margin: 0 }, 2).length, 2);
  // Two boxes share their tiles once.
  const two = { boxes: [[1, 1, 2, 2], [1.5, 1.5, 3, 3]], margin: 0 };
  assert.deepEqual(changedTiles(two, 3), [tileAt(1, 1, 3)]);
});

test('a change everywhere, or over too many tiles, asks for everything; zooms outside are left', () => {
  assert.equal(changedTiles({ sources: ['a'], boxes: [], margin: 0 }, 4), null);
  assert.equal(changedTiles({ boxes: [[-180, -85, 180, 85]], margin: 0 }, 10), null);
  assert.equal(changedTiles({ boxes: [[-180, -85, 180, 85]], margin: 0 }, 2).length, 16);
  const zooms = { boxes: [[2, 48, 3, 49]], margin: 0, minzoom: 3, maxzoom: 5 };
  assert.deepEqual(changedTiles(zooms, 2), []);
  assert.deepEqual(changedTiles(zooms, 6), []);
  assert.equal(changedTiles(zooms, 4).length, 1);
});

test('a tile\'s layers are read with their feature counts, other fields skipped', () => {
  const tile = new Pbf();
  const layer = (name, features) => tile.writeMessage(3, (_, pbf) => {
    pbf.writeVarintField(15, 2); // version
    pbf.writeStringField(1, name);
    for (let i = 0; i < features; i++) {
      pbf.writeMessage(2, (__, f) => { f.writeVarintField(1, i + 1); f.writePackedVarint(4, [9, 2, 2]); });
    }
    pbf.writeStringField(3, 'key');
    pbf.writeVarintField(5, 4096);
  });
  layer('countries', 3);
  layer('cities', 0);
  layer('roads', 2);
  assert.deepEqual(tileLayers(tile.finish()), [
    { name: 'countries', features: 3 }, { name: 'cities', features: 0 }, { name: 'roads', features: 2 }]);
  assert.deepEqual(tileLayers(new Uint8Array(0)), []);
});

test('the tiles in view cover the bounds, and too many are refused', () => {
  assert.deepEqual(tilesInView([-180, -85, 180, 85], 1), [
    { z: 1, x: 0, y: 0 }, { z: 1, x: 1, y: 0 }, { z: 1, x: 0, y: 1 }, { z: 1, x: 1, y: 1 }]);
  assert.deepEqual(tilesInView([2, 48, 3, 49], 6), [tileAt(2, 49, 6), tileAt(3, 48, 6)]);
  assert.equal(tilesInView([-180, -85, 180, 85], 4), null);
  assert.equal(tilesInView([-180, -85, 180, 85], 4, 256).length, 256);
});

test('the inspector\'s summary gives size, features per layer and server time', () => {
  const layers = [{ name: 'countries', features: 250 }, { name: 'cities', features: 64 }];
  assert.equal(tileSummary({ bytes: 10027, layers, serverTiming: 'db;dur=201.4, encode;dur=0.6' }),
    '10 kB · countries 250 · cities 64 · db 201.4 ms, encode 0.6 ms');
  assert.equal(tileSummary({ bytes: 912, layers: [], serverTiming: 'cache;desc=hit' }), '912 B · cached');
  assert.equal(tileSummary({ bytes: 912, layers: [], serverTiming: 'cache;desc=hit, made;dur=12.5' }),
    '912 B · cached, made in 12.5 ms');
  assert.equal(tileSummary({ bytes: 1500, layers: [], serverTiming: null }), '1.5 kB');
});

test('a tile\'s corner is its north-west one', () => {
  assert.deepEqual(tileCorner({ z: 0, x: 0, y: 0 }).map((v) => Number(v.toFixed(4))), [-180, 85.0511]);
  const [lng, lat] = tileCorner({ z: 2, x: 2, y: 2 });
  assert.equal(lng, 0);
  assert.ok(Math.abs(lat) < 1e-9);
  assert.deepEqual(tileAt(lng + 1e-6, lat - 1e-6, 2), { z: 2, x: 2, y: 2 });
});
