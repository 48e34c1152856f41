#pragma once

#include <cstddef>

namespace kachel::mbtiles {

/// The name of an SQLite VFS for files nothing can write, opened immutable with a mapping
/// (`PRAGMA mmap_size`). It behaves as SQLite's own Unix VFS, except inside a nowait_scope on the
/// calling thread: there it reads only pages of the mapping that are in memory, and refuses
/// (an I/O error) any read that would wait for a disk. Registered on the first call.
[[nodiscard]] char const* nowait_vfs() noexcept;

/// While alive, reads through nowait_vfs on this thread never wait for a disk: a page not in
/// memory makes the statement or blob read fail, and refused() tells that this was the reason.
/// Then read again outside a scope, where waiting does no harm (a blocking pool).
class nowait_scope {
  public:
    nowait_scope() noexcept;
    ~nowait_scope();
    nowait_scope(nowait_scope const&) = delete;
    nowait_scope& operator=(nowait_scope const&) = delete;

    /// True when a read was refused since the scope began.
    [[nodiscard]] bool refused() const noexcept { return *m_refused; }

  private:
    bool const* m_refused; ///< this thread's flag
};

/// For a reader of a mapping other than SQLite's (mapped_table): true outside a nowait_scope;
/// inside one, true when the `amount` bytes at `start` are in memory, else false, and the scope
/// is refused. `likely` bytes from `start` on (at least `amount`) are checked first, in one
/// call: when they are all in memory, `likely` is returned, and the caller need not ask again
/// about those; otherwise `amount` alone decides.
[[nodiscard]] std::size_t bytes_at_hand(void const* start, std::size_t amount, std::size_t likely) noexcept;

} // namespace kachel::mbtiles
