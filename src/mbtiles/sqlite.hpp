#pragma once

#include "core/c_handle.hpp"

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kachel::mbtiles {

/// A read-only SQLite database, used by one thread at a time.
class sqlite_db {
  public:
    /// Opens `path` read-only (never creating it).
    /// \throws source_error naming the path and SQLite's message
    explicit sqlite_db(std::string const& path);

    [[nodiscard]] sqlite3* get() const noexcept { return m_db.get(); }

  private:
    c_handle<sqlite3, sqlite3_close_v2> m_db;
};

/// A prepared statement on a sqlite_db that outlives it.
class sqlite_stmt {
  public:
    /// \throws source_error with SQLite's message
    sqlite_stmt(sqlite_db const& db, std::string_view sql);

    /// Binds `value` to parameter `index` (1-based).
    void bind(int index, std::int64_t value);

    /// Steps once: true when a row is there to read.
    /// \throws source_error with SQLite's message
    bool step();

    /// Makes the statement ready to run again (bindings kept).
    void reset() noexcept;

    [[nodiscard]] bool is_null(int column) const noexcept;
    [[nodiscard]] std::int64_t integer(int column) const noexcept;
    /// Text or blob bytes of `column`, valid until the next step or reset.
    [[nodiscard]] std::string_view bytes(int column) const noexcept;

  private:
    sqlite3* m_db;
    c_handle<sqlite3_stmt, sqlite3_finalize> m_stmt;
};

} // namespace kachel::mbtiles
