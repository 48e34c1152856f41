#include "config/yaml_values.hpp"

#include "core/error.hpp"

#include <spdlog/spdlog.h>

#include <charconv>
#include <cmath>

namespace kachel::config {

std::optional<std::string> scalar(YAML::Node const& node, std::string const& key, yaml_context const& ctx) {
    if (!node || node.IsNull()) {
        return std::nullopt;
    }
    if (!node.IsScalar()) {
        throw config_error{fmt_error("{}: '{}' must be a single value, not a list or a map", ctx.file, key)};
    }
    std::string text = node.Scalar();
    if (node.Tag() == "?") {
        text = substitute_env(text, ctx.lookup);
    }
    if (text.empty()) {
        return std::nullopt;
    }
    return text;
}

std::optional<std::string> unexpanded(YAML::Node const& node, yaml_context const& ctx) {
    if (!node || !node.IsScalar() || node.Tag() != "?") {
        return std::nullopt;
    }
    if (substitute_env(node.Scalar(), ctx.lookup) == node.Scalar()) {
        return std::nullopt;
    }
    return node.Scalar();
}

std::optional<std::uint64_t> positive_integer(YAML::Node const& node, std::string const& key,
                                              yaml_context const& ctx) {
    auto const text = scalar(node, key, ctx);
    if (!text) {
        return std::nullopt;
    }
    std::uint64_t value = 0;
    auto const [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (ec != std::errc{} || ptr != text->data() + text->size() || value == 0) {
        throw config_error{fmt_error("{}: '{}' must be a positive integer, got '{}'", ctx.file, key, *text)};
    }
    return value;
}

std::optional<std::int64_t> integer_in(YAML::Node const& node, std::string const& key,
                                       yaml_context const& ctx, std::int64_t min, std::int64_t max) {
    auto const text = scalar(node, key, ctx);
    if (!text) {
        return std::nullopt;
    }
    std::int64_t value = 0;
    auto const [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
    if (ec != std::errc{} || ptr != text->data() + text->size() || value < min || value > max) {
        throw config_error{
            fmt_error("{}: '{}' must be an integer from {} to {}, got '{}'", ctx.file, key, min, max, *text)};
    }
    return value;
}

std::optional<bool> boolean(YAML::Node const& node, std::string const& key, yaml_context const& ctx) {
    auto const text = scalar(node, key, ctx);
    if (!text) {
        return std::nullopt;
    }
    if (*text == "true" || *text == "yes" || *text == "on") {
        return true;
    }
    if (*text == "false" || *text == "no" || *text == "off") {
        return false;
    }
    throw config_error{fmt_error("{}: '{}' must be true or false, got '{}'", ctx.file, key, *text)};
}

std::optional<std::chrono::seconds> duration(YAML::Node const& node, std::string const& key,
                                             yaml_context const& ctx) {
    auto text = scalar(node, key, ctx);
    if (!text) {
        return std::nullopt;
    }
    std::int64_t factor = 1;
    std::string_view digits = *text;
    if (!digits.empty() && (digits.back() == 's' || digits.back() == 'm' || digits.back() == 'h')) {
        factor = digits.back() == 's' ? 1 : digits.back() == 'm' ? 60 : 3600;
        digits.remove_suffix(1);
    }
    std::int64_t value = 0;
    auto const [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (digits.empty() || ec != std::errc{} || ptr != digits.data() + digits.size() || value < 0) {
        throw config_error{
            fmt_error("{}: '{}' must be a duration such as 30, 30s or 2m, got '{}'", ctx.file, key, *text)};
    }
    return std::chrono::seconds{value * factor};
}

std::vector<std::string> string_list(YAML::Node const& node, std::string const& key,
                                     yaml_context const& ctx) {
    std::vector<std::string> out;
    if (node && node.IsSequence()) {
        for (std::size_t i = 0; i < node.size(); ++i) {
            if (auto v = scalar(node[i], fmt::format("{}[{}]", key, i), ctx)) {
                out.push_back(std::move(*v));
            }
        }
    } else if (auto v = scalar(node, key, ctx)) {
        out.push_back(std::move(*v));
    }
    return out;
}

std::optional<std::array<double, 4>> bounds(YAML::Node const& node, std::string const& key,
                                            yaml_context const& ctx) {
    if (!node || node.IsNull()) {
        return std::nullopt;
    }
    auto const fail = [&] {
        return config_error{fmt_error("{}: '{}' must be [west, south, east, north] in degrees, got {}",
                                      ctx.file, key, YAML::Dump(node))};
    };
    if (!node.IsSequence() || node.size() != 4) {
        throw fail();
    }
    std::array<double, 4> out{};
    for (std::size_t i = 0; i < 4; ++i) {
        auto const text = scalar(node[i], key, ctx);
        if (!text) {
            throw fail();
        }
        char* end = nullptr;
        out[i] = std::strtod(text->c_str(), &end);
        if (end != text->c_str() + text->size() || !std::isfinite(out[i])) {
            throw fail();
        }
    }
    if (out[0] < -180 || out[2] > 180 || out[1] < -90 || out[3] > 90 || out[1] > out[3]) {
        throw fail();
    }
    return out;
}

void require_map(YAML::Node const& node, std::string const& key, yaml_context const& ctx) {
    if (!node.IsMap()) {
        throw config_error{fmt_error("{}: '{}' must be a map of keys and values", ctx.file, key)};
    }
}

std::optional<int> zoom(YAML::Node const& node, std::string const& key, yaml_context const& ctx) {
    auto v = integer_in(node, key, ctx, 0, 30);
    return v ? std::optional<int>{static_cast<int>(*v)} : std::nullopt;
}

bool cache_disabled(YAML::Node const& node, std::string const& key, yaml_context const& ctx,
                    std::string_view expected) {
    if (node.IsMap()) {
        return false;
    }
    if (!node.IsScalar()) {
        throw config_error{fmt_error("{}: '{}' must be 'disable' or a map ({}), got {}", ctx.file, key,
                                     expected, node.IsSequence() ? "a list" : "nothing")};
    }
    auto const text = scalar(node, key, ctx).value_or("");
    if (text != "disable" && text != "disabled") {
        throw config_error{
            fmt_error("{}: '{}' must be 'disable' or a map ({}), got '{}'", ctx.file, key, expected, text)};
    }
    return true;
}

void warn_unknown_key(std::string const& dotted, yaml_context const& ctx) {
    spdlog::warn("{}: ignoring unrecognized configuration key '{}'", ctx.file, dotted);
}

} // namespace kachel::config
