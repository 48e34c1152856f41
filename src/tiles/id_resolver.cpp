#include "tiles/id_resolver.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>

namespace kachel::tiles {

namespace {

constexpr std::array<std::string_view, 13> reserved_ids{"_",      "catalog", "config",   "font",    "health",
                                                        "help",   "index",   "manifest", "metrics", "refresh",
                                                        "reload", "sprite",  "status"};

bool is_allowed(char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

} // namespace

std::string sanitize_id(std::string_view name) {
    std::string out;
    out.reserve(name.size());
    for (char const c : name) {
        auto const byte = static_cast<unsigned char>(c);
        if ((byte & 0xC0U) == 0x80U) {
            continue; // UTF-8 continuation byte: its character already became one '-'
        }
        out += is_allowed(c) ? c : '-';
    }
    return out;
}

bool is_reserved_id(std::string_view id) noexcept {
    return std::find(reserved_ids.begin(), reserved_ids.end(), id) != reserved_ids.end();
}

id_resolver::id_resolver(id_resolver&& other) noexcept {
    std::lock_guard const lock{other.m_mutex};
    m_owner_by_id = std::move(other.m_owner_by_id);
}

id_resolver& id_resolver::operator=(id_resolver&& other) noexcept {
    if (this != &other) {
        std::scoped_lock const lock{m_mutex, other.m_mutex};
        m_owner_by_id = std::move(other.m_owner_by_id);
    }
    return *this;
}

std::string id_resolver::resolve(std::string_view name, std::string_view signature) {
    std::lock_guard const lock{m_mutex};
    std::string base = sanitize_id(name);
    bool const reserved = is_reserved_id(base);
    if (!reserved) {
        auto const it = m_owner_by_id.find(base);
        if (it == m_owner_by_id.end()) {
            m_owner_by_id.emplace(base, std::string{signature});
            return base;
        }
        if (it->second == signature) {
            return base;
        }
    }
    for (unsigned n = 1;; ++n) {
        std::string candidate = base + "." + std::to_string(n);
        auto const it = m_owner_by_id.find(candidate);
        if (it == m_owner_by_id.end()) {
            m_owner_by_id.emplace(candidate, std::string{signature});
            if (reserved) {
                spdlog::warn("Source id '{}' is a reserved keyword, renamed to '{}'", base, candidate);
            } else {
                spdlog::warn("Source id '{}' is already taken, renamed to '{}' ({})", base, candidate,
                             signature);
            }
            return candidate;
        }
        if (it->second == signature) {
            return candidate;
        }
    }
}

} // namespace kachel::tiles
