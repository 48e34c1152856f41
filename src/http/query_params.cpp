#include "http/query_params.hpp"

#include "core/text.hpp"

#include <string>

namespace kachel::http {

namespace {

/// application/x-www-form-urlencoded decoding; a malformed escape is kept literally.
std::string form_decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        char const c = s[i];
        if (c == '+') {
            out += ' ';
        } else if (c == '%' && i + 2 < s.size() && hex_digit(s[i + 1]) >= 0 && hex_digit(s[i + 2]) >= 0) {
            out += static_cast<char>(hex_digit(s[i + 1]) * 16 + hex_digit(s[i + 2]));
            i += 2;
        } else {
            out += c;
        }
    }
    return out;
}

/// Guards the JSON parser against pathological nesting from a hostile URL.
constexpr std::size_t max_json_depth = 64;

} // namespace

nlohmann::json query_to_json(std::string_view query) {
    auto out = nlohmann::json::object();
    while (!query.empty()) {
        auto const amp = query.find('&');
        auto const pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (pair.empty()) {
            continue;
        }
        auto const eq = pair.find('=');
        auto key = form_decode(pair.substr(0, eq));
        auto const raw = eq == std::string_view::npos ? std::string{} : form_decode(pair.substr(eq + 1));
        std::size_t depth = 0;
        bool too_deep = false;
        auto value = nlohmann::json::parse(
            raw,
            [&](int d, nlohmann::json::parse_event_t, nlohmann::json&) {
                depth = static_cast<std::size_t>(d);
                too_deep = too_deep || depth > max_json_depth;
                return !too_deep;
            },
            false);
        if (value.is_discarded() || too_deep) {
            value = raw;
        }
        out[std::move(key)] = std::move(value);
    }
    return out;
}

bool contains_nul(nlohmann::json const& value) noexcept {
    if (value.is_string()) {
        return value.get_ref<std::string const&>().find('\0') != std::string::npos;
    }
    if (value.is_object()) {
        for (auto const& [key, item] : value.items()) {
            if (key.find('\0') != std::string::npos || contains_nul(item)) {
                return true;
            }
        }
    } else if (value.is_array()) {
        for (auto const& item : value) {
            if (contains_nul(item)) {
                return true;
            }
        }
    }
    return false;
}

} // namespace kachel::http
