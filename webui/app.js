// kachel's catalog and map preview. Talks only to this kachel: /catalog, the TileJSON routes,
// and /_/changes, whose events make the map reload exactly the tiles that changed.
import * as maplibregl from './maplibre-gl.mjs';
import {
  changedTiles, filterCatalog, graticule, layersFor, sourceFor, styleSnippets, tileAt, tileCorner, tileLayers,
  tilesInView, tileSummary,
} from './style.js';

const ui = {
  filter: document.getElementById('filter'),
  list: document.getElementById('sources'),
  details: document.getElementById('details'),
  url: document.getElementById('tilejson-url'),
  copy: document.getElementById('copy-url'),
  maplibreSnippet: document.getElementById('snippet-maplibre'),
  openlayersSnippet: document.getElementById('snippet-openlayers'),
  status: document.getElementById('status'),
  inspect: document.getElementById('inspect'),
  inspector: document.getElementById('inspector'),
};

const state = { entries: [], selected: [], pointer: null, tilejson: null, refreshed: 0 };

const map = new maplibregl.Map({
  container: 'map',
  style: {
    version: 8,
    sources: { graticule: { type: 'geojson', data: graticule(30) } },
    layers: [
      { id: 'background', type: 'background', paint: { 'background-color': '#f2efe9' } },
      { id: 'graticule', type: 'line', source: 'graticule', paint: { 'line-color': '#c8c2b6', 'line-width': 0.7 } },
    ],
  },
  center: [0, 20],
  zoom: 1,
  attributionControl: { compact: true },
});
map.addControl(new maplibregl.NavigationControl(), 'top-right');
window.kachelMap = map; // for the browser test and for curious users in the console

function showStatus() {
  const z = map.getZoom();
  let text = `zoom ${z.toFixed(2)}`;
  if (state.pointer) {
    const { lng, lat } = state.pointer;
    const t = tileAt(lng, lat, z);
    text += ` | ${lng.toFixed(4)}, ${lat.toFixed(4)} | tile ${t.z}/${t.x}/${t.y}`;
  }
  if (state.selected.length === 0) text += ' | no source selected';
  ui.status.textContent = text;
}

function renderList() {
  ui.list.replaceChildren();
  for (const [id, info] of filterCatalog(state.entries, ui.filter.value)) {
    const li = document.createElement('li');
    li.dataset.id = id;
    li.classList.toggle('selected', state.selected.includes(id));
    const box = document.createElement('input');
    box.type = 'checkbox';
    box.checked = state.selected.includes(id);
    box.setAttribute('aria-label', `Add ${id} to the map`);
    box.addEventListener('click', (e) => {
      e.stopPropagation();
      const next = box.checked ? [...state.selected, id] : state.selected.filter((s) => s !== id);
      select(next);
    });
    const text = document.createElement('div');
    const name = document.createElement('div');
    name.className = 'id';
    name.textContent = id;
    const meta = document.createElement('div');
    meta.className = 'meta';
    meta.textContent = [info.description, info.content_type].filter(Boolean).join(' · ');
    text.append(name, meta);
    li.append(box, text);
    li.addEventListener('click', () => select([id]));
    ui.list.append(li);
  }
}

function clearSources() {
  for (const layer of map.getStyle().layers) {
    if (layer.metadata && layer.metadata['kachel:owned']) map.removeLayer(layer.id);
  }
  if (map.getSource('kachel')) map.removeSource('kachel');
}

/** Maps the sources `ids` (a composite when several); `fit` moves the view to their bounds. */
async function select(ids, fit = true) {
  state.selected = ids;
  renderList();
  clearSources();
  showStatus();
  if (ids.length === 0) {
    ui.details.hidden = true;
    return;
  }
  const path = ids.map(encodeURIComponent).join(',');
  const response = await fetch(path);
  if (!response.ok) {
    ui.status.textContent = `${path}: ${response.status} ${await response.text()}`;
    return;
  }
  const tilejson = await response.json();
  if (state.selected !== ids) return; // another selection arrived meanwhile
  state.tilejson = tilejson;
  const contentType = (state.entries.find(([id]) => id === ids[0]) || [null, {}])[1].content_type
    || 'application/x-protobuf';
  map.addSource('kachel', sourceFor(tilejson, contentType));
  for (const layer of layersFor(tilejson, 'kachel', contentType)) {
    map.addLayer({ ...layer, metadata: { ...(layer.metadata || {}), 'kachel:owned': true } });
  }
  if (fit && Array.isArray(tilejson.bounds) && tilejson.bounds.length === 4) {
    const [w, s, e, n] = tilejson.bounds;
    map.fitBounds([[Math.max(w, -180), Math.max(s, -85)], [Math.min(e, 180), Math.min(n, 85)]],
      { padding: 40, animate: false, maxZoom: 14 });
  }
  const url = new URL(path, window.location.href).href;
  ui.url.value = url;
  const snippets = styleSnippets(url, tilejson, contentType);
  ui.maplibreSnippet.textContent = snippets.maplibre;
  ui.openlayersSnippet.textContent = snippets.openlayers;
  ui.details.hidden = false;
  document.body.dataset.selected = ids.join(',');
  if (ui.inspect.checked) map.once('idle', inspectTiles);
}

