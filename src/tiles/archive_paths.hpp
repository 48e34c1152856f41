#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kachel::tiles {

/// One archive file to publish: its path, and the id it was configured under (else empty: the
/// id then comes from the file's stem).
struct archive_file {
    std::string path;
    std::string id;
};

/// Where archives of one kind come from (`mbtiles:` / `pmtiles:` in the config file, or paths
/// on the command line).
struct archive_config {
    std::vector<std::string> paths;    ///< files, or directories whose archives are all published
    std::vector<archive_file> sources; ///< `sources: {id: path}`
    std::string origin;                ///< "config.yaml mbtiles", "command line argument 2"
    /// `pmtiles.directory_cache`: megabytes for the PMTiles directories of every archive
    /// together, 0 for none; unset: a quarter of `cache.size_mb`, as in Martin.
    std::optional<std::uint64_t> directory_cache_mb;
};

/// The files `config` names, configured sources first: a file as is, a directory's files whose
/// name ends in `extension` (`.mbtiles`), sorted by name, without descending further.
/// \throws config_error for a path that does not exist, naming it and where it came from
[[nodiscard]] std::vector<archive_file> archive_files(archive_config const& config,
                                                      std::string_view extension);

/// True for an archive named by a URL of a kind Martin reads (`http(s)://`, `s3://`, `gs://`,
/// `az://`...).
[[nodiscard]] bool is_remote_archive(std::string_view path) noexcept;

/// The stem of a path: `/data/world.v2.mbtiles` -> `world.v2`.
[[nodiscard]] std::string file_stem(std::string_view path);

} // namespace kachel::tiles
