#include "tiles/change_horizon.hpp"

#include <algorithm>
#include <map>

namespace kachel::tiles {

std::uint64_t change_horizon::add(std::string source, tile_area area) {
    std::lock_guard const lock{m_mutex};
    auto const number = m_next++;
    m_entries.push_back(entry{number, std::move(source), std::move(area), unknown});
    if (m_entries.size() > max_pending) {
        merge_locked();
    }
    m_size.store(m_entries.size(), std::memory_order_relaxed);
    return number;
}

void change_horizon::settle(std::uint64_t last, std::uint64_t position) {
    std::lock_guard const lock{m_mutex};
    // Settled in the order they came: the unknown ones are the last entries.
    for (std::size_t i = m_entries.size(); i-- > 0;) {
        auto& e = m_entries[i];
        if (e.number > last) {
            continue;
        }
        if (e.position != unknown) {
            break;
        }
        e.position = position;
    }
}

void change_horizon::retire_locked(std::uint64_t replayed) {
    std::erase_if(m_entries, [replayed](entry const& e) { return e.position <= replayed; });
    m_size.store(m_entries.size(), std::memory_order_relaxed);
}

void change_horizon::merge_locked() {
    std::map<std::string, entry> merged;
    for (auto& e : m_entries) {
        auto [it, fresh] = merged.try_emplace(e.source, entry{e.number, e.source, tile_area{}, e.position});
        if (!fresh) {
            it->second.number = std::max(it->second.number, e.number);
            it->second.position = std::max(it->second.position, e.position);
        }
    }
    m_entries.clear();
    for (auto& [source, e] : merged) {
        m_entries.push_back(std::move(e));
    }
    // As settle() expects: the changes whose position is unknown last.
    std::stable_partition(m_entries.begin(), m_entries.end(),
                          [](entry const& e) { return e.position != unknown; });
}

std::uint64_t change_horizon::needed(std::string_view source, tile_coord coord, std::uint64_t replayed) {
    if (m_size.load(std::memory_order_relaxed) == 0) {
        return 0;
    }
    std::lock_guard const lock{m_mutex};
    retire_locked(replayed);
    std::uint64_t highest = 0;
    for (auto const& e : m_entries) {
        if (e.source == source && e.position > highest && e.area.contains(coord)) {
            highest = e.position;
        }
    }
    return highest;
}

std::uint64_t change_horizon::last() const {
    std::lock_guard const lock{m_mutex};
    return m_next - 1;
}

void change_horizon::clear() {
    std::lock_guard const lock{m_mutex};
    m_entries.clear();
    m_size.store(0, std::memory_order_relaxed);
}

} // namespace kachel::tiles
