#include "http/http_options.hpp"

#include "core/text.hpp"
#include "tiles/tile_format.hpp"

#include <algorithm>
#include <array>
#include <charconv>

namespace kachel::http {

namespace {

/// Canonical tile MIME type for an Accept entry (JSON counts for TileJSON), or empty.
std::string canonical(std::string_view type) {
    if (type == "application/json") {
        return std::string{type};
    }
    return std::string{tiles::canonical_tile_type(type).value_or("")};
}

} // namespace

bool cors_options::allows(std::string_view origin) const noexcept {
    return origins.empty() || std::find(origins.begin(), origins.end(), "*") != origins.end() ||
           std::find(origins.begin(), origins.end(), origin) != origins.end();
}

bool is_valid_cache_control(std::string_view value) noexcept {
    if (trim(value).empty()) {
        return false;
    }
    while (!value.empty()) {
        auto const comma = value.find(',');
        auto const item = trim(value.substr(0, comma));
        value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
        auto const eq = item.find('=');
        auto const name = item.substr(0, eq);
        if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) {
                return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
            })) {
            return false;
        }
        if (eq != std::string_view::npos) {
            auto const v = item.substr(eq + 1);
            if (v.empty() || v.find_first_of(" \t;") != std::string_view::npos) {
                return false;
            }
        }
    }
    return true;
}

bool accepted_formats::allows(std::string_view content_type) const noexcept {
    return any || std::find(types.begin(), types.end(), content_type) != types.end();
}

accepted_formats parse_accept(std::optional<std::string_view> header) {
    accepted_formats out;
    if (!header || trim(*header).empty()) {
        return out;
    }
    out.any = false;
    std::string_view rest = *header;
    while (!rest.empty()) {
        auto const comma = rest.find(',');
        auto item = trim(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        auto const semi = item.find(';');
        auto const type = to_lower(trim(item.substr(0, semi)));
        if (semi != std::string_view::npos) {
            auto params = trim(item.substr(semi + 1));
            if (params.size() > 2 && (params[0] == 'q' || params[0] == 'Q') && params[1] == '=') {
                double q = 1;
                auto const v = params.substr(2);
                std::from_chars(v.data(), v.data() + v.size(), q);
                if (q <= 0) {
                    continue;
                }
            }
        }
        if (type == "*/*") {
            out.any = true;
            out.types.clear();
            return out;
        }
        if (type == "image/*") {
            out.types.insert(out.types.end(), tiles::image_tile_types.begin(), tiles::image_tile_types.end());
        } else if (auto c = canonical(type); !c.empty()) {
            out.types.push_back(std::move(c));
        }
    }
    return out;
}

} // namespace kachel::http
