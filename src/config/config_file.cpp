#include "config/config_file.hpp"

#include "core/error.hpp"

#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <array>
#include <charconv>
#include <fstream>
#include <sstream>

namespace kachel::config {

namespace {

/// Martin keys kachel knows but does not implement yet: accepted with a warning, so a Martin
/// config file starts.
constexpr std::array<std::string_view, 15> martin_top_level_keys{"keep_alive",   "base_path",
                                                                 "route_prefix", "cache_size_mb",
                                                                 "cache",        "pmtiles",
                                                                 "mbtiles",      "sprites",
                                                                 "fonts",        "styles",
                                                                 "on_invalid",   "tilejson_url_version_param",
                                                                 "srv",          "tile_cache_size_mb",
                                                                 "cog"};
constexpr std::array<std::string_view, 10> martin_postgres_keys{
    "default_srid", "auto_bounds",         "max_feature_count", "auto_publish",    "tables",
    "functions",    "prepared_statements", "on_invalid",        "reload_interval", "convert_to_mlt"};

template <std::size_t N>
bool contains(std::array<std::string_view, N> const& keys, std::string_view key) {
    return std::find(keys.begin(), keys.end(), key) != keys.end();
}

struct context {
    std::string const& file;
    env_lookup const& lookup;
};

/// A scalar's text, `${VAR}`-expanded when plain (unquoted); nullopt for null or empty.
std::optional<std::string> scalar(YAML::Node const& node, std::string const& key, context const& ctx) {
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

std::optional<std::uint64_t> positive_integer(YAML::Node const& node, std::string const& key,
                                              context const& ctx) {
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

/// Seconds, optionally written with a unit: 30, 30s, 2m, 1h.
std::optional<std::chrono::seconds> duration(YAML::Node const& node, std::string const& key,
                                             context const& ctx) {
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

std::optional<bool> boolean(YAML::Node const& node, std::string const& key, context const& ctx) {
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

/// `cors: true | false | {origin: [..], max_age: N}`.
http::cors_options parse_cors(YAML::Node const& node, context const& ctx) {
    http::cors_options cors;
    if (node.IsScalar()) {
        cors.enabled = boolean(node, "cors", ctx).value_or(true);
        return cors;
    }
    if (!node.IsMap()) {
        throw config_error{
            fmt_error("{}: 'cors' must be true, false or a map with origin and max_age", ctx.file)};
    }
    for (auto const& entry : node) {
        auto const key = entry.first.as<std::string>();
        if (key == "origin") {
            if (entry.second.IsSequence()) {
                for (auto const& item : entry.second) {
                    if (auto v = scalar(item, "cors.origin", ctx)) {
                        cors.origins.push_back(*v);
                    }
                }
            } else if (auto v = scalar(entry.second, "cors.origin", ctx)) {
                cors.origins.push_back(*v);
            }
        } else if (key == "max_age") {
            if (auto v = positive_integer(entry.second, "cors.max_age", ctx)) {
                cors.max_age = static_cast<unsigned>(*v);
            }
        } else {
            spdlog::warn("{}: ignoring unrecognized configuration key 'cors.{}'", ctx.file, key);
        }
    }
    if (cors.origins.empty()) {
        throw config_error{
            fmt_error("{}: At least one 'origin' must be specified in the 'cors' configuration", ctx.file)};
    }
    return cors;
}

/// `observability.metrics.add_labels: {name: value}`.
void parse_observability(YAML::Node const& node, context const& ctx, file_settings& out) {
    if (!node.IsMap()) {
        throw config_error{fmt_error("{}: 'observability' must be a map", ctx.file)};
    }
    for (auto const& entry : node) {
        auto const key = entry.first.as<std::string>();
        if (key != "metrics" || !entry.second.IsMap()) {
            spdlog::warn("{}: ignoring unrecognized configuration key 'observability.{}'", ctx.file, key);
            continue;
        }
        for (auto const& m : entry.second) {
            auto const mkey = m.first.as<std::string>();
            if (mkey != "add_labels" || !m.second.IsMap()) {
                spdlog::warn("{}: ignoring unrecognized configuration key 'observability.metrics.{}'",
                             ctx.file, mkey);
                continue;
            }
            for (auto const& label : m.second) {
                auto const name = label.first.as<std::string>();
                auto const dotted = "observability.metrics.add_labels." + name;
                if (name.empty() || !(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_') ||
                    name.find_first_not_of(
                        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") !=
                        std::string::npos) {
                    throw config_error{
                        fmt_error("{}: '{}' is not a valid Prometheus label name", ctx.file, dotted)};
                }
                out.metric_labels.emplace_back(name, scalar(label.second, dotted, ctx).value_or(""));
            }
        }
    }
}

postgres_settings parse_postgres(YAML::Node const& node, std::string const& path, context const& ctx) {
    if (!node.IsMap()) {
        throw config_error{
            fmt_error("{}: '{}' must be a map with connection_string (and optionally ssl_root_cert, "
                      "ssl_cert, ssl_key, pool_size, retry_timeout)",
                      ctx.file, path)};
    }
    postgres_settings out;
    out.origin = fmt::format("{} {}", ctx.file, path);
    for (auto const& entry : node) {
        auto const key = entry.first.as<std::string>();
        auto const dotted = path + "." + key;
        auto const& value = entry.second;
        if (key == "connection_string") {
            out.connection_string = scalar(value, dotted, ctx).value_or("");
        } else if (key == "ssl_root_cert" || key == "ssl_cert" || key == "ssl_key") {
            auto text = scalar(value, dotted, ctx);
            if (text) {
                pg::sourced_value v{std::move(*text), fmt::format("{} in {}", dotted, ctx.file)};
                (key == "ssl_root_cert" ? out.ssl_root_cert
                 : key == "ssl_cert"    ? out.ssl_cert
                                        : out.ssl_key) = std::move(v);
            }
        } else if (key == "pool_size") {
            if (auto v = positive_integer(value, dotted, ctx)) {
                out.pool_size = static_cast<std::size_t>(*v);
            }
        } else if (key == "retry_timeout") {
            out.retry_timeout = duration(value, dotted, ctx);
        } else if (contains(martin_postgres_keys, key)) {
            spdlog::warn("{}: configuration key '{}' is not supported by kachel yet and is ignored", ctx.file,
                         dotted);
        } else {
            spdlog::warn("{}: ignoring unrecognized configuration key '{}'", ctx.file, dotted);
        }
    }
    if (out.connection_string.empty()) {
        throw config_error{fmt_error("{}: '{}.connection_string' is required", ctx.file, path)};
    }
    return out;
}

} // namespace

file_settings parse_config(std::string const& yaml, std::string const& name, env_lookup const& lookup) {
    YAML::Node root;
    try {
        root = YAML::Load(yaml);
    } catch (YAML::Exception const& e) {
        throw config_error{fmt_error("{}: not valid YAML: {}", name, e.what())};
    }
    file_settings out;
    if (!root || root.IsNull()) {
        return out;
    }
    if (!root.IsMap()) {
        throw config_error{fmt_error("{}: the config file must be a map of settings", name)};
    }
    context const ctx{name, lookup};
    for (auto const& entry : root) {
        auto const key = entry.first.as<std::string>();
        auto const& value = entry.second;
        if (key == "listen_addresses") {
            out.listen_addresses = scalar(value, key, ctx);
        } else if (key == "worker_processes") {
            if (auto v = positive_integer(value, key, ctx)) {
                out.workers = static_cast<unsigned>(*v);
            }
        } else if (key == "web_ui") {
            if (auto text = scalar(value, key, ctx)) {
                out.webui = http::parse_webui_mode(*text);
                if (!out.webui) {
                    throw config_error{
                        fmt_error("{}: 'web_ui' must be disable, loopback-only or enable-for-all, "
                                  "got '{}'",
                                  name, *text)};
                }
            }
        } else if (key == "cors") {
            out.cors = parse_cors(value, ctx);
        } else if (key == "cache_control") {
            out.cache_control = scalar(value, key, ctx);
            if (out.cache_control && !http::is_valid_cache_control(*out.cache_control)) {
                throw config_error{
                    fmt_error("{}: 'cache_control' must be a comma-separated list of Cache-Control "
                              "directives such as 'public, max-age=3600', got '{}'",
                              name, *out.cache_control)};
            }
        } else if (key == "preferred_encoding") {
            if (auto text = scalar(value, key, ctx)) {
                auto e = http::parse_encoding(*text);
                if (!e || *e == http::encoding::identity || *e == http::encoding::zstd) {
                    throw config_error{fmt_error(
                        "{}: 'preferred_encoding' must be gzip, brotli or br, got '{}'", name, *text)};
                }
                out.preferred_encoding = e;
            }
        } else if (key == "max_connections") {
            if (auto v = positive_integer(value, key, ctx)) {
                out.max_connections = static_cast<std::size_t>(*v);
            }
        } else if (key == "access_log") {
            out.access_log = boolean(value, key, ctx);
        } else if (key == "observability") {
            parse_observability(value, ctx, out);
        } else if (key == "postgres") {
            if (value.IsSequence()) {
                for (std::size_t i = 0; i < value.size(); ++i) {
                    out.postgres.push_back(parse_postgres(value[i], fmt::format("postgres[{}]", i), ctx));
                }
            } else if (!value.IsNull()) {
                out.postgres.push_back(parse_postgres(value, "postgres", ctx));
            }
        } else if (contains(martin_top_level_keys, key)) {
            spdlog::warn("{}: configuration key '{}' is not supported by kachel yet and is ignored", name,
                         key);
        } else {
            spdlog::warn("{}: ignoring unrecognized configuration key '{}'", name, key);
        }
    }
    return out;
}

file_settings load_config_file(std::string const& path, env_lookup const& lookup) {
    std::ifstream in{path};
    if (!in) {
        throw config_error{
            fmt_error("Cannot read the config file '{}': check the path given with -c/--config", path)};
    }
    std::stringstream text;
    text << in.rdbuf();
    return parse_config(text.str(), path, lookup);
}

} // namespace kachel::config
