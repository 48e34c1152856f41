#pragma once

#include <cstdio>
#include <string>

namespace kachel::app {

/// `kachel-cp --inspect FILE`: prints an MBTiles or PMTiles archive's summary on `out` (its
/// schema or header, metadata, tiles per zoom with their sizes, the area they cover), then checks
/// it and prints what is wrong:
/// - MBTiles: SQLite's `integrity_check`, each tile's hash (flat-with-hash, normalized) and
///   `agg_tiles_hash` against the tiles;
/// - PMTiles: the header's sections inside the file, every directory (ascending ids, no runs over
///   the next entry, leaves and tiles inside their sections), the counts the header claims, the
///   clustered order it claims, the zooms.
/// Reads the file on the calling thread. \returns 0 when the archive is sound, 1 otherwise
/// (including a file that cannot be read, with the cause on `out`)
[[nodiscard]] int inspect_archive(std::string const& path, std::FILE* out);

} // namespace kachel::app
