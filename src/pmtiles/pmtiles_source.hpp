#pragma once

#include "remote/http_client.hpp"
#include "tiles/content_encoding.hpp"
#include "tiles/tile_source.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace kachel::pmtiles {

/// The fixed 127-byte header of a PMTiles v3 archive.
struct header {
    std::uint64_t root_offset = 0;
    std::uint64_t root_length = 0;
    std::uint64_t metadata_offset = 0;
    std::uint64_t metadata_length = 0;
    std::uint64_t leaf_offset = 0;
    std::uint64_t leaf_length = 0;
    std::uint64_t data_offset = 0;
    std::uint64_t data_length = 0;
    std::uint64_t addressed_tiles = 0;
    std::uint64_t tile_entries = 0;
    std::uint64_t tile_contents = 0;
    bool clustered = false;
    std::uint8_t internal_compression = 0; ///< 0 unknown, 1 none, 2 gzip, 3 brotli, 4 zstd
    std::uint8_t tile_compression = 0;
    std::uint8_t tile_type = 0; ///< 0 unknown, 1 MVT, 2 PNG, 3 JPEG, 4 WebP, 5 AVIF, 6 MLT
    std::uint8_t min_zoom = 0;
    std::uint8_t max_zoom = 0;
    double min_lon = 0;
    double min_lat = 0;
    double max_lon = 0;
    double max_lat = 0;
    std::uint8_t center_zoom = 0;
    double center_lon = 0;
    double center_lat = 0;
};

inline constexpr std::size_t header_size = 127;

/// Reads the header. \throws source_error for bytes that are not a PMTiles v3 header.
[[nodiscard]] header parse_header(std::string_view bytes);

/// One directory entry: tiles [tile_id, tile_id + run_length) share the bytes at offset/length;
/// run_length 0 points at a leaf directory instead.
struct entry {
    std::uint64_t tile_id = 0;
    std::uint64_t offset = 0;
    std::uint32_t length = 0;
    std::uint32_t run_length = 0;
};

/// Decodes a directory (already decompressed). \throws source_error on truncated data.
[[nodiscard]] std::vector<entry> parse_directory(std::string_view bytes);

/// The encoding of a header's compression code (0 unknown and 1 none: identity; 2 gzip, 3 brotli,
/// 4 zstd); nothing for a code the format does not define.
[[nodiscard]] std::optional<tiles::encoding> encoding_of(std::uint8_t code) noexcept;

/// The MIME type of a header's tile type code (MVT for 0, 1 and codes it does not know).
[[nodiscard]] std::string_view type_name(std::uint8_t tile_type) noexcept;

/// The entry that covers `tile_id` (a tile, or the leaf directory to look in), or null.
[[nodiscard]] entry const* find_entry(std::span<entry const> entries, std::uint64_t tile_id) noexcept;

/// The id of z/x/y: the tiles of every lower zoom, then the Hilbert index of (x, y).
[[nodiscard]] std::uint64_t tile_id(tile_coord coord) noexcept;

/// Where an archive's bytes come from: a local file (`pread`) or a URL (HTTP range requests).
class range_reader;
/// One version of an archive: its header, root directory, metadata and leaf-directory cache.
struct archive_version;

/// A PMTiles v3 archive served as a source, from a local file or an `http(s)://` URL. The header,
/// root directory and metadata are read when the archive opens; leaf directories are kept in a
/// cache bounded in bytes. Every read runs on `blocking` (a thread pool), never on an event loop.
/// A tile the archive lacks is empty (204).
///
/// A remote archive is one version, named by its ETag: every range request carries `If-Match`,
/// and an answer from another version (412, or another ETag) makes the source read the new
/// version's header and directories and read the tile again from them. So a tile is never made of
/// one version's directory and another version's bytes. `on_change` is called after a switch
/// (the application drops the source's cached tiles).
class pmtiles_source final : public tiles::tile_source {
  public:
    /// \throws source_error naming the file or URL, what is wrong and the fix
    pmtiles_source(std::string id, std::string const& location, boost::asio::any_io_executor blocking,
                   std::size_t directory_cache_bytes, std::shared_ptr<remote::http_client> client = nullptr,
                   std::function<void()> on_change = {});
    ~pmtiles_source() override;
    pmtiles_source(pmtiles_source const&) = delete;
    pmtiles_source& operator=(pmtiles_source const&) = delete;

    [[nodiscard]] std::string const& id() const noexcept override { return m_id; }
    [[nodiscard]] std::string_view cache_name() const noexcept override { return m_cache_name; }
    [[nodiscard]] nlohmann::json const& tilejson() const noexcept override { return m_tilejson; }
    [[nodiscard]] std::string_view content_type() const noexcept override { return m_content_type; }
    [[nodiscard]] tiles::zoom_range zooms() const override { return m_zooms; }
    [[nodiscard]] boost::asio::awaitable<tiles::tile_result>
    async_get_tile(tile_coord coord, std::string const& query) const override;

    /// The header of the version served now.
    [[nodiscard]] header archive_header() const;

    /// True for an archive at a URL.
    [[nodiscard]] bool remote() const noexcept { return m_remote; }

    /// For an archive at a URL: asks its server whether the version served is still the one
    /// there (its header's range, with `If-Match`), and switches to the new one if not, as a read
    /// would (then `on_change`). A failure is logged, and the version at hand stays served.
    /// Nothing for a local file, whose replacement is seen on disk.
    [[nodiscard]] boost::asio::awaitable<void> revalidate() const;

  private:
    [[nodiscard]] std::shared_ptr<archive_version const> current() const;
    /// The archive's version now, or why it cannot be read.
    struct opened {
        std::shared_ptr<archive_version const> version;
        std::string failure;
    };
    [[nodiscard]] boost::asio::awaitable<opened> open_version() const;
    [[nodiscard]] boost::asio::awaitable<std::shared_ptr<archive_version const>> load() const;
    [[nodiscard]] boost::asio::awaitable<void> switch_from(std::shared_ptr<archive_version const> old) const;
    [[nodiscard]] boost::asio::awaitable<std::string> internal(archive_version const& v, std::uint64_t offset,
                                                               std::uint64_t length) const;
    [[nodiscard]] boost::asio::awaitable<std::shared_ptr<std::vector<entry> const>>
    leaf(archive_version const& v, std::uint64_t offset, std::uint32_t length) const;
    [[nodiscard]] boost::asio::awaitable<tiles::tile_result> read_from(archive_version const& v,
                                                                       tile_coord coord) const;
    [[nodiscard]] boost::asio::awaitable<tiles::tile_result> read(tile_coord coord) const;
    /// The tile if it can be had without waiting for a disk or a server, else nothing.
    [[nodiscard]] std::optional<tiles::tile_result> read_at_hand(tile_coord coord) const;

    std::string m_id;
    std::string m_cache_name; ///< a file replaced on disk is a new instance under the same id
    std::string m_location;   ///< the path, or the URL without its query
    boost::asio::any_io_executor m_blocking;
    std::size_t m_cache_limit;
    std::unique_ptr<range_reader> m_reader;
    bool m_remote = false;
    std::function<void()> m_on_change;
    nlohmann::json m_tilejson;
    std::string m_content_type;
    tiles::zoom_range m_zooms;

    mutable std::mutex m_mutex;
    mutable std::shared_ptr<archive_version const> m_current;
};

} // namespace kachel::pmtiles
