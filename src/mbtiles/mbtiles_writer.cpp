#include "mbtiles/mbtiles_writer.hpp"

#include "core/error.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <array>

namespace kachel::mbtiles {

namespace {

/// The tables of a new file in each schema, as Martin's `mbtiles` tool makes them.
std::string_view tables_sql(schema s) {
    switch (s) {
    case schema::flat_with_hash:
        return "CREATE TABLE tiles_with_hash (zoom_level INTEGER NOT NULL, tile_column INTEGER NOT NULL, "
               "tile_row INTEGER NOT NULL, tile_data BLOB, tile_hash TEXT, "
               "PRIMARY KEY (zoom_level, tile_column, tile_row));\n"
               "CREATE VIEW tiles AS SELECT zoom_level, tile_column, tile_row, tile_data FROM "
               "tiles_with_hash;\n";
    case schema::normalized:
        return "CREATE TABLE map (zoom_level INTEGER NOT NULL, tile_column INTEGER NOT NULL, "
               "tile_row INTEGER NOT NULL, tile_id TEXT, PRIMARY KEY (zoom_level, tile_column, tile_row));\n"
               "CREATE TABLE images (tile_data BLOB, tile_id TEXT NOT NULL PRIMARY KEY);\n"
               "CREATE VIEW tiles AS SELECT map.zoom_level AS zoom_level, map.tile_column AS tile_column, "
               "map.tile_row AS tile_row, images.tile_data AS tile_data "
               "FROM map LEFT JOIN images ON images.tile_id = map.tile_id;\n"
               "CREATE VIEW tiles_with_hash AS SELECT map.zoom_level AS zoom_level, map.tile_column AS "
               "tile_column, "
               "map.tile_row AS tile_row, images.tile_data AS tile_data, images.tile_id AS tile_hash "
               "FROM map LEFT JOIN images ON images.tile_id = map.tile_id;\n";
    case schema::flat:
    case schema::tiles_shallow:
        break;
    }
    return "CREATE TABLE tiles (zoom_level INTEGER NOT NULL, tile_column INTEGER NOT NULL, "
           "tile_row INTEGER NOT NULL, tile_data BLOB, PRIMARY KEY (zoom_level, tile_column, tile_row));\n";
}

std::string_view insert_verb(on_duplicate mode) {
    switch (mode) {
    case on_duplicate::override:
        return "INSERT OR REPLACE";
    case on_duplicate::ignore:
        return "INSERT OR IGNORE";
    case on_duplicate::abort:
        break;
    }
    return "INSERT";
}

std::int64_t tms_row(tile_coord c) noexcept {
    return (std::int64_t{1} << c.z) - 1 - std::int64_t{c.y};
}

/// An MD5 computation (OpenSSL's), fed in parts.
class md5 {
  public:
    md5() : m_ctx(EVP_MD_CTX_new()) {
        if (m_ctx == nullptr || EVP_DigestInit_ex(m_ctx.get(), EVP_md5(), nullptr) != 1) {
            throw error{"OpenSSL cannot compute MD5 hashes here"};
        }
    }
    void add(std::string_view bytes) { EVP_DigestUpdate(m_ctx.get(), bytes.data(), bytes.size()); }
    std::string hex() {
        std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
        unsigned int size = 0;
        EVP_DigestFinal_ex(m_ctx.get(), digest.data(), &size);
        std::string out;
        out.reserve(std::size_t{2} * size);
        for (unsigned int i = 0; i < size; ++i) {
            out += fmt::format("{:02X}", digest[i]);
        }
        return out;
    }

