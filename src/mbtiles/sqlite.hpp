#pragma once

#include "core/c_handle.hpp"

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace kachel::mbtiles {

/// A read-only SQLite database, used by one thread at a time.
class sqlite_db {
  public:
    /// Opens `path` read-only (never creating it). `immutable`, only for a file nothing can
    /// change (nothing_can_write): SQLite takes no locks, keeps its pages between reads and reads
    /// them from a mapping of the file, through nowait_vfs (so a nowait_scope can read it).
    /// \throws source_error naming the path and SQLite's message
    explicit sqlite_db(std::string const& path, bool immutable = false);

    /// Opens `path` for reading and writing, creating it when it does not exist.
    /// \throws source_error naming the path and SQLite's message
    [[nodiscard]] static sqlite_db writable(std::string const& path);

    /// Runs `sql` (statements without results). \throws source_error with SQLite's message
    void exec(std::string const& sql) const;

    [[nodiscard]] sqlite3* get() const noexcept { return m_db.get(); }

  private:
    sqlite_db() = default;
    c_handle<sqlite3, sqlite3_close_v2> m_db;
};

/// A prepared statement on a sqlite_db that outlives it.
class sqlite_stmt {
  public:
    /// \throws source_error with SQLite's message
    sqlite_stmt(sqlite_db const& db, std::string_view sql);

    /// Binds `value` to parameter `index` (1-based).
    void bind(int index, std::int64_t value);
    /// Binds `value` as a text, or with `blob` as a blob; SQLite copies it.
    void bind(int index, std::string_view value, bool blob = false);

    /// Steps until done. \throws source_error with SQLite's message (a constraint too)
    void run();

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

/// Reads whole values of one blob column by rowid, straight from the file's pages into a buffer
/// made for them: no copy by SQLite in between. The handle is kept between reads, so use it only
/// on a file opened immutable (on another it would hold a read transaction open).
class sqlite_blob_reader {
  public:
    sqlite_blob_reader(sqlite_db const& db, std::string table, std::string column) noexcept
        : m_db(db.get()), m_table(std::move(table)), m_column(std::move(column)) {}

    /// A value read whole: its bytes, in a buffer of their own.
    struct value {
        std::shared_ptr<char[]> buffer;
        std::size_t size = 0;
    };
    /// The value at `rowid`, or nothing when it cannot be read this way (a null or a text, a
    /// table without rowids): then read it with a statement.
    [[nodiscard]] std::optional<value> read(std::int64_t rowid);

  private:
    sqlite3* m_db;
    std::string m_table;
    std::string m_column;
    c_handle<sqlite3_blob, sqlite3_blob_close> m_blob;
};

} // namespace kachel::mbtiles
