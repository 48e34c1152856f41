#include "config/config_file.hpp"

#include "config/postgres_section.hpp"
#include "core/error.hpp"
#include "http/router.hpp"

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
constexpr std::array<std::string_view, 9> martin_top_level_keys{
    "pmtiles", "mbtiles", "sprites", "fonts", "styles", "srv", "cog", "tilejson_url_version_param"};

template <std::size_t N>
bool contains(std::array<std::string_view, N> const& keys, std::string_view key) {
    return std::find(keys.begin(), keys.end(), key) != keys.end();
}

using context = yaml_context;

/// `route_prefix` / `base_path`: a path starting with `/`.
std::string prefix(YAML::Node const& node, std::string const& key, context const& ctx) {
    auto const text = scalar(node, key, ctx).value_or("/");
    auto normalized = http::normalize_prefix(text);
    if (!normalized) {
        throw config_error{
            fmt_error("{}: Base path must be a valid URL path, and must begin with a '/' symbol, but "
                      "'{}' is '{}'",
                      ctx.file, key, text)};
    }
    return *normalized;
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

/// `cache: disable | {size_mb, tile_size_mb, expiry, tile_expiry, minzoom, maxzoom}`.
void parse_cache(YAML::Node const& node, context const& ctx, cache_file_settings& out) {
    out.disabled = cache_disabled(node, "cache", ctx, "size_mb, tile_size_mb, tile_expiry, minzoom, maxzoom");
    if (out.disabled) {
        return;
    }
    for (auto const& entry : node) {
        auto const key = entry.first.as<std::string>();
        auto const dotted = "cache." + key;
        if (key == "size_mb") {
            out.size_mb = integer_in(entry.second, dotted, ctx, 0, 1'000'000);
        } else if (key == "tile_size_mb") {
            out.tile_size_mb = integer_in(entry.second, dotted, ctx, 0, 1'000'000);
        } else if (key == "expiry") {
            out.expiry = duration(entry.second, dotted, ctx);
        } else if (key == "tile_expiry") {
            out.tile_expiry = duration(entry.second, dotted, ctx);
        } else if (key == "minzoom") {
            out.minzoom = zoom(entry.second, dotted, ctx);
        } else if (key == "maxzoom") {
            out.maxzoom = zoom(entry.second, dotted, ctx);
        } else if (key == "idle_timeout" || key == "tile_idle_timeout") {
            spdlog::warn("{}: configuration key '{}' is not supported by kachel yet and is ignored (use "
                         "tile_expiry)",
                         ctx.file, dotted);
        } else {
            warn_unknown_key(dotted, ctx);
        }
    }
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
        } else if (key == "shutdown_timeout") {
            out.shutdown_timeout = duration(value, key, ctx);
        } else if (key == "keep_alive") {
            out.keep_alive = duration(value, key, ctx);
        } else if (key == "route_prefix") {
            out.route_prefix = prefix(value, key, ctx);
        } else if (key == "base_path") {
            out.base_path = prefix(value, key, ctx);
        } else if (key == "on_invalid") {
            if (auto text = scalar(value, key, ctx)) {
                out.on_invalid = parse_invalid_policy(*text);
                if (!out.on_invalid) {
                    throw config_error{
                        fmt_error("{}: 'on_invalid' must be abort or warn, got '{}'", name, *text)};
                }
            }
        } else if (key == "observability") {
            parse_observability(value, ctx, out);
        } else if (key == "cache") {
            parse_cache(value, ctx, out.cache);
        } else if (key == "cache_size_mb") {
            spdlog::warn("{}: 'cache_size_mb' is deprecated, use cache.size_mb", name);
            out.cache.size_mb = integer_in(value, key, ctx, 0, 1'000'000);
        } else if (key == "tile_cache_size_mb") {
            spdlog::warn("{}: 'tile_cache_size_mb' is deprecated, use cache.tile_size_mb", name);
            out.cache.tile_size_mb = integer_in(value, key, ctx, 0, 1'000'000);
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
