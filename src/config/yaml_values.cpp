#include "config/yaml_values.hpp"

#include "config/value_text.hpp"
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
    return text ? std::optional{parse_positive(*text, {ctx.file, key})} : std::nullopt;
}

std::optional<std::int64_t> integer_in(YAML::Node const& node, std::string const& key,
                                       yaml_context const& ctx, std::int64_t min, std::int64_t max) {
    auto const text = scalar(node, key, ctx);
    return text ? std::optional{parse_integer(*text, {ctx.file, key}, min, max)} : std::nullopt;
}

std::optional<bool> boolean(YAML::Node const& node, std::string const& key, yaml_context const& ctx) {
    auto const text = scalar(node, key, ctx);
    return text ? std::optional{parse_boolean(*text, {ctx.file, key})} : std::nullopt;
}

std::optional<std::chrono::milliseconds> duration(YAML::Node const& node, std::string const& key,
                                                  yaml_context const& ctx) {
    auto const text = scalar(node, key, ctx);
    return text ? std::optional{parse_duration_ms(*text, {ctx.file, key})} : std::nullopt;
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

std::string child_key(std::string_view parent, std::string_view child) {
    std::string out;
    out.reserve(parent.size() + 1 + child.size());
    out.append(parent).append(1, '.').append(child);
    return out;
}

void warn_unknown_key(std::string const& dotted, yaml_context const& ctx) {
    spdlog::warn("{}: ignoring unrecognized configuration key '{}'", ctx.file, dotted);
}

} // namespace kachel::config
