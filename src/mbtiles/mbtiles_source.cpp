#include "mbtiles/mbtiles_source.hpp"

#include "core/error.hpp"
#include "core/mapped_file.hpp"
#include "core/text.hpp"
#include "mbtiles/mapped_table.hpp"
#include "mbtiles/nowait_vfs.hpp"
#include "mbtiles/sqlite.hpp"
#include "tiles/blocking_read.hpp"
#include "tiles/etag.hpp"
#include "tiles/tile_format.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <array>
#include <charconv>
#include <limits>
#include <set>

namespace kachel::mbtiles {

namespace asio = boost::asio;

namespace {

/// The statement that reads one tile (`?1` zoom, `?2` column, `?3` TMS row), for `kind`: the
/// `tiles` table or view when the file has one, else a join of the schema's tables.
std::string tile_sql(schema kind, bool has_tiles) {
    constexpr std::string_view where = "zoom_level = ?1 AND tile_column = ?2 AND tile_row = ?3";
    if (has_tiles) {
        return fmt::format("SELECT tile_data FROM tiles WHERE {}", where);
    }
    switch (kind) {
    case schema::normalized:
        return fmt::format(
            "SELECT images.tile_data FROM map JOIN images ON images.tile_id = map.tile_id WHERE "
            "map.{}",
            where);
    case schema::tiles_shallow:
        return fmt::format("SELECT tiles_data.tile_data FROM tiles_shallow JOIN tiles_data ON "
                           "tiles_data.tile_data_id = tiles_shallow.tile_data_id WHERE tiles_shallow.{}",
                           where);
    case schema::flat_with_hash:
        return fmt::format("SELECT tile_data FROM tiles_with_hash WHERE {}", where);
    case schema::flat:
        break;
    }
    return fmt::format("SELECT tile_data FROM tiles WHERE {}", where);
}

/// Where `kind` keeps its tile bytes, for reading them as blobs: the table, and the statement
/// giving the rowid of a tile's row in it (parameters as tile_sql's).
std::pair<std::string, std::string> blob_place(schema kind) {
    constexpr std::string_view where = "zoom_level = ?1 AND tile_column = ?2 AND tile_row = ?3";
    switch (kind) {
    case schema::normalized:
        return {"images", fmt::format("SELECT images.rowid FROM map JOIN images ON images.tile_id = "
                                      "map.tile_id WHERE map.{}",
                                      where)};
    case schema::tiles_shallow:
        return {"tiles_data",
                fmt::format("SELECT tiles_data.rowid FROM tiles_shallow JOIN tiles_data ON "
                            "tiles_data.tile_data_id = tiles_shallow.tile_data_id WHERE tiles_shallow.{}",
                            where)};
    case schema::flat_with_hash:
        return {"tiles_with_hash", fmt::format("SELECT rowid FROM tiles_with_hash WHERE {}", where)};
    case schema::flat:
        break;
    }
    return {"tiles", fmt::format("SELECT rowid FROM tiles WHERE {}", where)};
}

/// The tile bytes of `table` read in place (mapped_table), where SQLite's catalog tells where
/// they are: its b-tree's first page, and the place of `tile_data` in its records.
std::optional<mapped_table> in_place(sqlite_db const& db, std::string const& path, std::string const& table) {
    try {
        sqlite_stmt root{
            db,
            fmt::format("SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = '{}'", table)};
        if (!root.step() || root.integer(0) <= 0 ||
            root.integer(0) > std::numeric_limits<std::uint32_t>::max()) {
            return std::nullopt;
        }
        auto const root_page = static_cast<std::uint32_t>(root.integer(0));
        // cid, name, type, notnull, dflt_value, pk, hidden: a record holds every column in this
        // order, but generated ones (hidden 2 or 3).
        sqlite_stmt columns{db, fmt::format("PRAGMA table_xinfo('{}')", table)};
        std::optional<unsigned> column;
        for (unsigned i = 0; columns.step(); ++i) {
            constexpr int hidden = 6;
            if (columns.integer(hidden) != 0) {
                return std::nullopt;
            }
            if (columns.bytes(1) == "tile_data") {
                column = i;
            }
        }
        if (column) {
            return mapped_table::open(path, root_page, *column);
        }
    } catch (source_error const&) {
    }
    return std::nullopt;
}

/// The table holding the coordinates, for the zoom range and a sample tile: the schema's own
/// table, never a view joining it (a view would be scanned whole; the table's index answers).
std::string_view coordinate_table(schema kind) {
    switch (kind) {
    case schema::normalized:
        return "map";
    case schema::tiles_shallow:
        return "tiles_shallow";
    case schema::flat_with_hash:
        return "tiles_with_hash";
    case schema::flat:
        break;
    }
    return "tiles";
}

std::optional<double> to_number(std::string_view text) {
    text = trim(text);
    double value = 0;
    auto const [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size()) {
        return std::nullopt;
    }
    return value;
}

/// `a,b,c[,d]` as numbers; nullopt unless there are exactly `count`.
std::optional<std::vector<double>> numbers(std::string_view text, std::size_t count) {
    std::vector<double> out;
    while (true) {
        auto const comma = text.find(',');
        auto const n = to_number(text.substr(0, comma));
        if (!n) {
            return std::nullopt;
        }
        out.push_back(*n);
        if (comma == std::string_view::npos) {
            break;
        }
        text.remove_prefix(comma + 1);
    }
    if (out.size() != count) {
        return std::nullopt;
    }
    return out;
}

} // namespace

std::set<std::string, std::less<>> relations(sqlite_db const& db) {
    std::set<std::string, std::less<>> out;
    sqlite_stmt stmt{db, "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')"};
    while (stmt.step()) {
        out.emplace(stmt.bytes(0));
    }
    return out;
}

std::optional<schema> schema_of(std::set<std::string, std::less<>> const& names) {
    if (names.contains("map") && names.contains("images")) {
        return schema::normalized;
    }
    if (names.contains("tiles_shallow") && names.contains("tiles_data")) {
        return schema::tiles_shallow;
    }
    if (names.contains("tiles_with_hash")) {
        return schema::flat_with_hash;
    }
    if (names.contains("tiles")) {
        return schema::flat;
    }
    return std::nullopt;
}

std::string_view schema_name(schema s) noexcept {
    switch (s) {
    case schema::flat:
        return "flat";
    case schema::flat_with_hash:
        return "flat-with-hash";
    case schema::normalized:
        return "normalized";
    case schema::tiles_shallow:
        return "tiles_shallow";
    }
    return "flat";
}

nlohmann::json metadata_tilejson(std::vector<std::pair<std::string, std::string>> const& rows,
                                 std::optional<std::pair<int, int>> zooms, std::string_view file) {
    nlohmann::json out{{"tilejson", "3.0.0"}};
    auto const unusable = [file](std::string_view name, std::string_view value, std::string_view expected) {
        spdlog::warn("{}: metadata {} = '{}' is not {}; left out of the TileJSON", file, name, value,
                     expected);
    };
    for (auto const& [name, value] : rows) {
        // name, version, description, attribution, legend and template are TileJSON strings, as
        // is any other row but the few below.
        if (name == "bounds") {
            if (auto const b = numbers(value, 4)) {
                out["bounds"] = *b;
            } else {
                unusable(name, value, "west,south,east,north");
            }
        } else if (name == "center") {
            if (auto const c = numbers(value, 3)) {
                out["center"] = *c;
            } else if (auto const c2 = numbers(value, 2)) {
                out["center"] = *c2;
            } else {
                unusable(name, value, "longitude,latitude,zoom");
            }
        } else if (name == "minzoom" || name == "maxzoom") {
            auto const z = to_number(value);
            if (z && *z >= 0 && *z <= 30 && *z == static_cast<int>(*z)) {
                out[name] = static_cast<int>(*z);
            } else {
                unusable(name, value, "a zoom from 0 to 30");
            }
        } else if (name == "json") {
            auto const doc = nlohmann::json::parse(value, nullptr, false);
            if (doc.is_object() && doc.contains("vector_layers") && doc["vector_layers"].is_array()) {
                out["vector_layers"] = doc["vector_layers"];
            } else if (!doc.is_object()) {
                unusable(name, value.substr(0, 40), "a JSON object");
            }
        } else if (name != "scheme") {
            out[name] = value;
        }
    }
    if (zooms) {
        // The tiles themselves say which zooms there are.
        for (auto const& [key, actual] :
             {std::pair{"minzoom", zooms->first}, std::pair{"maxzoom", zooms->second}}) {
            if (out.contains(key) && out[key] != actual) {
                spdlog::warn("{}: metadata {} is {}, but the tiles say {}; serving {}", file, key,
                             out[key].dump(), actual, actual);
            }
            out[key] = actual;
        }
    }
    return out;
}

namespace {

/// Binds `coord` to a statement's `?1` zoom, `?2` column and `?3` row; TMS rows count from the
/// south.
void bind_tile(sqlite_stmt& stmt, tile_coord coord) {
    stmt.bind(1, coord.z);
    stmt.bind(2, coord.x);
    stmt.bind(3, (std::int64_t{1} << coord.z) - 1 - static_cast<std::int64_t>(coord.y));
}

/// A number of its own for each tile: the tiles of the zooms below, then the row and column.
std::uint64_t memo_key(tile_coord coord) noexcept {
    return ((std::uint64_t{1} << (2 * coord.z)) - 1) / 3 + (std::uint64_t{coord.y} << coord.z) + coord.x;
}

} // namespace

struct mbtiles_source::reader {
    sqlite_db db;
    sqlite_stmt tile;
    std::optional<sqlite_stmt> locate;       ///< the rowid of a tile's bytes (an immutable file)
    std::optional<sqlite_blob_reader> blobs; ///< with `locate`

