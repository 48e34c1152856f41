#pragma once

#include "core/tile_coord.hpp"
#include "tiles/tile_ranges.hpp"

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace kachel::tiles {

/// The changes a database notified whose rows a read replica may not show yet: for each, the
/// source, the tiles it touches, and the primary's WAL position at which it is visible
/// (docs/operations.md, "Read replicas"). A tile read asks needed() for the position its replica
/// must have replayed; a change leaves once every replica has replayed it. Thread-safe; needed()
/// takes no lock while nothing is pending.
class change_horizon {
  public:
    /// The position of a change whose WAL position is not known yet: no replica is recent enough.
    static constexpr std::uint64_t unknown = UINT64_MAX;

    /// A change of `source` in `area`, its position unknown until settle(). Call before its
    /// tiles leave the cache, so a read that misses after that sees it. \returns its number.
    std::uint64_t add(std::string source, tile_area area);

    /// The changes added up to number `last` (included) whose position is unknown are visible at
    /// `position`.
    void settle(std::uint64_t last, std::uint64_t position);

    /// The WAL position a replica must have replayed to serve tile `coord` of `source`: the
    /// highest of the pending changes touching it; 0 when none does. Changes at or below
    /// `replayed` (what every replica has replayed) leave first.
    [[nodiscard]] std::uint64_t needed(std::string_view source, tile_coord coord, std::uint64_t replayed);

    /// Forgets every change (the notification connection was lost: the cache was emptied of the
    /// sources, and the positions will not be settled).
    void clear();

    /// The number of the last change added (0 before the first).
    [[nodiscard]] std::uint64_t last() const;

    /// Changes pending now.
    [[nodiscard]] std::size_t size() const noexcept { return m_size.load(std::memory_order_relaxed); }

    /// More pending changes than this merge into one per source (its every tile, the highest
    /// position), so a replica that stays behind costs bounded memory.
    static constexpr std::size_t max_pending = 10'000;

  private:
    struct entry {
        std::uint64_t number;
        std::string source;
        tile_area area;
        std::uint64_t position;
    };
    void retire_locked(std::uint64_t replayed);
    void merge_locked();

    mutable std::mutex m_mutex;
    std::vector<entry> m_entries;
    std::uint64_t m_next = 1;
    std::atomic<std::size_t> m_size = 0;
};

} // namespace kachel::tiles
