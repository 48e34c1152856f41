// Pure functions behind kachel's map preview: no DOM, no MapLibre, so node --test covers them.
import Pbf from 'pbf';

/** Distinct, readable colours for successive layers (cycled). */
export const PALETTE = ['#e6194b', '#3cb44b', '#4363d8', '#f58231', '#911eb4', '#42d4f4', '#f032e6',
  '#9a6324', '#469990', '#800000', '#808000', '#000075'];

/** Colour of the i-th layer. */
export function colorFor(index) {
  return PALETTE[((index % PALETTE.length) + PALETTE.length) % PALETTE.length];
}

const POLYGONS = ['match', ['geometry-type'], ['Polygon', 'MultiPolygon'], true, false];
const LINES = ['match', ['geometry-type'], ['LineString', 'MultiLineString'], true, false];
const POINTS = ['match', ['geometry-type'], ['Point', 'MultiPoint'], true, false];

/**
 * MapLibre layers for one tile source. Vector tiles get, per vector layer, a fill and an outline
 * for polygons, a line for lines and a circle for points (TileJSON does not say which geometry a
 * layer holds, so each kind is filtered by geometry type). Raster tiles get one raster layer.
 */
export function layersFor(tilejson, sourceName, contentType = 'application/x-protobuf') {
  if (contentType.startsWith('image/')) {
    return [{ id: `${sourceName}-raster`, type: 'raster', source: sourceName }];
  }
  const vectorLayers = Array.isArray(tilejson.vector_layers) ? tilejson.vector_layers : [];
  const layers = [];
  vectorLayers.forEach((vl, i) => {
    const color = colorFor(i);
    const common = { source: sourceName, 'source-layer': vl.id, metadata: { 'kachel:layer': vl.id } };
    layers.push({ ...common, id: `${vl.id}-fill`, type: 'fill', filter: POLYGONS,
      paint: { 'fill-color': color, 'fill-opacity': 0.25 } });
    layers.push({ ...common, id: `${vl.id}-outline`, type: 'line', filter: POLYGONS,
      paint: { 'line-color': color, 'line-width': 1 } });
    layers.push({ ...common, id: `${vl.id}-line`, type: 'line', filter: LINES,
      paint: { 'line-color': color, 'line-width': 2 } });
    layers.push({ ...common, id: `${vl.id}-circle`, type: 'circle', filter: POINTS,
      paint: { 'circle-color': color, 'circle-radius': 4, 'circle-stroke-color': '#ffffff',
        'circle-stroke-width': 1 } });
  });
  return layers;
}

/** The MapLibre source for a TileJSON document. */
export function sourceFor(tilejson, contentType = 'application/x-protobuf') {
  const source = { type: contentType.startsWith('image/') ? 'raster' : 'vector', tiles: tilejson.tiles };
  for (const key of ['minzoom', 'maxzoom', 'bounds', 'attribution']) {
    if (tilejson[key] !== undefined) source[key] = tilejson[key];
  }
  if (source.type === 'raster') source.tileSize = 256;
  return source;
}

/** Meridians and parallels every `step` degrees, as GeoJSON, for orientation without a base map. */
export function graticule(step = 30) {
  const features = [];
  for (let lng = -180; lng <= 180; lng += step) {
    const coordinates = [];
    for (let lat = -85; lat <= 85; lat += 5) coordinates.push([lng, lat]);
    features.push({ type: 'Feature', properties: { kind: 'meridian', value: lng },
      geometry: { type: 'LineString', coordinates } });
  }
  for (let lat = -90 + step; lat < 90; lat += step) {
    const coordinates = [];
    for (let lng = -180; lng <= 180; lng += 5) coordinates.push([lng, lat]);
    features.push({ type: 'Feature', properties: { kind: 'parallel', value: lat },
      geometry: { type: 'LineString', coordinates } });
  }
  return { type: 'FeatureCollection', features };
}

/** Position of (lng, lat) in the tiles of a zoom with n tiles a side (fractions kept, clamped). */
function tilePosition(lng, lat, n) {
  const clampedLat = Math.max(-85.0511287798, Math.min(85.0511287798, lat));
  const rad = (clampedLat * Math.PI) / 180;
  return {
    x: ((Math.max(-180, Math.min(180, lng)) + 180) / 360) * n,
    y: ((1 - Math.log(Math.tan(rad) + 1 / Math.cos(rad)) / Math.PI) / 2) * n,
  };
}

/** The tile column or row a tile position falls in, within the n tiles of its zoom. */
const tileIndex = (v, n) => Math.min(n - 1, Math.max(0, Math.floor(v)));

/** The XYZ tile containing a point at an integer zoom (Web Mercator, y down). */
export function tileAt(lng, lat, zoom) {
  const z = Math.max(0, Math.floor(zoom));
  const n = 2 ** z;
  const p = tilePosition(lng, lat, n);
  return { z, x: tileIndex(p.x, n), y: tileIndex(p.y, n) };
}

/**
 * The tiles of zoom z that a change reaches, as kachel's /_/changes tells it: `boxes` in degrees
 * ([west, south, east, north]; none means anywhere), each widened by `margin` tiles (the source's
 * buffer), and `minzoom`/`maxzoom` when only those zooms changed. A tile that a box touches on
 * its edge counts. Returns [] when z is outside the change's zooms, and null when the change
 * reaches everywhere or more than `limit` tiles (then reload everything).
 */