function popupFor(features) {
  const root = document.createElement('div');
  for (const f of features.slice(0, 3)) {
    const title = document.createElement('div');
    title.className = 'popup-layer';
    title.textContent = f.sourceLayer || f.layer.id;
    const table = document.createElement('table');
    table.className = 'popup-table';
    for (const [k, v] of Object.entries(f.properties)) {
      const row = table.insertRow();
      const th = document.createElement('th');
      th.textContent = k;
      row.append(th);
      row.insertCell().textContent = String(v);
    }
    root.append(title, table);
  }
  return root;
}

function ownedLayers() {
  return map.getStyle().layers.filter((l) => l.metadata && l.metadata['kachel:owned']).map((l) => l.id);
}

map.on('mousemove', (e) => {
  state.pointer = e.lngLat;
  showStatus();
  const hit = ownedLayers().length > 0 && map.queryRenderedFeatures(e.point, { layers: ownedLayers() }).length > 0;
  map.getCanvas().style.cursor = hit ? 'pointer' : '';
});
map.on('zoom', showStatus);
map.on('click', (e) => {
  const layers = ownedLayers();
  if (layers.length === 0) return;
  const features = map.queryRenderedFeatures(e.point, { layers });
  if (features.length === 0) return;
  new maplibregl.Popup({ maxWidth: '360px' }).setLngLat(e.lngLat).setDOMContent(popupFor(features)).addTo(map);
});

ui.filter.addEventListener('input', renderList);
ui.copy.addEventListener('click', async () => {
  ui.url.select();
  try {
    await navigator.clipboard.writeText(ui.url.value);
    ui.copy.textContent = 'Copied';
  } catch {
    document.execCommand('copy');
  }
});

/** Reloads the map's tiles that `change` (a /_/changes event) reaches; all of them when it names no area. */
function refreshChanged(change) {
  if (!map.getSource('kachel') || !state.tilejson) return;
  if (!change.sources.some((id) => state.selected.includes(id))) return;
  // The zooms whose tiles the map may hold: its source's, up to just past the view's (vector
  // tiles of 512 px are those of the zoom below; the view keeps parents while loading).
  const minzoom = state.tilejson.minzoom ?? 0;
  const maxzoom = Math.min(state.tilejson.maxzoom ?? 30, Math.ceil(map.getZoom()) + 1);
  const tiles = [];
  for (let z = minzoom; z <= maxzoom; z++) {
    const some = changedTiles(change, z);
    if (some === null) {
      refreshAll();
      return;
    }
    tiles.push(...some);
  }
  if (tiles.length === 0) return;
  // Tiles kept out of view would come back stale when panned to: forget those the change
  // reaches (MapLibre has no public call for this; without it they reload on expiry only).
  const keys = new Set(tiles.map(({ z, x, y }) => `${z}/${x}/${y}`));
  map.style?.tileManagers?.kachel?._outOfViewCache?.filter?.(
    (tile) => !keys.has(`${tile.tileID.canonical.z}/${tile.tileID.canonical.x}/${tile.tileID.canonical.y}`));
  map.refreshTiles('kachel', tiles);
  state.refreshed += 1;
  document.body.dataset.refreshed = String(state.refreshed);
}

function refreshAll() {
  if (!map.getSource('kachel')) return;
  map.style?.tileManagers?.kachel?._outOfViewCache?.reset?.();
  map.refreshTiles('kachel');
  state.refreshed += 1;
  document.body.dataset.refreshed = String(state.refreshed);
}

