#pragma once

#include "mbtiles/mapped_table.hpp"
#include "mbtiles/sqlite.hpp"
#include "tiles/content_encoding.hpp"
#include "tiles/etag.hpp"
#include "tiles/tile_source.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <nlohmann/json.hpp>

#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace kachel::mbtiles {

/// How an MBTiles file lays out its tiles (Martin's names).
enum class schema {
    flat,           ///< a `tiles` table
    flat_with_hash, ///< a `tiles_with_hash` table (and a `tiles` view over it)
    normalized,     ///< `map` and `images` tables (and usually a `tiles` view joining them)
    tiles_shallow,  ///< Planetiler's `tiles_shallow` and `tiles_data` tables
};

/// The tables and views of an SQLite file, by name. \throws source_error from SQLite
[[nodiscard]] std::set<std::string, std::less<>> relations(sqlite_db const& db);

/// The schema a file's tables and views (`relations`) make, or nothing when they make none.
[[nodiscard]] std::optional<schema> schema_of(std::set<std::string, std::less<>> const& names);

/// `flat`, `flat-with-hash`, `normalized`, `tiles_shallow`.
[[nodiscard]] std::string_view schema_name(schema s) noexcept;

/// The TileJSON of an MBTiles file from its `metadata` rows (Martin's rules): `name`, `version`,
/// `bounds`, `center`, `minzoom`, `maxzoom`, `description`, `attribution`, `legend`, `template`
/// as TileJSON keys; `vector_layers` from the `json` row; `scheme` dropped; any other row kept as
/// a string. `zooms`: the lowest and highest zoom that hold tiles, which win over the metadata.
/// Values that do not parse are left out with a warning naming `file`.
[[nodiscard]] nlohmann::json metadata_tilejson(std::vector<std::pair<std::string, std::string>> const& rows,
                                               std::optional<std::pair<int, int>> zooms,
                                               std::string_view file);

/// An MBTiles file served as a source. Tiles are read through SQLite on `blocking` (a thread
/// pool), so a slow disk never stalls an event loop; each reading thread gets its own read-only
/// connection with the tile statement prepared once. A missing tile is an empty tile (204). A file
/// that nothing can write (a read-only mount, or no write permission for anyone) is opened
/// immutable: SQLite then takes no file locks and reads its pages from a mapping, and a tile
/// whose pages are all in memory is read on the requesting event loop, with no trip to the pool.
class mbtiles_source final : public tiles::tile_source {
  public:
    /// Opens `path` and reads its schema, metadata, zooms and tile format.
    /// \throws source_error naming the file, what is wrong and the fix
    mbtiles_source(std::string id, std::string path, boost::asio::any_io_executor blocking);
    ~mbtiles_source() override;
    mbtiles_source(mbtiles_source const&) = delete;
    mbtiles_source& operator=(mbtiles_source const&) = delete;

    [[nodiscard]] std::string const& id() const noexcept override { return m_id; }
    [[nodiscard]] std::string_view cache_name() const noexcept override { return m_cache_name; }
    [[nodiscard]] nlohmann::json const& tilejson() const noexcept override { return m_tilejson; }
    [[nodiscard]] std::string_view content_type() const noexcept override { return m_content_type; }
    [[nodiscard]] tiles::zoom_range zooms() const override { return m_zooms; }
    [[nodiscard]] boost::asio::awaitable<tiles::tile_result>
    async_get_tile(tile_coord coord, std::string const& query) const override;

    [[nodiscard]] std::string const& path() const noexcept { return m_path; }
    [[nodiscard]] schema layout() const noexcept { return m_schema; }
    /// How the tiles are stored: gzip for the usual vector archive, identity otherwise.
    [[nodiscard]] tiles::encoding stored_encoding() const noexcept { return m_stored; }

  private:
    struct reader;
    /// An idle reader, else a new one when `open` (which reads the file), else null.
    [[nodiscard]] std::unique_ptr<reader> acquire(bool open) const;
    void release(std::unique_ptr<reader> r) const;
    [[nodiscard]] tiles::tile_result read(tile_coord coord) const;
    /// The tile lent from the file's pages, or read as a blob into a buffer of its own; nothing
    /// to read it with the statement.
    [[nodiscard]] std::optional<tiles::tile_result> read_blob(reader& r, tile_coord coord) const;
    /// The tile read on the caller's thread when an immutable file's pages it needs are all in
    /// memory (nowait_scope), by a reader already open; otherwise nothing, and the pool reads it.
    [[nodiscard]] std::optional<tiles::tile_result> read_at_hand(tile_coord coord) const;

    std::string m_id;
    std::string m_cache_name; ///< a file replaced on disk is a new instance under the same id
    std::string m_path;
    boost::asio::any_io_executor m_blocking;
    /// Opened with SQLite's `immutable`: no locks, pages kept between reads (nothing_can_write).
    bool m_immutable = false;
    schema m_schema = schema::flat;
    std::string m_tile_sql;
    std::string m_blob_table; ///< where an immutable file's tile bytes are read as blobs, if they can be
    std::string m_locate_sql; ///< the rowid there of a tile's bytes
    /// The blob table read in place, where it can be (then tiles are lent from the file's pages).
    std::optional<mapped_table> m_table;
    nlohmann::json m_tilejson;
    std::string m_content_type;
    tiles::zoom_range m_zooms;
    tiles::encoding m_stored = tiles::encoding::identity;
    mutable tiles::etag_memo m_etags; ///< for an immutable file
    mutable std::mutex m_mutex;
    mutable std::vector<std::unique_ptr<reader>> m_idle;
};

} // namespace kachel::mbtiles
