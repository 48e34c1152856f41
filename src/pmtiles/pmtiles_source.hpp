#pragma once

#include "tiles/content_encoding.hpp"
#include "tiles/tile_source.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
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

/// The entry that covers `tile_id` (a tile, or the leaf directory to look in), or null.
[[nodiscard]] entry const* find_entry(std::span<entry const> entries, std::uint64_t tile_id) noexcept;

/// The id of z/x/y: the tiles of every lower zoom, then the Hilbert index of (x, y).
[[nodiscard]] std::uint64_t tile_id(tile_coord coord) noexcept;

/// A local PMTiles v3 archive served as a source. The root directory is read when the archive
/// opens; leaf directories are kept in a cache bounded in bytes. Reads are `pread`s run on
/// `blocking` (a thread pool), never on an event loop. A tile the archive lacks is empty (204).
class pmtiles_source final : public tiles::tile_source {
  public:
    /// \throws source_error naming the file, what is wrong and the fix
    pmtiles_source(std::string id, std::string path, boost::asio::any_io_executor blocking,
                   std::size_t directory_cache_bytes);
    ~pmtiles_source() override;
    pmtiles_source(pmtiles_source const&) = delete;
    pmtiles_source& operator=(pmtiles_source const&) = delete;

    [[nodiscard]] std::string const& id() const noexcept override { return m_id; }
    [[nodiscard]] nlohmann::json const& tilejson() const noexcept override { return m_tilejson; }
    [[nodiscard]] std::string_view content_type() const noexcept override { return m_content_type; }
    [[nodiscard]] tiles::zoom_range zooms() const override { return m_zooms; }
    [[nodiscard]] boost::asio::awaitable<tiles::tile_result>
    async_get_tile(tile_coord coord, std::string const& query) const override;

    [[nodiscard]] header const& archive_header() const noexcept { return m_header; }

  private:
    [[nodiscard]] std::string read_range(std::uint64_t offset, std::uint64_t length) const;
    [[nodiscard]] std::string internal(std::string bytes) const;
    [[nodiscard]] std::shared_ptr<std::vector<entry> const> leaf(std::uint64_t offset,
                                                                 std::uint32_t length) const;
    [[nodiscard]] tiles::tile_result read(tile_coord coord) const;

    std::string m_id;
    std::string m_path;
    boost::asio::any_io_executor m_blocking;
    int m_fd = -1;
    std::uint64_t m_size = 0;
    header m_header;
    std::vector<entry> m_root;
    nlohmann::json m_tilejson;
    std::string m_content_type;
    tiles::zoom_range m_zooms;

    /// Leaf directories by offset, least recently used first out.
    struct cached_leaf {
        std::shared_ptr<std::vector<entry> const> entries;
        std::size_t bytes = 0;
        std::list<std::uint64_t>::iterator position;
    };
    std::size_t m_cache_limit;
    mutable std::mutex m_mutex;
    mutable std::size_t m_cache_bytes = 0;
    mutable std::list<std::uint64_t> m_recent;
    mutable std::unordered_map<std::uint64_t, cached_leaf> m_leaves;
};

} // namespace kachel::pmtiles
