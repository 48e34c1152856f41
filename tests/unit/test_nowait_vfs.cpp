// Reads that never wait for a disk (mbtiles/nowait_vfs): inside a nowait_scope, an immutable
// SQLite file's pages are read only when in memory; a page the disk would have to give makes
// the read fail as refused, and the same read outside a scope succeeds.

#include "core/error.hpp"
#include "core/mapped_file.hpp"
#include "mbtiles/mapped_table.hpp"
#include "mbtiles/nowait_vfs.hpp"
#include "mbtiles/sqlite.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <random>

using namespace kachel;
using namespace kachel::mbtiles;
namespace fs = std::filesystem;

namespace {

/// A database with one blob of `size` random bytes at rowid 1, made read-only for everyone.
fs::path blob_database(std::string const& bytes) {
    auto const path = fs::current_path() / ("nowait-" + std::to_string(::getpid()) + ".db");
    fs::remove(path);
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    sqlite3_exec(db, "CREATE TABLE t (b BLOB)", nullptr, nullptr, nullptr);
    sqlite3_stmt* insert = nullptr;
    sqlite3_prepare_v2(db, "INSERT INTO t (rowid, b) VALUES (1, ?)", -1, &insert, nullptr);
    sqlite3_bind_blob(insert, 1, bytes.data(), static_cast<int>(bytes.size()), SQLITE_STATIC);
    EXPECT_EQ(sqlite3_step(insert), SQLITE_DONE);
    sqlite3_finalize(insert);
    sqlite3_close(db);
    fs::permissions(path, fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
    return path;
}

/// Drops the file's pages that no mapping holds from the page cache; true when none is left.
bool evict(fs::path const& path) {
    int const fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC); // NOLINT: POSIX
    if (fd < 0) {
        return false;
    }
    auto const size = static_cast<std::uint64_t>(fs::file_size(path));
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    auto const map = mapped_file::map(fd, size);
    ::close(fd);
    // The blob lies past the first pages (header and schema), which the connection may hold.
    return map && !map->resident(size / 2, 4096);
}

} // namespace

TEST(nowait_vfs, a_page_not_in_memory_is_refused_in_a_scope_and_read_outside_it) {
    std::string bytes(300 * 1024, '\0');
    std::mt19937 random{7};
    for (auto& c : bytes) {
        c = static_cast<char>(random());
    }
    auto const path = blob_database(bytes);
    sqlite_db const db{path.string(), true};
    sqlite_blob_reader reader{db, "t", "b"};
    ASSERT_TRUE(evict(path)) << "the blob's pages should have left the page cache";

    {
        nowait_scope const scope;
        EXPECT_FALSE(reader.read(1)) << "read from the disk inside a nowait scope";
        EXPECT_TRUE(scope.refused());
    }
    auto const value = reader.read(1); // outside: may wait, and reads
    ASSERT_TRUE(value);
    EXPECT_EQ(std::string_view(value->buffer.get(), value->size), bytes);
    {
        nowait_scope const scope;
        auto const again = reader.read(1); // its pages in memory now
        EXPECT_FALSE(scope.refused());
        ASSERT_TRUE(again);
        EXPECT_EQ(std::string_view(again->buffer.get(), again->size), bytes);
    }
    fs::permissions(path, fs::perms::owner_all);
    fs::remove(path);
}

TEST(nowait_vfs, a_statement_refused_in_a_scope_runs_again_outside_it) {
    std::string const bytes(200 * 1024, 'b');
    auto const path = blob_database(bytes);
    sqlite_db const db{path.string(), true};
    sqlite_stmt stmt{db, "SELECT b FROM t WHERE rowid = 1"};
    ASSERT_TRUE(evict(path));
    {
        nowait_scope const scope;
        EXPECT_THROW((void)stmt.step(), source_error);
        EXPECT_TRUE(scope.refused());
    }
    stmt.reset(); // the connection and the statement stay usable
    ASSERT_TRUE(stmt.step());
    EXPECT_EQ(stmt.bytes(0), bytes);
    stmt.reset();
    {
        nowait_scope const scope;
        EXPECT_FALSE(scope.refused()) << "a new scope starts with nothing refused";
        ASSERT_TRUE(stmt.step());
        EXPECT_EQ(stmt.bytes(0).size(), bytes.size());
        EXPECT_FALSE(scope.refused());
    }
    fs::permissions(path, fs::perms::owner_all);
    fs::remove(path);
}

TEST(nowait_vfs, a_blob_read_in_place_waits_for_no_page_in_a_scope) {
    std::string bytes(300 * 1024, '\0');
    std::mt19937 random{11};
    for (auto& c : bytes) {
        c = static_cast<char>(random());
    }
    auto const path = blob_database(bytes);
    auto const table = mapped_table::open(path.string(), 2, 0); // t is the first table: page 2
    ASSERT_TRUE(table);
    ASSERT_TRUE(evict(path));
    std::vector<std::string_view> pieces;
    {
        nowait_scope const scope;
        EXPECT_FALSE(table->read(1, pieces)) << "read from the disk inside a nowait scope";
        EXPECT_TRUE(scope.refused());
        EXPECT_TRUE(pieces.empty());
    }
    ASSERT_TRUE(table->read(1, pieces)); // outside: may wait, and reads
    std::string read;
    for (auto const piece : pieces) {
        read += piece;
    }
    EXPECT_EQ(read, bytes);
    {
        nowait_scope const scope;
        std::vector<std::string_view> again;
        EXPECT_TRUE(table->read(1, again)) << "its pages are in memory now";
        EXPECT_FALSE(scope.refused());
        EXPECT_EQ(again.size(), pieces.size());
    }
    fs::permissions(path, fs::perms::owner_all);
    fs::remove(path);
}
