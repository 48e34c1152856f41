#include "http/router.hpp"

#include "core/text.hpp"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <optional>

namespace kachel::http {

namespace {

/// The path segments of a request, up to six, held without allocating.
class segment_list {
  public:
    static constexpr std::size_t capacity = 6;
    void push_back(std::string_view segment) noexcept { m_items[m_size++] = segment; }
    [[nodiscard]] std::size_t size() const noexcept { return m_size; }
    [[nodiscard]] std::string_view operator[](std::size_t i) const noexcept { return m_items[i]; }

  private:
    std::array<std::string_view, capacity> m_items{};
    std::size_t m_size = 0;
};

/// Percent-decodes a path segment; nullopt for a malformed escape or an encoded NUL.
std::optional<std::string> percent_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        if (i + 2 >= s.size()) {
            return std::nullopt;
        }
        auto const hi = hex_digit(s[i + 1]);
        auto const lo = hex_digit(s[i + 2]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            return std::nullopt;
        }
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return out;
}

enum class number_status { ok, not_a_number, too_large };

/// Digits only (no sign, no spaces); values past uint32 are "too large", not "not a number".
number_status parse_number(std::string_view s, std::uint32_t& value) noexcept {
    if (s.empty()) {
        return number_status::not_a_number;
    }
    for (char const c : s) {
        if (c < '0' || c > '9') {
            return number_status::not_a_number;
        }
    }
    auto const [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (ec == std::errc::result_out_of_range) {
        return number_status::too_large;
    }
    return ptr == s.data() + s.size() ? number_status::ok : number_status::not_a_number;
}

route make(route::kind type, std::string message = {}) {
    route r;
    r.type = type;
    r.message = std::move(message);
    return r;
}

} // namespace

std::optional<std::string> normalize_prefix(std::string_view path) {
    if (path.empty() || path.front() != '/') {
        return std::nullopt;
    }
    std::string out;
    for (char const c : path) {
        if (c == '?' || c == '#' || static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
            return std::nullopt;
        }
        if (c == '/' && !out.empty() && out.back() == '/') {
            continue;
        }
        out += c;
    }
    while (!out.empty() && out.back() == '/') {
        out.pop_back();
    }
    return out;
}

route parse_route(std::string_view target, std::string_view route_prefix) {
    std::string_view raw_path = target;
    std::string_view query;
    if (auto const q = target.find('?'); q != std::string_view::npos) {
        raw_path = target.substr(0, q);
        query = target.substr(q + 1);
    }
    if (raw_path.empty() || raw_path.front() != '/') {
        return make(route::kind::bad_request, "The request path must start with '/'");
    }

    route r;
    bool repeated_slash = false;
    for (std::size_t i = 0; i < raw_path.size(); ++i) {
        auto const c = raw_path[i];
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            // The HTTP parser refuses these already; the router does not rely on it.
            return make(route::kind::bad_request, "The request path must not hold control characters");
        }
        repeated_slash = repeated_slash || (c == '/' && i > 0 && raw_path[i - 1] == '/');
    }
    std::string_view path = raw_path;
    if (repeated_slash) {
        std::string merged;
        merged.reserve(raw_path.size());
        for (char const c : raw_path) {
            if (c != '/' || merged.empty() || merged.back() != '/') {
                merged += c;
            }
        }
        r.own_path = std::make_unique<std::string const>(std::move(merged));
        path = *r.own_path;
    }
    if (!route_prefix.empty()) {
        if (path == "/health") {
            r.type = route::kind::health;
            return r;
        }
        if (!path.starts_with(route_prefix) ||
            (path.size() > route_prefix.size() && path[route_prefix.size()] != '/')) {
            return make(route::kind::not_found, "Not found");
        }
        path.remove_prefix(route_prefix.size());
        if (path.empty()) {
            // The web UI's relative links need the trailing slash.
            r.type = route::kind::redirect;
            r.location = std::string{route_prefix} + "/" + (query.empty() ? "" : "?" + std::string{query});
            return r;
        }
    }
    r.path = path;
    r.query = query;

    // Segments after the leading slash; a trailing slash yields a last empty segment. No route
    // has more than five, so a sixth only says "too many" (and nothing is allocated).
    segment_list segments;
    std::string_view rest = r.path.substr(1);
    while (true) {
        auto const slash = rest.find('/');
        segments.push_back(rest.substr(0, slash));
        if (slash == std::string_view::npos || segments.size() == segment_list::capacity) {
            break;
        }
        rest = rest.substr(slash + 1);
    }