/** Follows /_/changes. After the stream breaks, what happened meanwhile is unknown: reload all. */
function followChanges() {
  if (!window.EventSource) return;
  const events = new EventSource('_/changes');
  let opened = false;
  events.addEventListener('open', () => {
    if (opened) refreshAll();
    opened = true;
    document.body.dataset.live = 'on';
  });
  events.addEventListener('error', () => { document.body.dataset.live = 'off'; });
  events.addEventListener('change', (e) => refreshChanged(JSON.parse(e.data)));
  events.addEventListener('reset', refreshAll);
  events.addEventListener('catalog', (e) => catalogChanged(JSON.parse(e.data)));
}

async function loadCatalog() {
  const response = await fetch('catalog');
  const catalog = await response.json();
  state.entries = Object.entries(catalog.tiles || {}).sort(([a], [b]) => a.localeCompare(b));
  renderList();
  return catalog;
}

/** The catalog was reloaded: list it anew, and map the selection anew when a source of it changed. */
async function catalogChanged(change) {
  await loadCatalog();
  const removed = change.removed || [];
  if (state.selected.some((id) => removed.includes(id) || (change.changed || []).includes(id))) {
    await select(state.selected.filter((id) => !removed.includes(id)), false); // the view stays
  }
}

async function start() {
  followChanges();
  const catalog = await loadCatalog();
  showStatus();
  const wanted = new URLSearchParams(window.location.search).get('source');
  if (wanted) {
    await select(wanted.split(',').filter((id) => catalog.tiles[id]));
  }
}

/** Tiles over this size are flagged red in the inspector (kachel's tile_size_warning default). */
const BIG_TILE = 500000;
const inspection = { labels: [], round: 0 };

/** The Server-Timing MapLibre's own request for `url` received, as header text, if the browser kept it. */
function timingOf(url) {
  const entry = performance.getEntriesByName(url, 'resource').at(-1);
  if (!entry || !entry.serverTiming || entry.serverTiming.length === 0) return null;
  return entry.serverTiming.map((t) => `${t.name}${t.description ? `;desc=${t.description}` : ''}`
    + (t.name === 'cache' ? '' : `;dur=${t.duration}`)).join(', ');
}

/** Labels each tile in view with its size, features per layer and server time. */
async function inspectTiles() {
  const round = ++inspection.round;
  ui.inspector.replaceChildren();
  inspection.labels = [];
  const template = state.tilejson?.tiles?.[0];
  if (!ui.inspect.checked || !template) return;
  const z = Math.min(state.tilejson.maxzoom ?? 30, Math.max(state.tilejson.minzoom ?? 0, Math.floor(map.getZoom())));
  const b = map.getBounds();
  const tiles = tilesInView([b.getWest(), b.getSouth(), b.getEast(), b.getNorth()], z, 36);
  if (tiles === null) {
    ui.status.textContent = 'tile inspector: too many tiles in view, zoom in';
    return;
  }
  const found = await Promise.all(tiles.map(async (tile) => {
    const url = new URL(template.replace('{z}', tile.z).replace('{x}', tile.x).replace('{y}', tile.y),
      window.location.href).href;
    const response = await fetch(url);
    const body = new Uint8Array(await response.arrayBuffer());
    const entry = performance.getEntriesByName(url, 'resource').at(-1);
    // Bytes as sent: what the map's request transferred (compressed), else this one's.
    const bytes = entry?.encodedBodySize || Number(response.headers.get('content-length')) || body.length;
    const layers = response.status === 200 ? tileLayers(body) : [];
    return { tile, bytes, layers, serverTiming: timingOf(url) ?? response.headers.get('server-timing') };
  }));
  if (round !== inspection.round) return;
  for (const info of found) {
    const label = document.createElement('div');
    label.className = 'tile-info';
    label.classList.toggle('big', info.bytes > BIG_TILE);
    label.textContent = `${info.tile.z}/${info.tile.x}/${info.tile.y}\n${tileSummary(info)}`;
    label.dataset.tile = `${info.tile.z}/${info.tile.x}/${info.tile.y}`;
    ui.inspector.append(label);
    inspection.labels.push({ label, corner: tileCorner(info.tile) });
  }
  placeLabels();
  document.body.dataset.inspected = String(round);
}

function placeLabels() {
  for (const { label, corner } of inspection.labels) {
    const p = map.project(corner);
    label.style.transform = `translate(${Math.round(p.x)}px, ${Math.round(p.y)}px)`;
  }
}

ui.inspect.addEventListener('change', () => {
  map.showTileBoundaries = ui.inspect.checked;
  ui.inspector.hidden = !ui.inspect.checked;
  inspectTiles();
});
map.on('move', placeLabels);
map.on('moveend', () => { if (ui.inspect.checked) map.once('idle', inspectTiles); });

map.on('load', start);
