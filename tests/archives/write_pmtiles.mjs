// Writes a PMTiles v3 archive from tile files, then reads every tile back through the reference
// reader (the `pmtiles` package by the format's authors) and fails unless each one comes back
// byte for byte. Tile ids come from the reference library too.
//
//   node write_pmtiles.mjs SPEC.json
//
// SPEC: {"out": path, "tiles": [{"z", "x", "y", "file"}], "tile_type": 1, "tile_compression": 2
//        (1 plain, 2 gzip, 3 brotli, 4 zstd: how the tile files are, or with "compress_tiles": true
//        how the writer is to compress them),
//        "internal_compression": 2 (1 none, 2 gzip, 3 brotli, 4 zstd), "leaf_size": 0 (entries per leaf directory;
//        0 keeps every entry in the root), "metadata": {...}, "bounds": [w, s, e, n],
//        "center": [lon, lat, zoom]}
//       or, instead of "tiles", "synthetic": {"max_zoom": Z, "tile_bytes": N}: every tile of zooms 0
//        to Z, each N random bytes of its own after an MVT layer's field tag (0x1a), as every
//        vector tile starts (a large archive for memory figures); then a sample of the tiles is
//        read back, not all.
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import zlib from "node:zlib";
import { PMTiles, SharedPromiseCache, zxyToTileId } from "pmtiles";

const spec = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
// 1 none, 2 gzip, 3 brotli, 4 zstd (the codes of the format); zstd by the zstd command-line tool,
// which Node's zlib lacks.
const zstd = (args, b) => execFileSync("zstd", ["-q", "-c", ...args], { input: b, maxBuffer: 1 << 30 });
const encoders = { 1: (b) => b, 2: (b) => zlib.gzipSync(b), 3: (b) => zlib.brotliCompressSync(b), 4: (b) => zstd([], b) };
const decoders = {
  0: (b) => b, 1: (b) => b, 2: (b) => zlib.gunzipSync(b), 3: (b) => zlib.brotliDecompressSync(b), 4: (b) => zstd(["-d"], b),
};
const internal = (buf) => encoders[spec.internal_compression](buf);

function varints(values) {
  const out = [];
  for (let v of values) {
    v = BigInt(v);
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v > 0n) byte |= 0x80;
      out.push(byte);
    } while (v > 0n);
  }
  return out;
}

function directory(entries) {
  const ids = [];
  let last = 0;
  for (const e of entries) {
    ids.push(e.tileId - last);
    last = e.tileId;
  }
  const offsets = entries.map((e, i) =>
    i > 0 && e.offset === entries[i - 1].offset + entries[i - 1].length ? 0 : e.offset + 1
  );
  return Buffer.from(
    varints([entries.length, ...ids, ...entries.map((e) => e.runLength), ...entries.map((e) => e.length), ...offsets])
  );
}

// Tiles by id; identical bytes stored once, consecutive ids with the same bytes as one run.
function syntheticTiles({ max_zoom: maxZoom, tile_bytes: size }) {
  const out = [];
  for (let z = 0; z <= maxZoom; z++) {
    const n = 2 ** z;
    const random = crypto.randomBytes(n * n * size);
    for (let x = 0; x < n; x++) {
      for (let y = 0; y < n; y++) {
        const at = (x * n + y) * size;
        // Random bytes alone would now and then start like gzip (1 tile in 65,536), which a
        // server takes for a compressed tile.
        random[at] = 0x1a;
        out.push({ z, x, y, bytes: random.subarray(at, at + size) });
      }
    }
  }
  return out;
}

const tiles = (spec.synthetic ? syntheticTiles(spec.synthetic) : spec.tiles)
  .map((t) => {
    if (t.bytes) return { ...t, id: zxyToTileId(t.z, t.x, t.y) };
    const file = fs.readFileSync(t.file);
    return { ...t, id: zxyToTileId(t.z, t.x, t.y), bytes: spec.compress_tiles ? encoders[spec.tile_compression](file) : file };
  })
  .sort((a, b) => a.id - b.id);
const stored = new Map();
const chunks = [];
let dataLength = 0;
const entries = [];
for (const t of tiles) {
  // (Random synthetic tiles are all different: no need to look.)
  const key = spec.synthetic ? null : t.bytes.toString("base64");
  let place = key === null ? undefined : stored.get(key);
  if (!place) {
    place = { offset: dataLength, length: t.bytes.length };
    if (key !== null) stored.set(key, place);
    chunks.push(t.bytes);
    dataLength += t.bytes.length;
  }
  const prev = entries[entries.length - 1];
  if (prev && prev.offset === place.offset && prev.length === place.length && prev.tileId + prev.runLength === t.id) {
    prev.runLength += 1;
  } else {
    entries.push({ tileId: t.id, offset: place.offset, length: place.length, runLength: 1 });
  }
}