    if (segments.size() == 1 && segments[0].empty()) {
        r.type = route::kind::root;
        return r;
    }
    if (segments.size() == 1 && segments[0] == "health") {
        r.type = route::kind::health;
        return r;
    }
    if (segments.size() == 1 && segments[0] == "catalog") {
        r.type = route::kind::catalog;
        return r;
    }

    if (segments.size() == 2 && segments[0] == "_" && segments[1] == "ready") {
        r.type = route::kind::ready;
        return r;
    }
    if (segments.size() == 2 && segments[0] == "_" && segments[1] == "metrics") {
        r.type = route::kind::metrics;
        return r;
    }
    if (segments.size() == 2 && segments[0] == "_" && segments[1] == "changes") {
        r.type = route::kind::changes;
        return r;
    }
    if (segments.size() == 3 && segments[0] == "_" && segments[1] == "ui" && !segments[2].empty()) {
        r.type = route::kind::ui_asset;
        r.asset = segments[2];
        return r;
    }

    // `/cache/{ids}`: its ids are read below like a TileJSON route's.
    bool const purge = segments.size() == 2 && segments[0] == "cache";

    auto const query_suffix = [query] { return query.empty() ? std::string{} : "?" + std::string{query}; };
    // Legacy forms first, before any source lookup, as Martin does.
    if (segments.size() == 5 && segments[0] == "tiles") {
        r.type = route::kind::redirect;
        r.location = fmt::format("{}/{}/{}/{}/{}{}", route_prefix, segments[1], segments[2], segments[3],
                                 segments[4], query_suffix());
        return r;
    }
    if (segments.size() == 4) {
        auto const dot = segments[3].find('.');
        if (dot != std::string_view::npos && dot > 0) {
            std::uint32_t ignored = 0;
            if (parse_number(segments[3].substr(0, dot), ignored) != number_status::not_a_number) {
                r.type = route::kind::redirect;
                r.location = fmt::format("{}/{}/{}/{}/{}{}", route_prefix, segments[0], segments[1],
                                         segments[2], segments[3].substr(0, dot), query_suffix());
                return r;
            }
        }
    }
    if (!purge && segments.size() != 1 && segments.size() != 4) {
        return make(route::kind::not_found, "Not found");
    }

    std::string_view ids = segments[purge ? 1 : 0];
    if (ids.find('%') != std::string_view::npos) {
        auto decoded = percent_decode(ids);
        if (!decoded) {
            return make(route::kind::bad_request, "The source id is not valid percent-encoded text");
        }
        r.own_ids = std::make_unique<std::string const>(std::move(*decoded));
        ids = *r.own_ids;
    }
    while (true) {
        auto const comma = ids.find(',');
        auto const id = ids.substr(0, comma);
        if (id.empty()) {
            return make(route::kind::not_found, "Empty source id");
        }
        r.source_ids.push_back(id);
        if (r.source_ids.size() > max_composite_sources) {
            std::size_t count = r.source_ids.size();
            for (char const c : ids.substr(id.size())) {
                count += c == ',' ? 1 : 0;
            }
            return make(route::kind::bad_request,
                        fmt::format("Requested {} source ids, but at most {} are allowed per request", count,
                                    max_composite_sources));
        }
        if (comma == std::string_view::npos) {
            break;
        }
        ids = ids.substr(comma + 1);
    }

    if (purge || segments.size() == 1) {
        r.type = purge ? route::kind::purge : route::kind::tilejson;
        return r;
    }

    std::uint32_t values[3] = {0, 0, 0};
    bool too_large = false;
    for (std::size_t i = 0; i < 3; ++i) {
        auto const st = parse_number(segments[i + 1], values[i]);
        if (st == number_status::not_a_number) {
            return make(route::kind::not_found, "Not found");
        }
        too_large = too_large || st == number_status::too_large;
    }
    r.coord = tile_coord{values[0], values[1], values[2]};
    if (too_large || !is_valid(r.coord)) {
        return make(route::kind::bad_request,
                    fmt::format("Invalid tile coordinates: zoom must be 0 to {}, and x and y 0 to 2^zoom-1",
                                max_zoom));
    }
    r.type = route::kind::tile;
    return r;
}

} // namespace kachel::http