  private:
    c_handle<EVP_MD_CTX, EVP_MD_CTX_free> m_ctx;
};

} // namespace

std::string md5_hex(std::string_view bytes) {
    md5 h;
    h.add(bytes);
    return h.hex();
}

std::string agg_tiles_hash(sqlite_db const& db) {
    md5 h;
    sqlite_stmt rows{db, "SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles "
                         "ORDER BY zoom_level, tile_column, tile_row"};
    while (rows.step()) {
        for (int column = 0; column < 3; ++column) {
            h.add(fmt::format("{}", rows.integer(column)));
        }
        h.add(rows.bytes(3));
    }
    return h.hex();
}

mbtiles_writer::mbtiles_writer(std::string path, schema fresh_schema, on_duplicate mode)
    : m_path(std::move(path)), m_db([&] {
          try {
              return sqlite_db::writable(m_path);
          } catch (source_error const& e) {
              throw source_error{fmt_error("Cannot write the MBTiles file {}: {}; choose a path in a "
                                           "directory you can write to",
                                           m_path, e.what())};
          }
      }()),
      m_mode(mode) {
    auto const fail = [this](std::string_view what) {
        return source_error{fmt_error("Cannot write into {}: {}", m_path, what)};
    };
    std::set<std::string, std::less<>> names;
    try {
        // Consistent after a crash (the rollback journal); each commit reaches the disk's cache.
        m_db.exec("PRAGMA synchronous = NORMAL");
        names = relations(m_db);
    } catch (source_error const& e) {
        throw fail(fmt::format("{} (is it an SQLite file?)", e.what()));
    }
    if (names.empty()) {
        m_schema = fresh_schema;
        m_db.exec("BEGIN;\nCREATE TABLE metadata (name TEXT NOT NULL PRIMARY KEY, value TEXT);\n" +
                  std::string{tables_sql(m_schema)} + "COMMIT;");
    } else if (auto const found = schema_of(names); found && *found != schema::tiles_shallow) {
        m_schema = *found;
        if (!names.contains("metadata")) {
            m_db.exec("CREATE TABLE metadata (name TEXT NOT NULL PRIMARY KEY, value TEXT)");
        }
        sqlite_stmt any{m_db, "SELECT 1 FROM tiles LIMIT 1"};
        m_had_tiles = any.step();
    } else {
        throw fail(found ? "it uses Planetiler's tiles_shallow schema, which kachel-cp does not write; "
                           "copy into a new file"
                         : "it is an SQLite file with no MBTiles tables; give a new path or an MBTiles file");
    }
    auto const verb = insert_verb(mode);
    switch (m_schema) {
    case schema::flat_with_hash:
        m_insert.emplace(m_db, fmt::format("{} INTO tiles_with_hash (zoom_level, tile_column, tile_row, "
                                           "tile_data, tile_hash) VALUES (?1, ?2, ?3, ?4, ?5)",
                                           verb));
        break;
    case schema::normalized:
        m_insert.emplace(
            m_db,
            fmt::format("{} INTO map (zoom_level, tile_column, tile_row, tile_id) VALUES (?1, ?2, ?3, ?5)",
                        verb));
        m_insert_image.emplace(m_db, "INSERT OR IGNORE INTO images (tile_data, tile_id) VALUES (?4, ?5)");
        break;
    case schema::flat:
    case schema::tiles_shallow:
        m_insert.emplace(
            m_db, fmt::format(
                      "{} INTO tiles (zoom_level, tile_column, tile_row, tile_data) VALUES (?1, ?2, ?3, ?4)",
                      verb));
        break;
    }
    m_has.emplace(m_db, "SELECT 1 FROM tiles WHERE zoom_level = ?1 AND tile_column = ?2 AND tile_row = ?3");
}

void mbtiles_writer::begin() {
    if (!m_in_transaction) {
        m_db.exec("BEGIN");
        m_in_transaction = true;
    }
}

bool mbtiles_writer::has(tile_coord coord) {
    m_has->bind(1, std::int64_t{coord.z});
    m_has->bind(2, std::int64_t{coord.x});
    m_has->bind(3, tms_row(coord));
    bool const found = m_has->step();
    m_has->reset();
    return found;
}

void mbtiles_writer::add(tile_coord coord, std::string_view bytes) {
    begin();
    auto& insert = *m_insert;
    insert.bind(1, std::int64_t{coord.z});
    insert.bind(2, std::int64_t{coord.x});
    insert.bind(3, tms_row(coord));
    if (m_schema == schema::normalized) {
        auto const hash = md5_hex(bytes);
        m_insert_image->bind(4, bytes, true);
        m_insert_image->bind(5, hash);
        m_insert_image->run();
        if (sqlite3_changes(m_db.get()) == 0) {
            ++m_duplicates; // the image was there: this tile points at it
        }
        insert.bind(5, hash);
    } else {
        insert.bind(4, bytes, true);
        if (m_schema == schema::flat_with_hash) {
            insert.bind(5, md5_hex(bytes));
        }
    }
    try {
        insert.run();
    } catch (source_error const& e) {
        if (m_mode == on_duplicate::abort) {
            throw source_error{fmt_error("Tile {}/{}/{} is already in {} ({}); run again with --on-duplicate "
                                         "ignore to keep the file's tiles, or override to replace them",
                                         coord.z, coord.x, coord.y, m_path, e.what())};
        }
        throw source_error{
            fmt_error("Cannot write tile {}/{}/{} into {}: {}", coord.z, coord.x, coord.y, m_path, e.what())};
    }
}

void mbtiles_writer::set_metadata(std::vector<std::pair<std::string, std::string>> const& rows) {
    begin();
    sqlite_stmt remove{m_db, "DELETE FROM metadata WHERE name = ?1"};
    sqlite_stmt insert{m_db, "INSERT INTO metadata (name, value) VALUES (?1, ?2)"};
    for (auto const& [name, value] : rows) {
        remove.bind(1, name);
        remove.run();
        insert.bind(1, name);
        insert.bind(2, value);
        insert.run();
    }
}

void mbtiles_writer::remove_metadata(std::string const& name) {
    begin();
    sqlite_stmt remove{m_db, "DELETE FROM metadata WHERE name = ?1"};
    remove.bind(1, name);
    remove.run();
}

std::optional<std::string> mbtiles_writer::metadata(std::string const& name) {
    sqlite_stmt get{m_db, "SELECT value FROM metadata WHERE name = ?1"};
    get.bind(1, name);
    if (get.step() && !get.is_null(0)) {
        return std::string{get.bytes(0)};
    }
    return std::nullopt;
}

void mbtiles_writer::commit() {
    if (m_in_transaction) {
        m_db.exec("COMMIT");
        m_in_transaction = false;
    }
}

std::string mbtiles_writer::agg_tiles_hash() {
    commit();
    return mbtiles::agg_tiles_hash(m_db);
}

} // namespace kachel::mbtiles
