#pragma once

#include <chrono>
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

/// How archives at `http(s)://` URLs are read (the `pmtiles` section's keys, as Martin's object
/// store options name them, plus kachel's `ssl_root_cert`).
struct remote_archive_settings {
    bool allow_http = true; ///< Martin's default: `http://` URLs are read too
    bool allow_invalid_certificates = false;
    std::optional<std::string> ssl_root_cert; ///< CA file; unset: the system's CAs
    std::optional<std::chrono::milliseconds> timeout;
    std::optional<std::chrono::milliseconds> connect_timeout;
    std::optional<std::chrono::milliseconds> pool_idle_timeout;
    std::optional<std::uint64_t> pool_max_idle_per_host;
    /// `reload_interval`: how often each archive's server is asked whether the archive is still
    /// the version served; unset: every 10 minutes (Martin's default), zero: never.
    std::optional<std::chrono::milliseconds> reload_interval;
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
    remote_archive_settings remote; ///< PMTiles only
};

/// The files `config` names, configured sources first: a file (or an `http(s)://` URL) as is, a
/// directory's files whose name ends in `extension` (`.mbtiles`), sorted by name, without
/// descending further.
/// \throws config_error for a path that does not exist, naming it and where it came from (with
/// `missing_ok`, as when a reload looks again, such a path is left out instead)
[[nodiscard]] std::vector<archive_file> archive_files(archive_config const& config,
                                                      std::string_view extension, bool missing_ok = false);

/// True for an archive named by a URL of a kind Martin reads (`http(s)://`, `s3://`, `gs://`,
/// `az://`...).
[[nodiscard]] bool is_remote_archive(std::string_view path) noexcept;

/// Why an archive in an object store (`s3://`...) stops startup, and the fix.
inline constexpr std::string_view object_store_refusal =
    "archives in object stores (s3://, gs://, az://) are not served by kachel: give an https:// URL of the "
    "archive, or download it";

/// True for an `http://` or `https://` URL, which kachel reads PMTiles archives from.
[[nodiscard]] bool is_http_url(std::string_view path) noexcept;

/// The stem of a path or URL: `/data/world.v2.mbtiles` -> `world.v2`,
/// `https://h/a/world.pmtiles?sig=1` -> `world`.
[[nodiscard]] std::string file_stem(std::string_view path);

} // namespace kachel::tiles
