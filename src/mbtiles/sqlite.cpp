#include "mbtiles/sqlite.hpp"

#include "core/error.hpp"

#include <fmt/format.h>

namespace kachel::mbtiles {

sqlite_db::sqlite_db(std::string const& path) {
    sqlite3* db = nullptr;
    int const rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
    m_db.reset(db);
    if (rc != SQLITE_OK) {
        throw source_error{
            fmt::format("cannot open {}: {}", path, db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc))};
    }
    // A reader waits a little for a writer's lock instead of failing at once.
    sqlite3_busy_timeout(db, 1000);
}

sqlite_stmt::sqlite_stmt(sqlite_db const& db, std::string_view sql) : m_db(db.get()) {
    sqlite3_stmt* stmt = nullptr;
    int const rc = sqlite3_prepare_v3(m_db, sql.data(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    m_stmt.reset(stmt);
    if (rc != SQLITE_OK) {
        throw source_error{sqlite3_errmsg(m_db)};
    }
}

void sqlite_stmt::bind(int index, std::int64_t value) {
    sqlite3_bind_int64(m_stmt.get(), index, value);
}

bool sqlite_stmt::step() {
    int const rc = sqlite3_step(m_stmt.get());
    if (rc == SQLITE_ROW) {
        return true;
    }
    if (rc == SQLITE_DONE) {
        return false;
    }
    throw source_error{sqlite3_errmsg(m_db)};
}

void sqlite_stmt::reset() noexcept {
    sqlite3_reset(m_stmt.get());
}

bool sqlite_stmt::is_null(int column) const noexcept {
    return sqlite3_column_type(m_stmt.get(), column) == SQLITE_NULL;
}

std::int64_t sqlite_stmt::integer(int column) const noexcept {
    return sqlite3_column_int64(m_stmt.get(), column);
}

std::string_view sqlite_stmt::bytes(int column) const noexcept {
    // The pointer first, then the size (SQLite's documented order).
    auto const* data = static_cast<char const*>(sqlite3_column_blob(m_stmt.get(), column));
    auto const size = static_cast<std::size_t>(sqlite3_column_bytes(m_stmt.get(), column));
    return data == nullptr ? std::string_view{} : std::string_view{data, size};
}

} // namespace kachel::mbtiles
