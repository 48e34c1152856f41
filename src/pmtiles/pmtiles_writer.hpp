#pragma once

#include "core/c_handle.hpp"
#include "pmtiles/pmtiles_source.hpp"

#include "tiles/content_encoding.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kachel::pmtiles {

namespace detail {
/// Closes a temporary file; a failure to close one that is removed next changes nothing.
inline void close_file(std::FILE* file) noexcept {
    (void)std::fclose(file);
} // NOLINT(cppcoreguidelines-owning-memory)
} // namespace detail

/// What the writer cannot learn from the tiles: their type and compression, the area and the
/// metadata. Zooms, counts, offsets and lengths it fills in itself.
struct archive_description {
    std::uint8_t tile_type = 1;        ///< 1 MVT, 2 PNG, 3 JPEG, 4 WebP, 5 AVIF, 6 MLT
    std::uint8_t tile_compression = 2; ///< 1 none, 2 gzip, 3 brotli, 4 zstd
    double min_lon = -180;
    double min_lat = -85.0511287798066;
    double max_lon = 180;
    double max_lat = 85.0511287798066;
    std::uint8_t center_zoom = 0;
    double center_lon = 0;
    double center_lat = 0;
    nlohmann::json metadata = nlohmann::json::object();
};

/// The header's tile type code of a MIME type (1 MVT, 2 PNG, 3 JPEG, 4 WebP, 5 AVIF, 6 MLT), or
/// nothing for a type PMTiles has no code for (GIF, JSON).
[[nodiscard]] std::optional<std::uint8_t> tile_type_code(std::string_view mime) noexcept;

/// The header's compression code of an encoding (1 none, 2 gzip, 3 brotli, 4 zstd).
[[nodiscard]] std::uint8_t compression_code(tiles::encoding e) noexcept;

/// Encodes a directory (before internal compression): count, tile-id deltas, run lengths,
/// lengths, then offsets (0 for "right after the entry before").
[[nodiscard]] std::string serialize_directory(std::vector<entry> const& entries);

/// Writes a clustered PMTiles v3 archive: tiles come in ascending tile id; a tile equal to the one
/// before it extends that entry's run instead of adding one (empty sea, full land), and a small
/// tile (up to 1 KiB) seen before points at the bytes stored then (a 128-bit content hash). The
/// directories are gzip-compressed, with leaf directories when the root would not fit in the
/// first 16 KiB. Memory does not grow with the tiles: entries go to a file as they come, and
/// directories are built from it a leaf at a time (only the hashes of distinct small tiles and
/// the root's entries, one per leaf, are kept).
///
/// Everything goes to temporary files beside `path`: the archive appears under `path` only once
/// finish() has written it whole (a rename), so an interrupted run never leaves a file that looks
/// complete. Destroying an unfinished writer removes its temporary files.
class pmtiles_writer {
  public:
    /// \throws source_error naming the path when the temporary file cannot be made
    explicit pmtiles_writer(std::string path);
    ~pmtiles_writer();
    pmtiles_writer(pmtiles_writer const&) = delete;
    pmtiles_writer& operator=(pmtiles_writer const&) = delete;

    /// Adds a tile. \pre `id` is above every id added before; `bytes` not empty.
    /// \throws source_error when the disk refuses the bytes
    void add(std::uint64_t id, std::string_view bytes);

    /// Writes the header, directories and metadata before the tile data, and renames the result
    /// to `path`. \throws source_error naming the path
    void finish(archive_description const& description);

    /// Bytes of tile data stored so far (duplicates not counted again).
    [[nodiscard]] std::uint64_t data_bytes() const noexcept { return m_data_size; }
    /// Tiles added, entries made and distinct contents stored.
    [[nodiscard]] std::uint64_t addressed() const noexcept { return m_addressed; }
    [[nodiscard]] std::uint64_t entries() const noexcept { return m_entries; }
    [[nodiscard]] std::uint64_t contents() const noexcept { return m_contents; }

  private:
    /// A temporary file beside the output, removed when destroyed.
    struct temp_file {
        explicit temp_file(std::string name);
        ~temp_file();
        temp_file(temp_file const&) = delete;
        temp_file& operator=(temp_file const&) = delete;
        std::string path;
        c_handle<std::FILE, detail::close_file> file;
    };
    struct hash128 {
        std::uint64_t low;
        std::uint64_t high;
        friend bool operator==(hash128 const&, hash128 const&) = default;
    };
    struct hash_of_hash {
        std::size_t operator()(hash128 const& h) const noexcept { return h.low; }
    };
    struct stored {
        std::uint64_t offset;
        std::uint32_t length;
    };
    /// The root directory (compressed), and the leaf directories' length in their file.
    struct directories {
        std::string root;
        std::uint64_t leaves_length = 0;
    };

    /// Writes the entry being extended to the index file.
    void close_entry();
    /// Builds the directories from the index file: all in the root when it fits in the first
    /// 16 KiB, else leaves written to `leaves` a leaf at a time.
    [[nodiscard]] directories write_directories(temp_file& leaves);

    /// Tiles up to this size are looked up by content: repeats such as empty sea or full land are
    /// small, and remembering every large tile's hash would make memory grow with the tiles.
    static constexpr std::size_t dedup_limit = 1024;

    std::string m_path;
    std::string m_temp_path; ///< the archive being assembled
    temp_file m_data;        ///< the tile data, in the order they come
    temp_file m_index;       ///< the directory entries, 24 bytes each, in tile-id order
    std::uint64_t m_data_size = 0;
    std::uint64_t m_addressed = 0;
    std::uint64_t m_entries = 0;
    std::uint64_t m_contents = 0;
    std::uint8_t m_min_zoom = 255;
    std::uint8_t m_max_zoom = 0;
    std::optional<entry> m_open; ///< the last entry, which a repeat of its tile extends
    hash128 m_last_hash{};
    std::unordered_map<hash128, stored, hash_of_hash> m_stored;
    bool m_finished = false;
};

} // namespace kachel::pmtiles
