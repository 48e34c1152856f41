#include "config/value_text.hpp"

#include "core/error.hpp"

#include <charconv>

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

bool parse_boolean(std::string_view text, value_origin const& origin) {
    if (text == "true" || text == "yes" || text == "on") {
        return true;
    }
    if (text == "false" || text == "no" || text == "off") {
        return false;
    }
    throw config_error{fmt_error("{} must be true or false, got '{}'", origin.describe(), text)};
}

std::chrono::seconds parse_duration(std::string_view text, value_origin const& origin) {
    std::int64_t factor = 1;
    std::string_view digits = text;
    if (!digits.empty() && (digits.back() == 's' || digits.back() == 'm' || digits.back() == 'h')) {
        factor = digits.back() == 's' ? 1 : digits.back() == 'm' ? 60 : 3600;
        digits.remove_suffix(1);
    }
    std::int64_t value = 0;
    auto const [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (digits.empty() || ec != std::errc{} || ptr != digits.data() + digits.size() || value < 0) {
        throw config_error{
            fmt_error("{} must be a duration such as 30, 30s or 2m, got '{}'", origin.describe(), text)};
    }
    return std::chrono::seconds{value * factor};
}

std::string duration_text(std::chrono::seconds value) {
    return fmt::format("{}s", value.count());
}

} // namespace kachel::config