export function changedTiles(change, z, limit = 256) {
  if (change.minzoom !== undefined && z < change.minzoom) return [];
  if (change.maxzoom !== undefined && z > change.maxzoom) return [];
  if (!Array.isArray(change.boxes) || change.boxes.length === 0) return null;
  const n = 2 ** z;
  const reach = (change.margin || 0) + 1e-9;
  const seen = new Set();
  const tiles = [];
  for (const [west, south, east, north] of change.boxes) {
    const low = tilePosition(west, north, n);
    const high = tilePosition(east, south, n);
    const [x0, x1] = [tileIndex(low.x - reach, n), tileIndex(high.x + reach, n)];
    const [y0, y1] = [tileIndex(low.y - reach, n), tileIndex(high.y + reach, n)];
    if (tiles.length + (x1 - x0 + 1) * (y1 - y0 + 1) > limit) return null;
    for (let x = x0; x <= x1; x++) {
      for (let y = y0; y <= y1; y++) {
        const key = `${x}/${y}`;
        if (!seen.has(key)) {
          seen.add(key);
          tiles.push({ z, x, y });
        }
      }
    }
  }
  return tiles;
}

/**
 * The layers of a Mapbox Vector Tile (its bytes, uncompressed) and how many features each holds,
 * in the tile's order: [{ name, features }].
 */
export function tileLayers(bytes) {
  return new Pbf(bytes).readFields((tag, layers, pbf) => {
    if (tag !== 3) return; // Tile.layers; other fields are skipped
    layers.push(pbf.readMessage((field, layer, p) => {
      if (field === 1) layer.name = p.readString();
      else if (field === 2) layer.features += 1; // Layer.features, skipped unread
    }, { name: '', features: 0 }));
  }, []);
}

/**
 * The tiles of zoom z that a view's bounds ([west, south, east, north] in degrees) covers, row
 * by row; null when there are more than `limit`.
 */
export function tilesInView([west, south, east, north], z, limit = 64) {
  const n = 2 ** z;
  const low = tilePosition(Math.max(west, -180), Math.min(north, 85.0511), n);
  const high = tilePosition(Math.min(east, 180), Math.max(south, -85.0511), n);
  const [x0, x1] = [tileIndex(low.x, n), tileIndex(high.x, n)];
  const [y0, y1] = [tileIndex(low.y, n), tileIndex(high.y, n)];
  if ((x1 - x0 + 1) * (y1 - y0 + 1) > limit) return null;
  const tiles = [];
  for (let y = y0; y <= y1; y++) {
    for (let x = x0; x <= x1; x++) tiles.push({ z, x, y });
  }
  return tiles;
}

/** The north-west corner of an XYZ tile, [lng, lat] (Web Mercator, y down). */
export function tileCorner({ z, x, y }) {
  const n = 2 ** z;
  return [(x / n) * 360 - 180, (Math.atan(Math.sinh(Math.PI * (1 - (2 * y) / n))) * 180) / Math.PI];
}

/** What the inspector shows of a tile: bytes sent, features per layer, and the server's time. */
export function tileSummary({ bytes, layers, serverTiming }) {
  const kb = bytes < 1000 ? `${bytes} B` : `${(bytes / 1000).toFixed(bytes < 10000 ? 1 : 0)} kB`;
  const parts = [kb, ...layers.map((l) => `${l.name} ${l.features}`)];
  const times = Object.fromEntries((serverTiming || '').split(',').map((item) => {
    const [name, ...params] = item.trim().split(';');
    const dur = params.find((p) => p.trim().startsWith('dur='));
    const desc = params.find((p) => p.trim().startsWith('desc='));
    return [name, dur ? Number(dur.split('=')[1]) : (desc ? desc.split('=')[1] : '')];
  }));
  if (times.cache === 'hit') parts.push(times.made === undefined ? 'cached' : `cached, made in ${times.made} ms`);
  else if (times.db !== undefined) parts.push(`db ${times.db} ms, encode ${times.encode ?? 0} ms`);
  return parts.join(' · ');
}

/** Copy-ready snippets that use a TileJSON URL in MapLibre GL JS and in OpenLayers. */
export function styleSnippets(tilejsonUrl, tilejson, contentType = 'application/x-protobuf') {
  const layers = layersFor(tilejson, 'kachel', contentType).map(({ metadata, ...rest }) => rest);
  const maplibre = JSON.stringify({
    version: 8,
    sources: { kachel: { type: contentType.startsWith('image/') ? 'raster' : 'vector', url: tilejsonUrl } },
    layers,
  }, null, 2);
  const openlayers = contentType.startsWith('image/')
    ? `new ol.layer.Tile({ source: new ol.source.TileJSON({ url: '${tilejsonUrl}' }) })`
    : `new ol.layer.VectorTile({\n  source: new ol.source.VectorTile({\n    format: new ol.format.MVT(),\n` +
      `    url: '${(tilejson.tiles || [''])[0]}',\n  }),\n})`;
  return { maplibre, openlayers };
}

/** Keeps catalog entries whose id, name or description contains `text` (case-insensitive). */
export function filterCatalog(entries, text) {
  const needle = (text || '').trim().toLowerCase();
  if (!needle) return entries;
  return entries.filter(([id, info]) =>
    [id, info.name, info.description].some((v) => typeof v === 'string' && v.toLowerCase().includes(needle)));
}
