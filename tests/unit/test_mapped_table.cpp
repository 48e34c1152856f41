// Blobs read in place from an SQLite file's pages (mbtiles/mapped_table), against files written
// by SQLite itself: every value comes back as SQLite reads it, whatever the page size, the
// reserved bytes, the value's size (in the cell, just spilling, over many overflow pages) and
// the b-tree's depth.

#include "mbtiles/mapped_table.hpp"
#include "mbtiles/nowait_vfs.hpp"
#include "mbtiles/sqlite.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>

using namespace kachel;
using namespace kachel::mbtiles;
namespace fs = std::filesystem;

namespace {

/// SQL run on `db`; fails the test when SQLite refuses it.
void run(sqlite3* db, std::string const& sql) {
    char* error = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error), SQLITE_OK)
        << (error ? error : "") << sql;
    sqlite3_free(error);
}

/// A path for a test database named after `name` and this process, with nothing there yet.
fs::path fresh_file(std::string const& name) {
    auto out = fs::current_path() / (name + "-" + std::to_string(::getpid()) + ".db");
    fs::remove(out);
    return out;
}

struct database {
    fs::path path;
    std::map<std::int64_t, std::string> values; ///< tile_data by rowid
};

/// A file of `page_size` pages (`reserved` bytes of each kept for extensions) with a table
/// `tiles` made as `create`, whose `tile_data` gets values of many sizes, from empty to
/// hundreds of KiB, at rowids from negative to large; read-only for everyone.
database write(std::string const& name, int page_size, int reserved, std::string const& create) {
    database out;
    out.path = fresh_file(name);
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(out.path.c_str(), &db), SQLITE_OK);
    if (reserved > 0) {
        EXPECT_EQ(sqlite3_file_control(db, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserved), SQLITE_OK);
    }
    run(db, "PRAGMA page_size = " + std::to_string(page_size));
    run(db, create);
    run(db, "BEGIN");
    sqlite3_stmt* insert = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, "INSERT INTO tiles (rowid, zoom_level, tile_data) VALUES (?, ?, ?)", -1,
                                 &insert, nullptr),
              SQLITE_OK);
    std::mt19937 random{static_cast<unsigned>(page_size + reserved)};
    auto const usable = page_size - reserved;
    // Sizes around where a payload starts to spill, and on to many overflow pages.
    std::vector<std::size_t> sizes{0, 1, 15, 16, 17, 100};
    for (int delta = -40; delta <= 8; delta += 4) {
        sizes.push_back(static_cast<std::size_t>(usable + delta));
    }
    for (int i = 0; i < 300; ++i) {
        sizes.push_back(random() % (i % 10 == 0 ? 300'000U : 3'000U));
    }
    std::int64_t rowid = -7;
    for (auto const size : sizes) {
        std::string bytes(size, '\0');
        for (auto& c : bytes) {
            c = static_cast<char>(random());
        }
        sqlite3_bind_int64(insert, 1, rowid);
        sqlite3_bind_int(insert, 2, static_cast<int>(random() % 20));
        sqlite3_bind_blob(insert, 3, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
        EXPECT_EQ(sqlite3_step(insert), SQLITE_DONE);
        sqlite3_reset(insert);
        out.values.emplace(rowid, std::move(bytes));
        rowid += rowid < 200 ? 3 : 1'000'003; // interior pages: keys of every width
    }
    sqlite3_finalize(insert);
    run(db, "COMMIT");
    sqlite3_close(db);
    fs::permissions(out.path, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
    return out;
}

/// The first page of `table`'s b-tree.
std::uint32_t root_page(fs::path const& path, std::string const& table) {
    sqlite_db const db{path.string(), true};
    sqlite_stmt stmt{db, "SELECT rootpage FROM sqlite_master WHERE name = '" + table + "'"};
    EXPECT_TRUE(stmt.step());
    return static_cast<std::uint32_t>(stmt.integer(0));
}

std::string joined(std::vector<std::string_view> const& pieces) {
    std::string out;
    for (auto const piece : pieces) {
        out += piece;
    }
    return out;
}

} // namespace

TEST(mapped_table, every_blob_comes_back_as_sqlite_wrote_it) {
    struct layout {
        int page_size;
        int reserved;
        std::string create;
        unsigned column;
    };
    std::vector<layout> const layouts{
        {512, 0,
         "CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB)", 3},
        {1024, 0, "CREATE TABLE tiles (zoom_level INTEGER, tile_data BLOB, tile_hash TEXT)", 1},
        {4096, 0,
         "CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB)", 3},
        {4096, 40,
         "CREATE TABLE tiles (tile_data_id INTEGER PRIMARY KEY, zoom_level INTEGER, tile_data BLOB)", 2},
        {65536, 0, "CREATE TABLE tiles (zoom_level INTEGER, tile_data BLOB)", 1},
    };
    for (auto const& l : layouts) {
        SCOPED_TRACE(testing::Message()
                     << "page size " << l.page_size << ", reserved " << l.reserved << ": " << l.create);
        auto const db = write("mapped-" + std::to_string(l.page_size), l.page_size, l.reserved, l.create);
        auto const table = mapped_table::open(db.path.string(), root_page(db.path, "tiles"), l.column);
        ASSERT_TRUE(table);
        std::size_t spread = 0;
        for (auto const& [rowid, bytes] : db.values) {
            std::vector<std::string_view> pieces{"kept"};
            ASSERT_TRUE(table->read(rowid, pieces)) << "rowid " << rowid << ", " << bytes.size() << " bytes";
            ASSERT_EQ(pieces.front(), "kept") << "appended";
            pieces.erase(pieces.begin());
            ASSERT_EQ(joined(pieces), bytes) << "rowid " << rowid;
            spread += pieces.size() > 1 ? 1 : 0;
            if (pieces.size() > 1) {
                EXPECT_GE(pieces.front().size(), 16U);
            }
        }
        EXPECT_GT(spread, 10U) << "values over overflow pages";
        std::vector<std::string_view> none;
        EXPECT_FALSE(table->read(-8, none));
        EXPECT_FALSE(table->read(4, none));
        EXPECT_FALSE(table->read(std::int64_t{1} << 62, none));
        EXPECT_TRUE(none.empty());
        fs::remove(db.path);
    }
}

