#pragma once

#include <string>
#include <string_view>

namespace kachel {

/// `s` without leading and trailing spaces and tabs (header values, config directives).
[[nodiscard]] constexpr std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

/// The text up to its first line break (a libpq message's summary).
[[nodiscard]] constexpr std::string_view first_line(std::string_view s) noexcept {
    return s.substr(0, s.find('\n'));
}

/// ASCII lower case of one character (names, header tokens; not locale-dependent).
[[nodiscard]] constexpr char ascii_lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

/// `s` in ASCII lower case.
[[nodiscard]] inline std::string to_lower(std::string_view s) {
    std::string out{s};
    for (char& c : out) {
        c = ascii_lower(c);
    }
    return out;
}

/// Equal ignoring ASCII case.
[[nodiscard]] constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (ascii_lower(a[i]) != ascii_lower(b[i])) {
            return false;
        }
    }
    return true;
}

/// The value of a hexadecimal digit, or -1.
[[nodiscard]] constexpr int hex_digit(char c) noexcept {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

} // namespace kachel
