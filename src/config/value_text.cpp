#include "config/value_text.hpp"

#include "core/error.hpp"
#include "core/text.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>

namespace kachel::config {

std::string value_origin::describe() const {
    return file.empty() ? key : fmt::format("{}: '{}'", file, key);
}

std::string value_origin::channel() const {
    return file.empty() ? key : fmt::format("{} in {}", key, file);
}

std::int64_t parse_integer(std::string_view text, value_origin const& origin, std::int64_t min,
                           std::int64_t max) {
    std::int64_t value = 0;
    auto const [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size() || value < min || value > max) {
        throw config_error{
            fmt_error("{} must be an integer from {} to {}, got '{}'", origin.describe(), min, max, text)};
    }
    return value;
}

std::uint64_t parse_positive(std::string_view text, value_origin const& origin) {
    std::uint64_t value = 0;
    auto const [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size() || value == 0) {
        throw config_error{fmt_error("{} must be a positive integer, got '{}'", origin.describe(), text)};
    }
    return value;
}

double parse_positive_number(std::string_view text, value_origin const& origin, std::string_view example) {
    double value = 0;
    auto const [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size() || !std::isfinite(value) ||
        value <= 0) {
        throw config_error{
            fmt_error("{} must be a number above 0, such as {}; got '{}'", origin.describe(), example, text)};
    }
    return value;
}

std::uint64_t parse_size(std::string_view text, value_origin const& origin) {
    std::uint64_t value = 0;
    auto const [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    auto const unit =
        to_lower(trim(std::string_view{ptr, static_cast<std::size_t>(text.data() + text.size() - ptr)}));
    constexpr std::array<std::pair<std::string_view, std::uint64_t>, 8> units{{{"", 1},
                                                                               {"b", 1},
                                                                               {"kb", 1'000},
                                                                               {"mb", 1'000'000},
                                                                               {"gb", 1'000'000'000},
                                                                               {"kib", 1 << 10},
                                                                               {"mib", 1 << 20},
                                                                               {"gib", 1 << 30}}};
    auto const* const found =
        std::find_if(units.begin(), units.end(), [&](auto const& u) { return u.first == unit; });
    if (ptr == text.data() || ec != std::errc{} || found == units.end() ||
        value > std::numeric_limits<std::uint64_t>::max() / found->second) {
        throw config_error{
            fmt_error("{} must be a size such as 500kB, 2MB or 0, got '{}'", origin.describe(), text)};
    }
    return value * found->second;
}

std::string size_text(std::uint64_t bytes) {
    if (bytes != 0 && bytes % 1'000'000 == 0) {
        return fmt::format("{}MB", bytes / 1'000'000);
    }
    if (bytes != 0 && bytes % 1'000 == 0) {
        return fmt::format("{}kB", bytes / 1'000);
    }
    return fmt::format("{}B", bytes);
}

bool parse_boolean(std::string_view text, value_origin const& origin) {
    if (text == "true" || text == "yes" || text == "on") {
        return true;
    }
    if (text == "false" || text == "no" || text == "off") {
        return false;
    }
    throw config_error{fmt_error("{} must be true or false, got '{}'", origin.describe(), text)};
}

namespace {

/// Nanoseconds per unit, for humantime's unit names.
std::optional<double> unit_nanoseconds(std::string_view unit) noexcept {
    struct unit_name {
        std::string_view name;
        double ns;
    };
    constexpr double second = 1e9;
    static constexpr std::array<unit_name, 33> units{{
        {"nsec", 1},
        {"ns", 1},
        {"usec", 1e3},
        {"us", 1e3},
        {"msec", 1e6},
        {"ms", 1e6},
        {"seconds", second},
        {"second", second},
        {"sec", second},
        {"s", second},
        {"minutes", 60 * second},
        {"minute", 60 * second},
        {"min", 60 * second},
        {"m", 60 * second},
        {"hours", 3600 * second},
        {"hour", 3600 * second},
        {"hr", 3600 * second},
        {"h", 3600 * second},
        {"days", 86400 * second},
        {"day", 86400 * second},
        {"d", 86400 * second},
        {"weeks", 604800 * second},
        {"week", 604800 * second},
        {"w", 604800 * second},
        {"months", 2630016 * second},
        {"month", 2630016 * second},
        {"M", 2630016 * second},
        {"years", 31557600 * second},
        {"year", 31557600 * second},
        {"y", 31557600 * second},
        {"mins", 60 * second},
        {"hrs", 3600 * second},
        {"secs", second},
    }};
    for (auto const& u : units) {
        if (u.name == unit) {
            return u.ns;
        }
    }
    return std::nullopt;
}

} // namespace

std::chrono::milliseconds parse_duration_ms(std::string_view text, value_origin const& origin) {
    auto const fail = [&]() {
        return config_error{
            fmt_error("{} must be a duration such as 30 (seconds), 500ms, 30s, 1m 30s, 2h or 1d, "
                      "got '{}'",
                      origin.describe(), text)};
    };
    std::uint64_t whole = 0;
    if (auto const [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), whole);
        !text.empty() && ec == std::errc{} && ptr == text.data() + text.size()) {
        if (whole > std::uint64_t{100} * 365 * 86400) {
            throw fail();
        }
        return std::chrono::seconds{whole}; // bare seconds
    }
    double total_ns = 0;
    std::size_t i = 0;
    bool any = false;
    while (i < text.size()) {
        if (text[i] == ' ') {
            ++i;
            continue;
        }
        std::size_t const start = i;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
            ++i;
        }
        if (i == start) {
            throw fail();
        }
        std::uint64_t number = 0;
        std::from_chars(text.data() + start, text.data() + i, number);
        while (i < text.size() && text[i] == ' ') {
            ++i; // `2 minutes` as well as `2minutes`
        }
        std::size_t const unit_start = i;
        while (i < text.size() && ((text[i] >= 'a' && text[i] <= 'z') || text[i] == 'M')) {
            ++i;
        }
        auto const ns = unit_nanoseconds(text.substr(unit_start, i - unit_start));
        if (!ns) {
            throw fail();
        }
        total_ns += static_cast<double>(number) * *ns;
        any = true;
    }
    // A century is the most any timeout here could mean; more is a typo (or an overflow).
    if (!any || total_ns > 100.0 * 31557600 * 1e9) {
        throw fail();
    }
    return std::chrono::milliseconds{static_cast<std::int64_t>(total_ns / 1e6)};
}

std::chrono::seconds parse_duration(std::string_view text, value_origin const& origin) {
    auto const value = parse_duration_ms(text, origin);
    if (value.count() % 1000 != 0) {
        throw config_error{fmt_error("{} takes whole seconds, got '{}'", origin.describe(), text)};
    }
    return std::chrono::duration_cast<std::chrono::seconds>(value);
}

std::string duration_text(std::chrono::seconds value) {
    return fmt::format("{}s", value.count());
}

std::string duration_text(std::chrono::milliseconds value) {
    return value.count() % 1000 == 0 ? fmt::format("{}s", value.count() / 1000)
                                     : fmt::format("{}ms", value.count());
}

} // namespace kachel::config