let root = entries;
const leaves = [];
let leafLength = 0;
if (spec.leaf_size > 0 && entries.length > spec.leaf_size) {
  root = [];
  for (let i = 0; i < entries.length; i += spec.leaf_size) {
    const part = entries.slice(i, i + spec.leaf_size);
    const bytes = internal(directory(part));
    root.push({ tileId: part[0].tileId, offset: leafLength, length: bytes.length, runLength: 0 });
    leaves.push(bytes);
    leafLength += bytes.length;
  }
}
const rootBytes = internal(directory(root));
const metadata = internal(Buffer.from(JSON.stringify(spec.metadata ?? {})));

const header = Buffer.alloc(127);
const rootOffset = 127;
const metadataOffset = rootOffset + rootBytes.length;
const leafOffset = metadataOffset + metadata.length;
const dataOffset = leafOffset + leafLength;
header.write("PMTiles", 0, "ascii");
header.writeUInt8(3, 7);
[rootOffset, rootBytes.length, metadataOffset, metadata.length, leafOffset, leafLength, dataOffset, dataLength,
  tiles.length, entries.length, chunks.length].forEach((v, i) => header.writeBigUInt64LE(BigInt(v), 8 + 8 * i));
header.writeUInt8(1, 96); // clustered
header.writeUInt8(spec.internal_compression, 97);
header.writeUInt8(spec.tile_compression, 98);
header.writeUInt8(spec.tile_type, 99);
const zooms = tiles.reduce(([lo, hi], t) => [Math.min(lo, t.z), Math.max(hi, t.z)], [Infinity, -Infinity]);
header.writeUInt8(zooms[0], 100);
header.writeUInt8(zooms[1], 101);
const e7 = (v) => Math.round(v * 1e7);
const [w, s, e, n] = spec.bounds;
[w, s, e, n].forEach((v, i) => header.writeInt32LE(e7(v), 102 + 4 * i));
header.writeUInt8(spec.center[2], 118);
header.writeInt32LE(e7(spec.center[0]), 119);
header.writeInt32LE(e7(spec.center[1]), 123);
fs.writeFileSync(spec.out, Buffer.concat([header, rootBytes, metadata, ...leaves, ...chunks]));

// The reference reader must find every tile, and nothing where there is none.
const file = fs.openSync(spec.out, "r");
const source = {
  getKey: () => spec.out,
  getBytes: async (offset, length) => {
    const buf = Buffer.alloc(length);
    fs.readSync(file, buf, 0, length, offset);
    return { data: buf.buffer.slice(buf.byteOffset, buf.byteOffset + length) };
  },
};
// The reader decodes directories and tiles with this.
const decode = async (buf, compression) => {
  const plain = decoders[compression](Buffer.from(buf));
  return plain.buffer.slice(plain.byteOffset, plain.byteOffset + plain.length);
};
try {
  const reader = new PMTiles(source, new SharedPromiseCache(100, true, decode), decode);
  const step = spec.synthetic ? Math.max(1, Math.floor(tiles.length / 2000)) : 1;
  for (let i = 0; i < tiles.length; i += step) {
    const t = tiles[i];
    const got = await reader.getZxy(t.z, t.x, t.y);
    const expected = Buffer.from(await decode(t.bytes, spec.tile_compression));
    if (!got || Buffer.compare(Buffer.from(got.data), expected) !== 0) {
      console.error(`reference reader: tile ${t.z}/${t.x}/${t.y} does not come back as written`);
      process.exit(1);
    }
  }
  const maxZoom = zooms[1];
  const absent = [...Array(2 ** maxZoom).keys()].map((x) => ({ z: maxZoom, x, y: 0 }))
    .find((c) => !tiles.some((t) => t.z === c.z && t.x === c.x && t.y === c.y));
  if (absent && (await reader.getZxy(absent.z, absent.x, absent.y)) !== undefined) {
    console.error(`reference reader: found a tile at ${absent.z}/${absent.x}/${absent.y}, where none was written`);
    process.exit(1);
  }
} catch (e) {
  // The error alone: Node would print the reader's minified source line with it.
  console.error(`reference reader: ${e.message}`);
  process.exit(1);
}
console.log(`wrote ${spec.out}: ${tiles.length} tiles, ${entries.length} entries, ${leaves.length} leaf directories`);
