#include "mbtiles/sqlite.hpp"

#include "core/error.hpp"
#include "mbtiles/nowait_vfs.hpp"

#include <fmt/format.h>

namespace kachel::mbtiles {

namespace {

/// `path` as an SQLite URI with `immutable=1`: the characters a URI gives a meaning escaped.
std::string immutable_uri(std::string const& path) {
    std::string out = path.starts_with('/') ? "file://" : "file:"; // an empty authority, then the path
    for (char const c : path) {
        if (c == '%' || c == '?' || c == '#') {
            out += fmt::format("%{:02X}", static_cast<unsigned char>(c));
        } else {
            out += c;
        }
    }
    return out + "?immutable=1";
}

} // namespace

sqlite_db::sqlite_db(std::string const& path, bool immutable) {
    sqlite3* db = nullptr;
    int const rc =
        immutable
            ? sqlite3_open_v2(immutable_uri(path).c_str(), &db,
                              SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI, nowait_vfs())
            : sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nullptr);
    m_db.reset(db);
    if (rc != SQLITE_OK) {
        throw source_error{
            fmt::format("cannot open {}: {}", path, db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc))};
    }
    // A reader waits a little for a writer's lock instead of failing at once.
    sqlite3_busy_timeout(db, 1000);
    if (immutable) {
        // Pages read from a mapping, not copied by a read() each: safe, as the file cannot shrink.
        // (SQLite caps the size at its compile-time maximum; a failure leaves plain reads.)
        sqlite3_exec(db, "PRAGMA mmap_size = 1099511627776", nullptr, nullptr, nullptr);
    }
}

sqlite_db sqlite_db::writable(std::string const& path) {
    sqlite_db out;
    sqlite3* db = nullptr;
    int const rc = sqlite3_open_v2(path.c_str(), &db,
                                   SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    out.m_db.reset(db);
    if (rc != SQLITE_OK) {
        throw source_error{
            fmt::format("cannot open {}: {}", path, db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc))};
    }
    sqlite3_busy_timeout(db, 5000);
    return out;
}

void sqlite_db::exec(std::string const& sql) const {
    char* message = nullptr;
    if (sqlite3_exec(m_db.get(), sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
        std::string text = message != nullptr ? message : sqlite3_errmsg(m_db.get());
        sqlite3_free(message);
        throw source_error{text};
    }
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

void sqlite_stmt::bind(int index, std::string_view value, bool blob) {
    auto const size = static_cast<int>(value.size());
    if (blob) {
        // A zero-length blob, not a null, for empty bytes.
        sqlite3_bind_blob(m_stmt.get(), index, value.empty() ? "" : value.data(), size, SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_text(m_stmt.get(), index, value.data(), size, SQLITE_TRANSIENT);
    }
}

void sqlite_stmt::run() {
    try {
        while (step()) {
        }
    } catch (...) {
        reset();
        throw;
    }
    reset();
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

std::optional<sqlite_blob_reader::value> sqlite_blob_reader::read(std::int64_t rowid) {
    if (m_blob && sqlite3_blob_reopen(m_blob.get(), rowid) != SQLITE_OK) {
        m_blob.reset(); // a failed reopen leaves the handle unusable
    }
    if (!m_blob) {
        sqlite3_blob* blob = nullptr;
        int const rc = sqlite3_blob_open(m_db, "main", m_table.c_str(), m_column.c_str(), rowid, 0, &blob);
        m_blob.reset(blob);
        if (rc != SQLITE_OK) {
            m_blob.reset();
            return std::nullopt;
        }
    }
    value out;
    auto const size = sqlite3_blob_bytes(m_blob.get());
    out.size = static_cast<std::size_t>(size);
    out.buffer = std::make_shared_for_overwrite<char[]>(out.size);
    if (size > 0 && sqlite3_blob_read(m_blob.get(), out.buffer.get(), size, 0) != SQLITE_OK) {
        m_blob.reset();
        return std::nullopt;
    }
    return out;
}

} // namespace kachel::mbtiles
