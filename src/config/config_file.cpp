#include "config/config_file.hpp"

#include "config/martin_keys.hpp"
#include "config/postgres_section.hpp"
#include "core/error.hpp"

#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <fstream>
#include <sstream>

namespace kachel::config {

namespace {

/// Martin keys kachel knows but does not implement yet: accepted with a warning, so a Martin
/// config file starts.
using context = yaml_context;

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

/// A table setting's value, as given (after `${VAR}` expansion); null and empty give nothing.
void give(setting const& target, YAML::Node const& node, std::string const& dotted, context const& ctx,
          std::vector<given_value>& out) {
    if (auto text = scalar(node, dotted, ctx)) {
        out.push_back(given_value{&target, std::move(*text), value_origin{ctx.file, dotted}});
    }
}

/// `cache: disable | {size_mb, tile_size_mb, expiry, tile_expiry, idle_timeout, tile_idle_timeout, minzoom,
/// maxzoom}`.
void parse_cache(YAML::Node const& node, context const& ctx, std::vector<given_value>& out) {
    if (cache_disabled(
            node, "cache", ctx,
            "size_mb, tile_size_mb, expiry, tile_expiry, idle_timeout, tile_idle_timeout, minzoom, "
            "maxzoom")) {
        out.push_back(given_value{find_setting("cache.size_mb", setting_scope::server), "0",
                                  value_origin{ctx.file, "cache"}});
        return;
    }
    for (auto const& entry : node) {
        auto const dotted = "cache." + entry.first.as<std::string>();
        if (auto const* known = find_setting(dotted, setting_scope::server)) {
            give(*known, entry.second, dotted, ctx, out);
        } else {
            unhandled_key(dotted, entry.second, ctx);
        }
    }
}

/// kachel reads PMTiles archives from `http(s)://` URLs, and no archive from an object store:
/// said, never skipped.
void refuse_remote(std::string const& path, std::string const& where, std::string_view section,
                   tiles::remote_archive_settings const& remote) {
    if (!tiles::is_remote_archive(path)) {
        return;
    }
    if (section == "mbtiles") {
        throw config_error{fmt_error(
            "{}: {} is a URL; MBTiles files are read from local disks only: download it", where, path)};
    }
    if (!tiles::is_http_url(path)) {
        throw config_error{
            fmt_error("{}: {}: {}", where, path.substr(0, path.find('?')), tiles::object_store_refusal)};
    }
    if (path.starts_with("http://") && !remote.allow_http) {
        throw config_error{
            fmt_error("{}: {} is an http:// URL and pmtiles.allow_http is false: use https://, or "
                      "set allow_http: true",
                      where, path.substr(0, path.find('?')))};
    }
}

/// True for a key of Martin's configuration reference (whatever kachel does with it).
bool is_martin_key(std::string const& dotted) {
    auto const pattern = key_pattern(dotted);
    auto const keys = martin_keys();
    return std::any_of(keys.begin(), keys.end(), [&](martin_key const& k) { return k.path == pattern; });
}

/// The `pmtiles` keys for archives at URLs. False for a key that is not one of them.
bool remote_key(std::string const& key, YAML::Node const& value, std::string const& dotted,
                context const& ctx, tiles::remote_archive_settings& out) {
    if (key == "allow_http") {
        out.allow_http = boolean(value, dotted, ctx).value_or(true);
    } else if (key == "allow_invalid_certificates") {
        out.allow_invalid_certificates = boolean(value, dotted, ctx).value_or(false);
    } else if (key == "ssl_root_cert") {
        out.ssl_root_cert = scalar(value, dotted, ctx);
    } else if (key == "timeout") {
        out.timeout = duration(value, dotted, ctx);
    } else if (key == "connect_timeout") {
        out.connect_timeout = duration(value, dotted, ctx);
    } else if (key == "pool_idle_timeout") {
        out.pool_idle_timeout = duration(value, dotted, ctx);
    } else if (key == "reload_interval") {
        out.reload_interval = duration(value, dotted, ctx);
    } else if (key == "pool_max_idle_per_host") {
        out.pool_max_idle_per_host = positive_integer(value, dotted, ctx);
    } else {
        return false;
    }
    return true;
}

/// `pmtiles.directory_cache: MB | disable | {size_mb: MB}` in megabytes (0: off).
std::uint64_t directory_cache(YAML::Node const& node, std::string const& key, context const& ctx) {
    YAML::Node size = node;
    if (node.IsMap()) {
        for (auto const& entry : node) {
            auto const name = entry.first.as<std::string>();
            if (name == "size_mb") {
                size = entry.second;
            } else {
                spdlog::warn(
                    "{}: '{}.{}' is not supported by kachel and is ignored: the directory cache only "
                    "has a size",
                    ctx.file, key, name);
            }
        }
    }
    if (size.IsScalar() && (size.Scalar() == "disable" || size.Scalar() == "0")) {
        return 0;
    }
    auto const text = size.IsScalar() ? size.Scalar() : std::string{};
    std::uint64_t mb = 0;
    auto const [end, ec] = std::from_chars(text.data(), text.data() + text.size(), mb);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) {
        throw config_error{fmt_error("{}: '{}' is '{}'; it takes megabytes (32), disable, or {{size_mb: 32}}",
                                     ctx.file, key, text)};
    }
    return mb;
}

/// Paths under `key`: one string or a list of them.
void archive_paths(YAML::Node const& node, std::string const& key, context const& ctx,
                   std::vector<std::string>& out) {
    if (node.IsSequence()) {
        for (std::size_t i = 0; i < node.size(); ++i) {
            if (auto v = scalar(node[i], fmt::format("{}[{}]", key, i), ctx)) {
                out.push_back(std::move(*v));
            }
        }
    } else if (auto v = scalar(node, key, ctx)) {
        out.push_back(std::move(*v));
    }
}

/// `mbtiles: path | [paths] | {paths: path | [paths], sources: {id: path | {path: path}}}`.
tiles::archive_config parse_archives(YAML::Node const& node, std::string const& section, context const& ctx) {
    tiles::archive_config out;
    out.origin = fmt::format("{} {}", ctx.file, section);
    if (!node.IsMap()) {
        archive_paths(node, section, ctx, out.paths);
    }
    for (auto const& entry : node.IsMap() ? node : YAML::Node{YAML::NodeType::Map}) {
        auto const key = entry.first.as<std::string>();
        auto dotted = section;
        dotted += '.';
        dotted += key;
        if (key == "paths") {
            archive_paths(entry.second, dotted, ctx, out.paths);
        } else if (key == "sources" && entry.second.IsMap()) {
            for (auto const& source : entry.second) {
                auto const id = source.first.as<std::string>();
                auto const where = fmt::format("{}.{}", dotted, id);
                std::optional<std::string> path;
                if (source.second.IsMap()) {
                    for (auto const& field : source.second) {
                        auto const name = field.first.as<std::string>();
                        if (name != "path") {
                            throw config_error{
                                fmt_error("{}: '{}.{}' is not a key of an archive source: only path is "
                                          "(an unknown key could change what is served)",
                                          ctx.file, where, name)};
                        }
                        path = scalar(field.second, where + ".path", ctx);
                    }
                } else {
                    path = scalar(source.second, where, ctx);
                }
                if (!path) {
                    throw config_error{fmt_error("{}: '{}' needs a path: {}: /data/file{}", ctx.file, where,
                                                 id, section == "mbtiles" ? ".mbtiles" : ".pmtiles")};
                }
                out.sources.push_back({std::move(*path), id});
            }
        } else if (key == "directory_cache" && section == "pmtiles") {
            out.directory_cache_mb = directory_cache(entry.second, dotted, ctx);
        } else if (section == "pmtiles" && remote_key(key, entry.second, dotted, ctx, out.remote)) {
            // read into out.remote
        } else if (section == "pmtiles" && !is_martin_key(dotted)) {
            // Martin hands other keys to its object store (S3, GCS, Azure credentials and
            // regions): they decide what is read, and kachel reads no object store.
            throw config_error{fmt_error("{}: '{}' is not a pmtiles key kachel reads (it reads archives from "
                                         "files and http(s):// URLs; object-store options such as S3's are "
                                         "not supported): remove it; see docs/config.md for the keys",
                                         ctx.file, dotted)};
        } else {
            unhandled_key(dotted, entry.second, ctx);
        }
    }
    for (auto const& path : out.paths) {
        refuse_remote(path, fmt::format("{}: {}", ctx.file, section), section, out.remote);
    }
    for (auto const& source : out.sources) {
        refuse_remote(source.path, fmt::format("{}: {}.sources.{}", ctx.file, section, source.id), section,
                      out.remote);
    }
    return out;
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
                if (name.empty() ||
                    !(std::isalpha(static_cast<unsigned char>(name[0])) != 0 || name[0] == '_') ||
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
        if (key == "cors") {
            out.cors = parse_cors(value, ctx);
        } else if (key == "observability") {
            parse_observability(value, ctx, out);
        } else if (key == "cache") {
            parse_cache(value, ctx, out.values);
        } else if (auto const* known = find_setting(key, setting_scope::server);
                   known != nullptr && known->key == key && key.find('.') == std::string::npos) {
            give(*known, value, key, ctx, out.values);
        } else if (known != nullptr && known->deprecated_key == key) {
            spdlog::warn("{}: '{}' is deprecated, use {}", name, key, known->key);
            give(*known, value, key, ctx, out.values);
        } else if (key == "mbtiles") {
            out.mbtiles = parse_archives(value, key, ctx);
        } else if (key == "pmtiles") {
            out.pmtiles = parse_archives(value, key, ctx);
        } else if (key == "postgres") {
            if (value.IsSequence()) {
                for (std::size_t i = 0; i < value.size(); ++i) {
                    out.postgres.push_back(parse_postgres(value[i], fmt::format("postgres[{}]", i), ctx));
                }
            } else if (!value.IsNull()) {
                out.postgres.push_back(parse_postgres(value, "postgres", ctx));
            }
        } else {
            unhandled_key(key, value, ctx);
        }
    }
    settings checked; // every value is checked here, where the file is read
    out.apply_to(checked);
    return out;
}

void file_settings::apply_to(settings& s) const {
    s.postgres = postgres;
    apply_settings(s, values);
    if (cors) {
        s.http.cors = *cors;
    }
    s.metric_labels = metric_labels;
    if (mbtiles) {
        s.mbtiles = *mbtiles;
    }
    if (pmtiles) {
        s.pmtiles = *pmtiles;
    }
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