    explicit reader(mbtiles_source const& source)
        : db(source.m_path, source.m_immutable), tile(db, source.m_tile_sql) {
        if (!source.m_locate_sql.empty()) {
            locate.emplace(db, source.m_locate_sql);
            blobs.emplace(db, source.m_blob_table, "tile_data");
        }
    }
};

mbtiles_source::mbtiles_source(std::string id, std::string path, asio::any_io_executor blocking)
    : m_id(std::move(id)), m_cache_name(tiles::instance_name(m_id)), m_path(std::move(path)),
      m_blocking(std::move(blocking)), m_immutable(nothing_can_write(m_path)) {
    auto const fail = [this](std::string_view what, std::string_view fix) {
        return source_error{fmt_error("MBTiles file {} (source {}): {}; {}", m_path, m_id, what, fix)};
    };
    std::optional<sqlite_db> db;
    std::set<std::string, std::less<>> names;
    try {
        db.emplace(m_path, m_immutable);
        names = relations(*db);
    } catch (source_error const& e) {
        throw fail(e.what(), "give the path of an MBTiles (SQLite) file kachel can read");
    }
    bool const has_tiles = names.contains("tiles");
    if (auto const found = schema_of(names)) {
        m_schema = *found;
    } else {
        throw fail(
            "it has no tiles table (neither tiles, tiles_with_hash, map with images, nor tiles_shallow)",
            "is it an MBTiles file?");
    }
    m_tile_sql = tile_sql(m_schema, has_tiles);
    if (m_immutable) {
        // The bytes read straight into a buffer of their own where the schema's table can be read
        // by rowid: a table (not a view) with rowids.
        auto [blob_table, locate_sql] = blob_place(m_schema);
        try {
            sqlite_stmt type{
                *db,
                fmt::format("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '{}'", blob_table)};
            if (type.step()) {
                sqlite_stmt const check{*db, locate_sql}; // a table without rowids fails to prepare
                m_table = in_place(*db, m_path, blob_table);
                m_blob_table = std::move(blob_table);
                m_locate_sql = std::move(locate_sql);
            }
        } catch (source_error const&) { // read with tile_sql
        }
    }
    auto const table = coordinate_table(m_schema);

    std::vector<std::pair<std::string, std::string>> rows;
    std::optional<std::pair<int, int>> zooms;
    std::string sample;
    try {
        if (names.contains("metadata")) {
            sqlite_stmt meta{*db,
                             "SELECT name, value FROM metadata WHERE name IS NOT NULL AND value IS NOT NULL"};
            while (meta.step()) {
                rows.emplace_back(meta.bytes(0), meta.bytes(1));
            }
        } else {
            spdlog::warn("MBTiles file {} has no metadata table: its TileJSON has only what the tiles tell",
                         m_path);
        }
        // Two subqueries: SQLite answers a lone min() or max() from the index, both at once by a scan.
        sqlite_stmt range{
            *db, fmt::format("SELECT (SELECT min(zoom_level) FROM {0}), (SELECT max(zoom_level) FROM {0})",
                             table)};
        if (range.step() && !range.is_null(0)) {
            zooms = std::pair{static_cast<int>(range.integer(0)), static_cast<int>(range.integer(1))};
        }
        sqlite_stmt first{*db,
                          fmt::format("SELECT zoom_level, tile_column, tile_row FROM {} LIMIT 1", table)};
        if (first.step()) {
            sqlite_stmt tile{*db, m_tile_sql};
            tile.bind(1, first.integer(0));
            tile.bind(2, first.integer(1));
            tile.bind(3, first.integer(2));
            if (tile.step()) {
                sample = std::string{tile.bytes(0)};
            }
        }
    } catch (source_error const& e) {
        throw fail(e.what(),
                   "check that the file is a complete MBTiles file (sqlite3 FILE 'PRAGMA integrity_check')");
    }
    m_tilejson = metadata_tilejson(rows, zooms, m_path);
    m_zooms = tiles::zooms_of(m_tilejson);

    // The format: the metadata's, else the sample tile's; gzip when the sample is compressed.
    std::string_view type;
    auto const format = m_tilejson.find("format");
    if (format != m_tilejson.end() && format->is_string()) {
        if (auto const t = tiles::format_tile_type(format->get_ref<std::string const&>())) {
            type = *t;
        }
    }
    if (tiles::is_gzip(sample)) {
        m_stored = tiles::encoding::gzip;
    }
    if (type.empty()) {
        std::string plain;
        try {
            plain = tiles::is_gzip(sample) || tiles::is_zlib(sample)
                        ? tiles::decompress(sample, tiles::encoding::gzip)
                        : sample;
        } catch (std::exception const& e) {
            throw fail(fmt::format("a tile does not inflate ({})", e.what()), "the file is damaged");
        }
        type = sample.empty() ? tiles::mvt_type : tiles::detect_tile_type(plain);
    }
    m_content_type = type;
    m_idle.push_back(std::make_unique<reader>(*this));
    spdlog::info("Publishing MBTiles file {} ({} schema, {}{}{}) as source '{}'", m_path,
                 schema_name(m_schema), m_content_type,
                 m_stored == tiles::encoding::gzip ? ", stored gzip-compressed" : "",
                 !m_immutable ? ""
                 : m_table    ? ", read as immutable: nothing can write it; tiles sent from its pages"
                              : ", read as immutable: nothing can write it",
                 m_id);
}

mbtiles_source::~mbtiles_source() = default;

std::unique_ptr<mbtiles_source::reader> mbtiles_source::acquire(bool open) const {
    {
        std::lock_guard const lock{m_mutex};
        if (!m_idle.empty()) {
            auto r = std::move(m_idle.back());
            m_idle.pop_back();
            return r;
        }
    }
    return open ? std::make_unique<reader>(*this) : nullptr;
}

void mbtiles_source::release(std::unique_ptr<reader> r) const {
    std::lock_guard const lock{m_mutex};
    m_idle.push_back(std::move(r));
}

tiles::tile_result mbtiles_source::read(tile_coord coord) const {
    std::string failure;
    try {
        auto r = acquire(true);
        if (r->locate) {
            if (auto blob = read_blob(*r, coord)) {
                release(std::move(r));
                return std::move(*blob);
            }
        }
        auto& stmt = r->tile;
        bind_tile(stmt, coord);
        tiles::tile_result out;
        if (stmt.step() && !stmt.is_null(0)) {
            out.data = std::string{stmt.bytes(0)};
            // A file nothing can write gives the same bytes for a tile every time: hashed once.
            if (m_immutable && !tiles::is_gzip(out.data) && !tiles::is_zlib(out.data)) {
                out.etag = m_etags.get(memo_key(coord), std::array{std::string_view{out.data}});
            }
        }
        stmt.reset();
        release(std::move(r));
        return out;
    } catch (source_error const& e) {
        failure = e.what();
    }
    return tiles::tile_result::failed(tiles::tile_errc::internal,
                                      fmt::format("MBTiles file {}: reading tile {}/{}/{} failed: {}", m_path,
                                                  coord.z, coord.x, coord.y, failure));
}

std::optional<tiles::tile_result> mbtiles_source::read_blob(reader& r, tile_coord coord) const {
    auto& locate = *r.locate;
    bind_tile(locate, coord);
    bool const found = locate.step();
    auto const rowid = found ? locate.integer(0) : 0;
    locate.reset();
    tiles::tile_result out;
    if (!found) {
        return out; // no such tile
    }
    // Where the file keeps the bytes, else copied out by SQLite into a buffer of their own.
    std::vector<std::string_view> pieces;
    std::shared_ptr<void const> keeper;
    if (m_table && m_table->read(rowid, pieces)) {
        keeper = m_table->file();
    } else {
        auto value = r.blobs->read(rowid);
        if (!value) {
            return std::nullopt;
        }
        pieces.emplace_back(value->buffer.get(), value->size);
        keeper = std::move(value->buffer);
    }
    tiles::lent_bytes lent{std::move(pieces), std::move(keeper)};
    if (lent.size() > 0) {
        auto const front = lent.pieces().front();
        if (!tiles::is_gzip(front) && !tiles::is_zlib(front)) { // (a compressed tile's ETag is its content's)
            out.etag = m_etags.get(memo_key(coord), lent.pieces());
        }
        out.lent = std::move(lent);
    }
    return out;
}

std::optional<tiles::tile_result> mbtiles_source::read_at_hand(tile_coord coord) const {
    // Opening a connection reads the file: only one already open will do.
    auto r = m_locate_sql.empty() ? nullptr : acquire(false);
    if (!r) {
        return std::nullopt;
    }
    std::optional<tiles::tile_result> out;
    {
        nowait_scope const scope;
        try {
            out = read_blob(*r, coord);
        } catch (source_error const&) { // refused, or a failure the pool reports
        }
        if (scope.refused()) {
            out.reset();
        }
    }
    r->locate->reset(); // (after a step that failed)
    release(std::move(r));
    return out;
}

asio::awaitable<tiles::tile_result> mbtiles_source::async_get_tile(tile_coord coord,
                                                                   std::string const& /*query*/) const {
    if (auto at_hand = read_at_hand(coord)) {
        co_return std::move(*at_hand);
    }
    co_return co_await tiles::read_blocking(m_blocking, [this, coord] { return read(coord); });
}

} // namespace kachel::mbtiles
