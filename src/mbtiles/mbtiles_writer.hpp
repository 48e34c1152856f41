#pragma once

#include "core/tile_coord.hpp"
#include "mbtiles/mbtiles_source.hpp"
#include "mbtiles/sqlite.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kachel::mbtiles {

/// What happens to a tile already in the file (`--on-duplicate`).
enum class on_duplicate {
    override, ///< the new tile replaces it
    ignore,   ///< the file's tile stays (and a resumed copy does not make it again)
    abort,    ///< the copy stops with an error
};

/// The hex MD5 of `bytes`, upper-case, as Martin's `tile_hash`, `tile_id` and `agg_tiles_hash`.
[[nodiscard]] std::string md5_hex(std::string_view bytes);

/// Writes tiles into an MBTiles file, new or existing, in Martin's schemas (flat, flat-with-hash,
/// normalized: `tile_hash` and `tile_id` are upper-case hex MD5s). Tiles go in transactions of
/// many tiles (commit()); a file is consistent after every commit, whatever happens next
/// (SQLite's rollback journal). Used by one thread.
class mbtiles_writer {
  public:
    /// Opens `path`, creating it with `fresh_schema`'s tables when it has none; an existing file
    /// keeps its own schema. \throws source_error naming the file: not SQLite, tables of no
    /// known schema, or `tiles_shallow` (not written by kachel)
    mbtiles_writer(std::string path, schema fresh_schema, on_duplicate mode);

    [[nodiscard]] schema file_schema() const noexcept { return m_schema; }
    /// True when the file held tiles before this writer added any.
    [[nodiscard]] bool had_tiles() const noexcept { return m_had_tiles; }

    /// Normalized schema: tiles added whose bytes were already stored (as another tile's image).
    [[nodiscard]] std::uint64_t duplicates() const noexcept { return m_duplicates; }

    /// True when the file holds z/x/y (XYZ; stored with the row flipped).
    [[nodiscard]] bool has(tile_coord coord);

    /// Adds a tile (in the open transaction, begun when needed).
    /// \throws source_error naming the tile when it is already there and the mode is abort
    void add(tile_coord coord, std::string_view bytes);

    /// Sets metadata rows (replacing rows of the same name), in the open transaction.
    void set_metadata(std::vector<std::pair<std::string, std::string>> const& rows);
    /// Removes a metadata row.
    void remove_metadata(std::string const& name);
    /// The value of a metadata row.
    [[nodiscard]] std::optional<std::string> metadata(std::string const& name);

    /// Commits the open transaction, if any.
    void commit();

    /// Martin's `agg_tiles_hash` of the file's `tiles`: the MD5 of every row's zoom, column and
    /// row as decimal text and its bytes, in that order of rows.
    [[nodiscard]] std::string agg_tiles_hash();

  private:
    void begin();

    std::string m_path;
    sqlite_db m_db;
    schema m_schema = schema::flat;
    on_duplicate m_mode;
    bool m_had_tiles = false;
    std::uint64_t m_duplicates = 0;
    bool m_in_transaction = false;
    std::optional<sqlite_stmt> m_insert;
    std::optional<sqlite_stmt> m_insert_image;
    std::optional<sqlite_stmt> m_has;
};

/// Martin's `agg_tiles_hash` of the `tiles` table or view of `db`.
[[nodiscard]] std::string agg_tiles_hash(sqlite_db const& db);

} // namespace kachel::mbtiles
