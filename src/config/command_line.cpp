#include "config/config_file.hpp"
#include "config/postgres_section.hpp"
#include "config/settings.hpp"
#include "core/error.hpp"
#include "http/router.hpp"

#include <CLI/CLI.hpp>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <cstring>

#ifndef KACHEL_VERSION
#define KACHEL_VERSION "0.0.0"
#endif

namespace kachel::config {

namespace {

/// The tile cache settings from the `cache` section and the flags (martin-compat 9): tiles get
/// `tile_size_mb`, else half of `size_mb` (512 by default); 1 MB = 1,000,000 bytes.
tiles::tile_cache_options resolve_cache(cache_file_settings const& file) {
    tiles::tile_cache_options out;
    std::int64_t const size_mb = file.size_mb.value_or(512);
    std::int64_t const tile_mb = file.tile_size_mb.value_or(size_mb / 2);
    out.max_bytes = file.disabled || size_mb == 0 ? 0 : static_cast<std::size_t>(tile_mb) * 1'000'000;
    if (auto const expiry = file.tile_expiry ? file.tile_expiry : file.expiry) {
        out.expiry = std::chrono::duration_cast<std::chrono::milliseconds>(*expiry);
    }
    out.minzoom = file.minzoom;
    out.maxzoom = file.maxzoom;
    return out;
}

} // namespace

bool is_connection_string(std::string_view arg) noexcept {
    return arg.starts_with("postgres://") || arg.starts_with("postgresql://") ||
           arg.find('=') != std::string_view::npos;
}

std::string mask_password(std::string_view text) {
    std::string out{text};
    auto const scheme = out.find("://");
    auto const from = scheme == std::string::npos ? 0 : scheme + 3;
    auto const at = out.find('@', from);
    if (at == std::string::npos) {
        return out;
    }
    auto const colon = out.find(':', from);
    if (colon != std::string::npos && colon < at) {
        out.replace(colon + 1, at - colon - 1, "****");
    }
    return out;
}

command_line parse_command_line(int argc, char const* const* argv) {
    command_line result;
    auto& s = result.values;
    CLI::App app{"kachel: a vector tile server for PostGIS, compatible with Martin", "kachel"};
    app.set_version_flag("-V,--version", "kachel " KACHEL_VERSION);
    std::vector<std::string> positional;
    std::optional<std::string> config_file;
    cache_file_settings cache_file;
    std::optional<std::string> listen;
    std::optional<unsigned> workers;
    std::optional<std::size_t> pool_size;
    std::optional<unsigned> retry_timeout;
    app.add_option("connection", positional,
                   "PostgreSQL connection strings (postgresql://... or key=value). Without any, DATABASE_URL "
                   "is used. libpq reads every other setting (sslmode, PGSSLROOTCERT, ...) as psql does");
    app.add_option("-c,--config", config_file, "YAML config file (Martin's format)");
    app.add_option("-l,--listen-addresses", listen,
                   "Address to listen on, HOST:PORT [default: 0.0.0.0:3000]");
    app.add_option("-p,--pool-size", pool_size, "Connections per database [default: 20]");
    app.add_option("-W,--workers", workers, "Worker threads [default: number of cores]");
    app.add_option("--ca-root-file", s.ca_root_file,
                   "Trusted CA certificate(s) for the server certificate, for every connection that does not "
                   "set sslrootcert itself (overrides ssl_root_cert and PGSSLROOTCERT); 'system' trusts the "
                   "system CAs and requires verify-full");
    app.add_option("--retry-timeout", retry_timeout,
                   "Seconds to keep retrying a database that is not reachable yet at startup [default: 30]");
    std::optional<std::string> webui;
    app.add_option("-u,--webui", webui,
                   "Who gets the web UI at /: disable, loopback-only (default: clients on this machine) or "
                   "enable-for-all")
        ->check(CLI::IsMember({"disable", "loopback-only", "enable-for-all"}));
    std::optional<std::string> preferred_encoding;
    app.add_option("--preferred-encoding", preferred_encoding,
                   "Encoding used when the client accepts several equally: gzip (default), brotli or br")
        ->check(CLI::IsMember({"gzip", "brotli", "br"}));
    app.add_flag("--no-prepared-statements", s.no_prepared_statements,
                 "Send tile queries as unnamed statements and keep no session state, for PgBouncer in "
                 "transaction mode (overrides postgres.prepared_statements)");
    std::optional<unsigned> keep_alive;
    app.add_option("-k,--keep-alive", keep_alive,
                   "Seconds an idle HTTP connection is kept open between requests [default: 75]");
    std::optional<std::int64_t> cache_size;
    app.add_option("-C,--cache-size", cache_size,
                   "Cache size in MB (1,000,000 bytes); tiles get half of it, 0 disables caching "
                   "[default: 512]");
    std::optional<unsigned> cache_expiry;
    app.add_option("--cache-expiry", cache_expiry,
                   "Seconds a cached tile is served before it is made again [default: until evicted]");
    std::optional<std::size_t> max_connections;
    app.add_option("--max-connections", max_connections,
                   "HTTP connections served at once; more get 503 [default: 8192]");
    bool no_access_log = false;
    app.add_flag("--no-access-log", no_access_log, "Do not log one line per request");
    app.add_flag("--check-connection", s.check_connection,
                 "Connect once to every configured database, print versions, TLS and certificates, and exit "
                 "(0 when all connect)");
    std::optional<int> default_srid;
    app.add_option("-d,--default-srid", default_srid,
                   "SRID for geometry columns whose SRID is 0 (otherwise they are skipped)");
    std::optional<std::string> auto_bounds;
    app.add_option(
           "-b,--auto-bounds", auto_bounds,
           "How table bounds are found: quick (estimate, then exact; 5 s limit), calc (exact) or skip "
           "[default: quick]")
        ->check(CLI::IsMember({"quick", "calc", "skip"}));
    std::optional<std::uint64_t> max_feature_count;
    app.add_option("-m,--max-feature-count", max_feature_count,
                   "Most features per table tile (a LIMIT on the tile query) [default: unlimited]");
    std::optional<std::string> on_invalid;
    app.add_option(
           "--on-invalid", on_invalid,
           "What to do with configured sources that cannot be published: abort (default) or warn (skip "
           "them)")
        ->check(CLI::IsMember({"abort", "warn", "warning", "warnings", "continue", "ignore"}));
    app.add_option(
        "--save-config", s.save_config,
        "After publishing, write the resolved configuration (every source spelled out, no passwords) "
        "to FILE, or to stdout with -");
    std::optional<unsigned> shutdown_timeout;
    app.add_option(
        "--shutdown-timeout", shutdown_timeout,
        "Seconds SIGTERM/SIGINT waits for requests in flight before cancelling their queries [default: 10]");
    std::optional<std::string> route_prefix;
    app.add_option("--route-prefix", route_prefix, "Serve every route under this path, e.g. /tiles");
    std::optional<std::string> base_path;
    app.add_option("--base-path", base_path,
                   "Path written into TileJSON tile URLs instead of the route prefix");
    try {
        app.parse(argc, argv);
    } catch (CLI::ParseError const& e) {
        result.exit_code = app.exit(e);
        return result;
    }

    std::vector<std::string> unrecognized;
    for (std::size_t i = 0; i < positional.size(); ++i) {
        if (is_connection_string(positional[i])) {
            postgres_settings entry;
            entry.connection_string = positional[i];
            entry.origin = fmt::format("command line argument {}", i + 1);
            s.postgres.push_back(std::move(entry));
        } else {
            unrecognized.push_back(mask_password(positional[i]));
        }
    }
    if (!unrecognized.empty()) {
        throw config_error{
            fmt_error("Unrecognizable connection strings: [{}]. Give PostgreSQL connections as "
                      "postgresql://user@host/db?sslmode=verify-full or as key=value pairs",
                      fmt::join(unrecognized, ", "))};
    }
    if (config_file) {
        if (!s.postgres.empty()) {
            throw config_error{"The --config file and connection arguments cannot be used together: put the "
                               "connections in the config file's 'postgres' section, or drop --config"};
        }
        auto file = load_config_file(*config_file);
        s.postgres = std::move(file.postgres);
        if (file.listen_addresses) {
            s.listen_addresses = *file.listen_addresses;
        }
        if (file.workers) {
            s.workers = *file.workers;
        }
        if (file.webui) {
            s.http.webui = *file.webui;
        }
        if (file.cors) {
            s.http.cors = *file.cors;
        }
        if (file.cache_control) {
            s.http.cache_control = file.cache_control;
        }
        if (file.preferred_encoding) {
            s.http.preferred_encoding = *file.preferred_encoding;
        }
        if (file.access_log) {
            s.http.access_log = *file.access_log;
        }
        s.metric_labels = std::move(file.metric_labels);
        cache_file = file.cache;
        if (file.keep_alive) {
            s.keep_alive = *file.keep_alive;
        }
        if (file.route_prefix) {
            s.http.route_prefix = *file.route_prefix;
        }
        s.http.base_path = file.base_path;
        if (file.on_invalid) {
            s.on_invalid = *file.on_invalid;
        }
        if (file.shutdown_timeout) {
            s.shutdown_timeout = *file.shutdown_timeout;
        }
        if (file.max_connections) {
            s.max_connections = *file.max_connections;
        }
    } else if (s.postgres.empty()) {
        if (char const* url = std::getenv("DATABASE_URL"); url != nullptr && *url != '\0') {
            if (is_connection_string(url)) {
                postgres_settings entry;
                entry.connection_string = url;
                entry.origin = "DATABASE_URL";
                s.postgres.push_back(std::move(entry));
            } else {
                spdlog::warn("DATABASE_URL is not a PostgreSQL connection string, ignored");
            }
        }
    }
    if (!config_file && !default_srid) {
        if (char const* env = std::getenv("DEFAULT_SRID"); env != nullptr && *env != '\0') {
            try {
                std::size_t used = 0;
                int const value = std::stoi(env, &used);
                if (used != std::strlen(env) || value <= 0) {
                    throw std::invalid_argument{env};
                }
                default_srid = value;
            } catch (std::exception const&) {
                spdlog::warn("DEFAULT_SRID is not a positive integer ('{}'), ignored", env);
            }
        }
    }
    if (default_srid) {
        if (*default_srid <= 0) {
            throw config_error{"--default-srid must be a positive SRID such as 4326"};
        }
        s.default_srid = default_srid;
    }
    if (auto_bounds) {
        s.auto_bounds = parse_bounds_mode(*auto_bounds);
    }
    if (max_feature_count) {
        if (*max_feature_count == 0) {
            throw config_error{"--max-feature-count must be at least 1"};
        }
        s.max_feature_count = max_feature_count;
    }
    if (on_invalid) {
        s.on_invalid = *parse_invalid_policy(*on_invalid);
    }
    auto const path_flag = [](char const* flag, std::string const& value) {
        auto normalized = http::normalize_prefix(value);
        if (!normalized) {
            throw config_error{
                fmt_error("{}: Base path must be a valid URL path, and must begin with a '/' symbol, "
                          "but is '{}'",
                          flag, value)};
        }
        return *normalized;
    };
    if (route_prefix) {
        s.http.route_prefix = path_flag("--route-prefix", *route_prefix);
    }
    if (base_path) {
        s.http.base_path = path_flag("--base-path", *base_path);
    }
    if (config_file) {
        // Martin's rule: these flags override the key in every postgres entry of the file.
        for (auto const& [flag, given] : {std::pair{"--default-srid", default_srid.has_value()},
                                          std::pair{"--auto-bounds", auto_bounds.has_value()},
                                          std::pair{"--max-feature-count", max_feature_count.has_value()},
                                          std::pair{"--pool-size", pool_size.has_value()},
                                          std::pair{"--ca-root-file", s.ca_root_file.has_value()}}) {
            if (given) {
                spdlog::info("{} overrides the config file's value for every postgres connection", flag);
            }
        }
    }
    if (shutdown_timeout) {
        s.shutdown_timeout = std::chrono::seconds{*shutdown_timeout};
    }
    if (listen) {
        s.listen_addresses = *listen;
    }
    if (webui) {
        s.http.webui = *http::parse_webui_mode(*webui);
    }
    if (preferred_encoding) {
        s.http.preferred_encoding = *http::parse_encoding(*preferred_encoding);
    }
    if (no_access_log) {
        s.http.access_log = false;
    }
    if (max_connections) {
        if (*max_connections == 0) {
            throw config_error{"--max-connections must be at least 1"};
        }
        s.max_connections = *max_connections;
    }
    if (workers) {
        s.workers = *workers;
    }
    if (cache_size) {
        if (*cache_size < 0) {
            throw config_error{"--cache-size must be 0 (no cache) or more"};
        }
        cache_file.size_mb = *cache_size;
        cache_file.tile_size_mb.reset();
        cache_file.disabled = *cache_size == 0;
    }
    if (keep_alive) {
        s.keep_alive = std::chrono::seconds{*keep_alive};
    }
    if (cache_expiry) {
        cache_file.tile_expiry = std::chrono::seconds{*cache_expiry};
    }
    s.cache = resolve_cache(cache_file);
    if (pool_size) {
        if (*pool_size == 0) {
            throw config_error{"--pool-size must be at least 1"};
        }
        s.pool_size = pool_size;
    }
    if (retry_timeout) {
        s.retry_timeout = std::chrono::seconds{*retry_timeout};
    }
    return result;
}

} // namespace kachel::config
