// Reads a PMTiles archive through the reference reader (the `pmtiles` package by the format's
// authors) and prints, as JSON, its header, its metadata and every tile of its zooms, each as the
// archive stores it (hex) and as the reader hands it out (hex, after the tile compression).
//
//   node read_pmtiles.mjs ARCHIVE
//
// Every z/x/y of every zoom from the header's min to max zoom is asked for, so a tile that is
// not where it should be, or one where none should be, shows.
import fs from "node:fs";
import zlib from "node:zlib";
import { PMTiles, SharedPromiseCache } from "pmtiles";

const path = process.argv[2];
const file = fs.openSync(path, "r");
const source = {
  getKey: () => path,
  getBytes: async (offset, length) => {
    const buf = Buffer.alloc(length);
    const n = fs.readSync(file, buf, 0, length, offset);
    return { data: buf.buffer.slice(buf.byteOffset, buf.byteOffset + n) };
  },
};
// 1 none, 2 gzip, 3 brotli; the last bytes given to it are the last tile's, as stored.
let lastStored = null;
const decode = async (buf, compression) => {
  lastStored = Buffer.from(buf);
  const b = Buffer.from(buf);
  const plain = compression === 2 ? zlib.gunzipSync(b) : compression === 3 ? zlib.brotliDecompressSync(b) : b;
  return plain.buffer.slice(plain.byteOffset, plain.byteOffset + plain.length);
};
try {
  const reader = new PMTiles(source, new SharedPromiseCache(100, true, decode), decode);
  const header = await reader.getHeader();
  const metadata = await reader.getMetadata();
  const tiles = [];
  for (let z = header.minZoom; z <= header.maxZoom; z++) {
    for (let x = 0; x < 2 ** z; x++) {
      for (let y = 0; y < 2 ** z; y++) {
        lastStored = null;
        const got = await reader.getZxy(z, x, y);
        if (got) {
          tiles.push({ z, x, y, stored: lastStored.toString("hex"), plain: Buffer.from(got.data).toString("hex") });
        }
      }
    }
  }
  console.log(JSON.stringify({ header, metadata, tiles }));
} catch (e) {
  console.error(`reference reader: ${e.message}`);
  process.exit(1);
}
