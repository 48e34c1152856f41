#include "core/secrets.hpp"

#include "core/text.hpp"

#include <algorithm>
#include <array>

namespace kachel {

namespace {

/// `key=value` text without its secret keywords (values possibly single-quoted, with backslash escapes).
std::string without_secret_keywords(std::string_view text) {
    std::string out;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && text[i] == ' ') {
            out += text[i++];
        }
        auto const start = i;
        auto const eq = text.find('=', i);
        if (eq == std::string_view::npos) {
            out.append(text.substr(i));
            break;
        }
        auto name = text.substr(i, eq - i);
        while (!name.empty() && name.back() == ' ') {
            name.remove_suffix(1);
        }
        i = eq + 1;
        while (i < text.size() && text[i] == ' ') {
            ++i;
        }
        if (i < text.size() && text[i] == '\'') {
            ++i;
            while (i < text.size() && text[i] != '\'') {
                i += text[i] == '\\' ? 2 : 1;
            }
            ++i;
        } else {
            while (i < text.size() && text[i] != ' ') {
                i += text[i] == '\\' ? 2 : 1;
            }
        }
        i = std::min(i, text.size());
        if (!is_secret_name(name)) {
            out.append(text.substr(start, i - start));
        } else {
            while (!out.empty() && out.back() == ' ') {
                out.pop_back();
            }
        }
    }
    while (!out.empty() && out.front() == ' ') {
        out.erase(0, 1);
    }
    return out;
}

} // namespace

bool is_secret_name(std::string_view name) noexcept {
    constexpr std::array<std::string_view, 12> secret{"password",  "sslpassword", "token",        "key",
                                                      "api_key",   "apikey",      "access_token", "secret",
                                                      "signature", "sig",         "auth",         "jwt"};
    return std::any_of(secret.begin(), secret.end(), [name](std::string_view s) { return iequals(name, s); });
}

std::string without_password(std::string_view connection_string) {
    std::string text{connection_string};
    // A URL (postgresql://, or any other scheme a user may have typed by mistake).
    if (auto const scheme = text.find("://");
        scheme != std::string::npos && scheme > 0 && text.find_first_of(" =") > scheme) {
        auto const from = text.find("://") + 3;
        auto const end = text.find_first_of("/?", from);
        auto const at = text.rfind('@', end == std::string::npos ? text.size() : end);
        if (at != std::string::npos && at >= from) {
            auto const colon = text.find(':', from);
            if (colon != std::string::npos && colon < at) {
                text.erase(colon, at - colon);
            }
        }
        // password=... among the URL parameters
        if (auto const q = text.find('?'); q != std::string::npos) {
            std::string query;
            std::string_view rest = std::string_view{text}.substr(q + 1);
            while (!rest.empty()) {
                auto const amp = rest.find('&');
                auto const item = rest.substr(0, amp);
                rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
                if (!item.empty() && !is_secret_name(item.substr(0, item.find('=')))) {
                    query += query.empty() ? "" : "&";
                    query += item;
                }
            }
            text = text.substr(0, q) + (query.empty() ? "" : "?" + query);
        }
        return text;
    }
    return without_secret_keywords(text);
}

std::string redact_query(std::string_view query) {
    std::string out;
    while (!query.empty()) {
        auto const amp = query.find('&');
        auto const pair = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (!out.empty()) {
            out += '&';
        }
        auto const eq = pair.find('=');
        if (eq != std::string_view::npos && is_secret_name(pair.substr(0, eq))) {
            out += pair.substr(0, eq + 1);
            out += "***";
        } else {
            out += pair;
        }
        if (amp != std::string_view::npos && query.empty()) {
            out += '&';
        }
    }
    return out;
}

} // namespace kachel