TEST(mapped_table, what_is_not_a_blob_is_left_to_sqlite) {
    auto const path = fresh_file("mapped-values");
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    run(db, "CREATE TABLE tiles (zoom_level INTEGER, tile_data BLOB)");
    run(db, "INSERT INTO tiles (rowid, tile_data) VALUES (1, NULL), (2, 'text'), (3, 42), (4, x'0102')");
    run(db, "ALTER TABLE tiles ADD COLUMN later BLOB");
    sqlite3_close(db);
    auto const table = mapped_table::open(path.string(), root_page(path, "tiles"), 1);
    ASSERT_TRUE(table);
    std::vector<std::string_view> pieces;
    EXPECT_FALSE(table->read(1, pieces));
    EXPECT_FALSE(table->read(2, pieces));
    EXPECT_FALSE(table->read(3, pieces));
    EXPECT_TRUE(pieces.empty());
    ASSERT_TRUE(table->read(4, pieces));
    EXPECT_EQ(joined(pieces), "\x01\x02");
    // A column added after the rows were written is not in their records.
    auto const later = mapped_table::open(path.string(), root_page(path, "tiles"), 2);
    ASSERT_TRUE(later);
    pieces.clear();
    EXPECT_FALSE(later->read(4, pieces));
    fs::remove(path);
}

TEST(mapped_table, a_database_with_pages_in_its_wal_file_is_not_read_in_place) {
    auto const path = fresh_file("mapped-wal");
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    run(db, "PRAGMA journal_mode = WAL");
    run(db, "CREATE TABLE tiles (zoom_level INTEGER, tile_data BLOB)");
    run(db, "INSERT INTO tiles (rowid, tile_data) VALUES (1, x'0102')");
    ASSERT_GT(fs::file_size(fs::path{path.string() + "-wal"}), 0U);
    EXPECT_FALSE(mapped_table::open(path.string(), 2, 1)) << "the WAL file holds the table";
    sqlite3_close(db); // checkpoints, and removes the WAL file
    EXPECT_FALSE(fs::exists(fs::path{path.string() + "-wal"}));
    auto const table = mapped_table::open(path.string(), root_page(path, "tiles"), 1);
    ASSERT_TRUE(table);
    std::vector<std::string_view> pieces;
    ASSERT_TRUE(table->read(1, pieces));
    EXPECT_EQ(joined(pieces), "\x01\x02");
    fs::remove(path);
}

TEST(mapped_table, files_that_are_not_sqlite_are_not_read) {
    auto const path = fresh_file("mapped-not");
    {
        std::ofstream out{path};
        out << std::string(4096, 'x');
    }
    EXPECT_FALSE(mapped_table::open(path.string(), 2, 1));
    EXPECT_FALSE(mapped_table::open((path.string() + ".missing"), 2, 1));
    fs::remove(path);
}

TEST(mapped_table, a_damaged_overflow_chain_is_left_to_sqlite) {
    // One row: the table's page 2 holds its cell, pages 3 on its overflow chain. Those are
    // overwritten with 0xFF, so the chain's second link points far beyond the file.
    auto const path = fresh_file("mapped-damaged");
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    run(db, "PRAGMA page_size = 4096");
    run(db, "CREATE TABLE tiles (zoom_level INTEGER, tile_data BLOB)");
    run(db, "INSERT INTO tiles (rowid, tile_data) VALUES (1, zeroblob(40000))");
    sqlite3_close(db);
    ASSERT_EQ(root_page(path, "tiles"), 2U);
    {
        auto const table = mapped_table::open(path.string(), 2, 1);
        ASSERT_TRUE(table);
        std::vector<std::string_view> pieces;
        ASSERT_TRUE(table->read(1, pieces)) << "whole, it is read";
        EXPECT_EQ(joined(pieces), std::string(40'000, '\0'));
    }
    {
        std::fstream file{path, std::ios::in | std::ios::out | std::ios::binary};
        file.seekp(2 * 4096);
        file << std::string(fs::file_size(path) - 2 * 4096, '\xFF');
    }
    auto const table = mapped_table::open(path.string(), 2, 1);
    ASSERT_TRUE(table);
    std::vector<std::string_view> pieces;
    EXPECT_FALSE(table->read(1, pieces));
    EXPECT_TRUE(pieces.empty());
    fs::remove(path);
}
