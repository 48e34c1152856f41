#include "tiles/catalog.hpp"

#include "core/error.hpp"

#include <fmt/format.h>

#include <atomic>

namespace kachel::tiles {

void catalog::add(std::shared_ptr<tile_source const> source) {
    auto const& id = source->id();
    if (!m_sources.emplace(id, std::move(source)).second) {
        throw source_error{fmt_error("two sources have the id '{}'", id)};
    }
}

tile_source const* catalog::find(std::string_view id) const noexcept {
    auto const it = m_sources.find(id);
    return it == m_sources.end() ? nullptr : it->second.get();
}

std::vector<std::shared_ptr<tile_source const>> catalog::all() const {
    std::vector<std::shared_ptr<tile_source const>> out;
    out.reserve(m_sources.size());
    for (auto const& [id, source] : m_sources) {
        out.push_back(source);
    }
    return out;
}

nlohmann::json catalog::to_json() const {
    auto tiles = nlohmann::json::object();
    for (auto const& [id, source] : m_sources) {
        nlohmann::json entry{{"content_type", source->content_type()}};
        auto const& tj = source->tilejson();
        for (char const* key : {"description", "attribution"}) {
            if (auto const it = tj.find(key); it != tj.end() && it->is_string()) {
                entry[key] = *it;
            }
        }
        if (auto const it = tj.find("name"); it != tj.end() && it->is_string() && *it != id) {
            entry["name"] = *it;
        }
        tiles[id] = std::move(entry);
    }
    return nlohmann::json{{"tiles", std::move(tiles)}};
}

} // namespace kachel::tiles

namespace kachel::tiles {

zoom_range tile_source::zooms() const {
    return zooms_of(tilejson());
}

std::string instance_name(std::string_view id) {
    static std::atomic<std::uint64_t> next{1};
    return fmt::format("{}\x1f{}", id, next.fetch_add(1, std::memory_order_relaxed));
}

bool is_cache_name_of(std::string_view cache_name, std::string_view id) noexcept {
    // A composite's name holds each constituent's: any of them names it.
    while (true) {
        auto const end = cache_name.find(composite_separator);
        auto const name = cache_name.substr(0, end);
        if (name.starts_with(id) && (name.size() == id.size() || name[id.size()] == '\x1f')) {
            return true;
        }
        if (end == std::string_view::npos) {
            return false;
        }
        cache_name.remove_prefix(end + 1);
    }
}

zoom_range zooms_of(nlohmann::json const& tilejson) {
    zoom_range out;
    if (auto const it = tilejson.find("minzoom"); it != tilejson.end() && it->is_number()) {
        out.min = it->get<int>();
    }
    if (auto const it = tilejson.find("maxzoom"); it != tilejson.end() && it->is_number()) {
        out.max = it->get<int>();
    }
    return out;
}

} // namespace kachel::tiles
