#include "config/setting.hpp"

#include "config/postgres_section.hpp"
#include "core/error.hpp"
#include "core/text.hpp"
#include "http/router.hpp"

#include <algorithm>
#include <array>

namespace kachel::config {

namespace {

// Parsers of the value kinds that several settings share.

std::string_view nonempty(std::string_view text, value_origin const& origin) {
    if (text.empty()) {
        throw config_error{fmt_error("{} needs a value", origin.describe())};
    }
    return text;
}

std::string url_path(std::string_view text, value_origin const& origin) {
    auto normalized = http::normalize_prefix(text);
    if (!normalized) {
        throw config_error{
            fmt_error("{}: Base path must be a valid URL path, and must begin with a '/' symbol, but is '{}'",
                      origin.describe(), text)};
    }
    return *normalized;
}

int zoom_level(std::string_view text, value_origin const& origin) {
    return static_cast<int>(parse_integer(text, origin, 0, 30));
}

std::int64_t megabytes(std::string_view text, value_origin const& origin) {
    return parse_integer(text, origin, 0, 1'000'000);
}

int srid(std::string_view text, value_origin const& origin) {
    return static_cast<int>(parse_integer(text, origin, 1, 999999));
}

postgis::bounds_mode bounds(std::string_view text, value_origin const& origin) {
    auto mode = parse_bounds_mode(text);
    if (!mode) {
        throw config_error{fmt_error("{} must be quick, calc or skip, got '{}'", origin.describe(), text)};
    }
    return *mode;
}

std::chrono::milliseconds positive_duration(std::string_view text, value_origin const& origin) {
    auto const value = parse_duration_ms(text, origin);
    if (value.count() == 0) {
        throw config_error{fmt_error("{} must be more than 0", origin.describe())};
    }
    return value;
}

pg::sourced_value tls_file(std::string_view text, value_origin const& origin) {
    return pg::sourced_value{std::string{nonempty(text, origin)}, origin.channel()};
}

// Writers of the effective values.

std::string number(auto value) {
    return fmt::format("{}", value);
}

std::string boolean_text(bool value) {
    return value ? "true" : "false";
}

template <class TValue>
std::string optional_text(std::optional<TValue> const& value) {
    return value ? number(*value) : std::string{};
}

std::string optional_duration(std::optional<std::chrono::seconds> const& value) {
    return value ? duration_text(*value) : std::string{};
}

std::string millis_text(std::chrono::milliseconds value) {
    return duration_text(value);
}

std::string optional_millis(std::optional<std::chrono::milliseconds> const& value) {
    return value ? duration_text(*value) : std::string{};
}

/// `retry_timeout`: a duration, or Martin's `infinite`.
std::chrono::seconds retry_timeout(std::string_view text, value_origin const& origin) {
    return iequals(text, "infinite") ? settings::infinite_retry : parse_duration(text, origin);
}

std::string retry_timeout_text(std::chrono::seconds value) {
    return value == settings::infinite_retry ? std::string{"infinite"} : duration_text(value);
}

std::string_view bounds_name(postgis::bounds_mode m) {
    switch (m) {
    case postgis::bounds_mode::calc:
        return "calc";
    case postgis::bounds_mode::skip:
        return "skip";
    case postgis::bounds_mode::quick:
        break;
    }
    return "quick";
}

using scope = setting_scope;
using form = flag_form;
using origin_t = value_origin const&;
using text_t = std::string_view;

// The table. Defaults are not written here: they are the member initializers of `settings`
// (and the `default_*` constants), read back through `show`.
std::array const table{
    setting{.scope = scope::action,
            .flags = "-c,--config",
            .type = "path",
            .help = "YAML config file (Martin's format)"},
    setting{.scope = scope::action,
            .flags = "--check-connection",
            .form = form::on_switch,
            .type = "flag",
            .help = "Connect once to every configured database, print versions, TLS and certificates, and "
                    "exit (0 when all connect)",
            .set = [](settings& s, text_t, origin_t) { s.check_connection = true; }},
    setting{.scope = scope::action,
            .flags = "--print-change-triggers",
            .form = form::on_switch,
            .type = "flag",
            .help = "Print the SQL that makes the published tables notify kachel of their changes (for a DBA "
                    "to review and run; see notify_changes), and exit",
            .set = [](settings& s, text_t, origin_t) { s.print_change_triggers = true; }},
    setting{
        .scope = scope::action,
        .flags = "--save-config",
        .type = "FILE or -",
        .help = "After publishing, write the resolved configuration (every source spelled out, no "
                "passwords) to FILE, or to stdout with -",
        .set = [](settings& s, text_t text, origin_t o) { s.save_config = std::string{nonempty(text, o)}; }},
    setting{.key = "listen_addresses",
            .flags = "-l,--listen-addresses",
            .type = "HOST:PORT",
            .help = "Address to listen on; [v6]:port for IPv6, port 0 for any free port",
            .sample = "127.0.0.1:3999",
            .set = [](settings& s, text_t text, origin_t o) { s.listen_addresses = nonempty(text, o); },
            .show = [](settings const& s, std::size_t) { return s.listen_addresses; }},
    setting{.key = "worker_processes",
            .flags = "-W,--workers",
            .type = "integer ≥ 1",
            .help = "Threads running the event loops (HTTP and database I/O)",
            .no_default = "number of cores",
            .sample = "3",
            .set = [](settings& s, text_t text,
                      origin_t o) { s.workers = static_cast<unsigned>(parse_integer(text, o, 1, 1024)); },
            .show = [](settings const& s, std::size_t) { return s.workers == 0 ? "" : number(s.workers); }},
    setting{.key = "web_ui",
            .flags = "-u,--webui",
            .type = "disable, loopback-only, enable-for-all",
            .help = "Who gets the web UI at /; other clients get a plain-text banner",
            .sample = "enable-for-all",
            .set =
                [](settings& s, text_t text, origin_t o) {
                    auto mode = http::parse_webui_mode(text);
                    if (!mode) {
                        throw config_error{
                            fmt_error("{} must be disable, loopback-only or enable-for-all, got '{}'",
                                      o.describe(), text)};
                    }
                    s.http.webui = *mode;
                },
            .show = [](settings const& s,
                       std::size_t) { return std::string{http::webui_mode_name(s.http.webui)}; }},
    setting{.key = "cache_control",
            .type = "Cache-Control directives",
            .help = "Added to responses that set no Cache-Control of their own",
            .no_default = "none",
            .sample = "public, max-age=60",
            .set =
                [](settings& s, text_t text, origin_t o) {
                    if (!http::is_valid_cache_control(text)) {
                        throw config_error{
                            fmt_error("{} must be a comma-separated list of Cache-Control directives such "
                                      "as 'public, max-age=3600', got '{}'",
                                      o.describe(), text)};
                    }
                    s.http.cache_control = std::string{text};
                },
            .show = [](settings const& s, std::size_t) { return s.http.cache_control.value_or(""); }},
    setting{.key = "preferred_encoding",
            .flags = "--preferred-encoding",
            .type = "gzip, brotli, br",
            .help = "The encoding used when a client accepts several equally",
            .sample = "br",
            .set =
                [](settings& s, text_t text, origin_t o) {
                    auto e = http::parse_encoding(text);
                    if (!e || *e == http::encoding::identity || *e == http::encoding::zstd) {
                        throw config_error{
                            fmt_error("{} must be gzip, brotli or br, got '{}'", o.describe(), text)};
                    }
                    s.http.preferred_encoding = *e;
                },
            .show = [](settings const& s,
                       std::size_t) { return std::string{http::encoding_token(s.http.preferred_encoding)}; }},
    setting{.key = "access_log",
            .flags = "--no-access-log",
            .form = form::off_switch,
            .type = "bool",
            .help = "One info line per request; sensitive query values are redacted",
            .sample = "false",
            .set = [](settings& s, text_t text, origin_t o) { s.http.access_log = parse_boolean(text, o); },
            .show = [](settings const& s, std::size_t) { return boolean_text(s.http.access_log); }},
    setting{.key = "keep_alive",
            .flags = "-k,--keep-alive",
            .type = "duration",
            .help = "How long an idle HTTP connection stays open between requests",
            .sample = "20s",
            .set = [](settings& s, text_t text, origin_t o) { s.keep_alive = parse_duration(text, o); },
            .show = [](settings const& s, std::size_t) { return duration_text(s.keep_alive); }},
    setting{
        .key = "tile_size_warning",
        .flags = "--tile-size-warning",
        .type = "bytes (500kB, 2MB; 0 off)",
        .help = "A tile a source makes bigger than this is logged as a warning, naming the source and "
                "z/x/y (at most one line every 10 seconds)",
        .sample = "1MB",
        .set = [](settings& s, text_t text,
                  origin_t o) { s.http.tile_size_warning = static_cast<std::size_t>(parse_size(text, o)); },
        .show = [](settings const& s, std::size_t) { return size_text(s.http.tile_size_warning); }},
    setting{.key = "max_connections",
            .flags = "--max-connections",
            .type = "integer ≥ 1",
            .help = "HTTP connections served at once; more get 503",
            .sample = "100",
            .set = [](settings& s, text_t text,
                      origin_t o) { s.max_connections = static_cast<std::size_t>(parse_positive(text, o)); },
            .show = [](settings const& s, std::size_t) { return number(s.max_connections); }},
    setting{.key = "shutdown_timeout",
            .flags = "--shutdown-timeout",
            .type = "duration",
            .help = "How long SIGTERM/SIGINT waits for requests in flight before cancelling their queries",
            .sample = "3s",
            .set = [](settings& s, text_t text, origin_t o) { s.shutdown_timeout = parse_duration(text, o); },
            .show = [](settings const& s, std::size_t) { return duration_text(s.shutdown_timeout); }},
    setting{.key = "route_prefix",
            .flags = "--route-prefix",
            .type = "path starting with /",
            .help = "Serve every route under this path, e.g. /tiles",
            .no_default = "none",
            .sample = "/tiles",
            .set = [](settings& s, text_t text, origin_t o) { s.http.route_prefix = url_path(text, o); },
            .show = [](settings const& s, std::size_t) { return s.http.route_prefix; }},
    setting{.key = "base_path",
            .flags = "--base-path",
            .type = "path starting with /",
            .help = "Path written into TileJSON tile URLs instead of the route prefix",
            .no_default = "none",
            .sample = "/maps",
            .set = [](settings& s, text_t text, origin_t o) { s.http.base_path = url_path(text, o); },
            .show =
                [](settings const& s, std::size_t) {
                    if (!s.http.base_path) {
                        return std::string{};
                    }
                    return s.http.base_path->empty() ? std::string{"/"} : *s.http.base_path;
                }},
    setting{.key = "on_invalid",
            .flags = "--on-invalid",
            .type = "abort, warn (also warning, warnings, continue, ignore)",
            .help = "What happens to configured sources that cannot be published: abort, or warn and skip "
                    "them",
            .sample = "warn",
            .set =
                [](settings& s, text_t text, origin_t o) {
                    auto policy = parse_invalid_policy(text);
                    if (!policy) {
                        throw config_error{
                            fmt_error("{} must be abort or warn, got '{}'", o.describe(), text)};
                    }
                    s.on_invalid = *policy;
                },
            .show =
                [](settings const& s, std::size_t) {
                    return std::string{s.on_invalid == postgis::invalid_policy::abort ? "abort" : "warn"};
                }},
    setting{.key = "cache.size_mb",
            .flags = "-C,--cache-size",
            .deprecated_key = "cache_size_mb",
            .type = "MB ≥ 0",
            .help = "Cache size in MB (1,000,000 bytes); tiles get half of it unless cache.tile_size_mb says "
                    "otherwise; 0 turns caching off",
            .sample = "100",
            .set =
                [](settings& s, text_t text, origin_t o) {
                    s.cache.size_mb = megabytes(text, o);
                    s.cache.tile_size_mb.reset(); // the tile share follows the new size unless set after
                },
            .show = [](settings const& s, std::size_t) { return number(s.cache.size_mb); }},
    setting{.key = "cache.tile_size_mb",
            .deprecated_key = "tile_cache_size_mb",
            .type = "MB ≥ 0",
            .help = "The tile cache's share of cache.size_mb",
            .no_default = "half of cache.size_mb",
            .sample = "10",
            .set = [](settings& s, text_t text, origin_t o) { s.cache.tile_size_mb = megabytes(text, o); },
            .show = [](settings const& s, std::size_t) { return optional_text(s.cache.tile_size_mb); }},
    setting{.key = "cache.expiry",
            .type = "duration",
            .help = "How long a cached tile is served before it is made again, when cache.tile_expiry is not "
                    "set",
            .no_default = "none",
            .sample = "1h",
            .set = [](settings& s, text_t text, origin_t o) { s.cache.expiry = parse_duration(text, o); },
            .show = [](settings const& s, std::size_t) { return optional_duration(s.cache.expiry); }},
    setting{
        .key = "cache.tile_expiry",
        .flags = "--cache-expiry",
        .type = "duration",
        .help = "How long a cached tile is served before it is made again",
        .no_default = "none",
        .sample = "2m",
        .set = [](settings& s, text_t text, origin_t o) { s.cache.tile_expiry = parse_duration(text, o); },
        .show = [](settings const& s, std::size_t) { return optional_duration(s.cache.tile_expiry); }},
    setting{.key = "cache.idle_timeout",
            .type = "duration",
            .help = "How long a cached tile may go unused before it is dropped, when cache.tile_idle_timeout "
                    "is not set",
            .no_default = "none",
            .sample = "30m",
            .set = [](settings& s, text_t text,
                      origin_t o) { s.cache.idle_timeout = parse_duration_ms(text, o); },
            .show = [](settings const& s, std::size_t) { return optional_millis(s.cache.idle_timeout); }},
    setting{
        .key = "cache.tile_idle_timeout",
        .type = "duration",
        .help = "How long a cached tile may go unused before it is dropped (time to idle)",
        .no_default = "none",
        .sample = "90s",
        .set = [](settings& s, text_t text,
                  origin_t o) { s.cache.tile_idle_timeout = parse_duration_ms(text, o); },
        .show = [](settings const& s, std::size_t) { return optional_millis(s.cache.tile_idle_timeout); }},
    setting{.key = "cache.minzoom",
            .type = "zoom 0-30",
            .help = "Tiles below this zoom are not cached",
            .no_default = "all zooms",
            .sample = "3",
            .set = [](settings& s, text_t text, origin_t o) { s.cache.minzoom = zoom_level(text, o); },
            .show = [](settings const& s, std::size_t) { return optional_text(s.cache.minzoom); }},
    setting{.key = "cache.maxzoom",
            .type = "zoom 0-30",
            .help = "Tiles above this zoom are not cached",
            .no_default = "all zooms",
            .sample = "12",
            .set = [](settings& s, text_t text, origin_t o) { s.cache.maxzoom = zoom_level(text, o); },
            .show = [](settings const& s, std::size_t) { return optional_text(s.cache.maxzoom); }},
    setting{.key = "pool_size",
            .scope = scope::connection,
            .flags = "-p,--pool-size",
            .type = "integer ≥ 1",
            .help = "Connections per database",
            .sample = "7",
            .set = [](settings& s, text_t text,
                      origin_t o) { s.pool_size = static_cast<std::size_t>(parse_positive(text, o)); },
            .set_entry = [](postgres_settings& e, text_t text,
                            origin_t o) { e.pool_size = static_cast<std::size_t>(parse_positive(text, o)); },
            .show = [](settings const& s, std::size_t i) { return number(s.pool_size_for(i)); }},
    setting{
        .key = "retry_timeout",
        .scope = scope::connection,
        .flags = "--retry-timeout,--pg-retry-timeout",
        .type = "duration or infinite",
        .help = "How long startup retries a database that is not reachable yet (--pg-retry-timeout is "
                "Martin's name)",
        .sample = "1m 30s",
        .set = [](settings& s, text_t text, origin_t o) { s.retry_timeout = retry_timeout(text, o); },
        .set_entry = [](postgres_settings& e, text_t text,
                        origin_t o) { e.retry_timeout = retry_timeout(text, o); },
        .show = [](settings const& s, std::size_t i) { return retry_timeout_text(s.retry_timeout_for(i)); }},
    setting{.key = "ssl_root_cert",
            .scope = scope::connection,
            .flags = "--ca-root-file",
            .type = "path or system",
            .help = "Trusted CA certificate(s) for the server certificate of every connection that does not "
                    "set sslrootcert itself (overrides ssl_root_cert and PGSSLROOTCERT); 'system' trusts the "
                    "system CAs and requires verify-full",
            .no_default = "libpq's",
            .sample = "/etc/ssl/kachel-ca.pem",
            .set = [](settings& s, text_t text,
                      origin_t o) { s.ca_root_file = std::string{nonempty(text, o)}; },
            .set_entry = [](postgres_settings& e, text_t text,
                            origin_t o) { e.ssl_root_cert = tls_file(text, o); },
            .show =
                [](settings const& s, std::size_t i) {
                    auto const& root = s.postgres.at(i).ssl_root_cert;
                    return s.ca_root_file ? *s.ca_root_file : root ? root->value : std::string{};
                }},
    setting{.key = "ssl_cert",
            .scope = scope::connection,
            .type = "path",
            .help = "Client certificate",
            .no_default = "libpq's",
            .sample = "/etc/ssl/kachel-client.crt",
            .set_entry = [](postgres_settings& e, text_t text,
                            origin_t o) { e.ssl_cert = tls_file(text, o); },
            .show =
                [](settings const& s, std::size_t i) {
                    auto const& cert = s.postgres.at(i).ssl_cert;
                    return cert ? cert->value : std::string{};
                }},
    setting{.key = "ssl_key",
            .scope = scope::connection,
            .type = "path",
            .help = "Client key",
            .no_default = "libpq's",
            .sample = "/etc/ssl/kachel-client.key",
            .set_entry = [](postgres_settings& e, text_t text, origin_t o) { e.ssl_key = tls_file(text, o); },
            .show =
                [](settings const& s, std::size_t i) {
                    auto const& key = s.postgres.at(i).ssl_key;
                    return key ? key->value : std::string{};
                }},
    setting{.key = "default_srid",
            .scope = scope::connection,
            .flags = "-d,--default-srid",
            .env = "DEFAULT_SRID",
            .type = "integer",
            .help = "SRID for geometry columns whose SRID is 0 (otherwise they are skipped)",
            .no_default = "none",
            .sample = "4326",
            .set = [](settings& s, text_t text, origin_t o) { s.default_srid = srid(text, o); },
            .set_entry = [](postgres_settings& e, text_t text,
                            origin_t o) { e.publish.default_srid = srid(text, o); },
            .show = [](settings const& s,
                       std::size_t i) { return optional_text(s.publish_config_for(i).default_srid); }},
    setting{.key = "auto_bounds",
            .scope = scope::connection,
            .flags = "-b,--auto-bounds",
            .type = "quick, calc, skip",
            .help =
                "How table bounds are found: quick (estimate, then exact; 5 s limit), calc (exact) or skip",
            .sample = "calc",
            .set = [](settings& s, text_t text, origin_t o) { s.auto_bounds = bounds(text, o); },
            .set_entry = [](postgres_settings& e, text_t text,
                            origin_t o) { e.publish.auto_bounds = bounds(text, o); },
            .show =
                [](settings const& s, std::size_t i) {
                    return std::string{bounds_name(s.publish_config_for(i).auto_bounds)};
                }},
    setting{.key = "max_feature_count",
            .scope = scope::connection,
            .flags = "-m,--max-feature-count",
            .type = "integer ≥ 1",
            .help = "Most features per table tile (a LIMIT on the tile query)",
            .no_default = "unlimited",
            .sample = "1000",
            .set = [](settings& s, text_t text,
                      origin_t o) { s.max_feature_count = parse_positive(text, o); },
            .set_entry = [](postgres_settings& e, text_t text,
                            origin_t o) { e.publish.max_feature_count = parse_positive(text, o); },
            .show = [](settings const& s,
                       std::size_t i) { return optional_text(s.publish_config_for(i).max_feature_count); }},
    setting{.key = "statement_timeout",
            .scope = scope::connection,
            .type = "duration",
            .help = "Longest a tile query may run; then it is cancelled and the answer is 504 (0: no limit)",
            .sample = "10s",
            .set_entry = [](postgres_settings& e, text_t text,
                            origin_t o) { e.publish.statement_timeout = parse_duration_ms(text, o); },
            .show = [](settings const& s,
                       std::size_t i) { return millis_text(s.publish_config_for(i).statement_timeout); }},
    setting{.key = "acquire_timeout",
            .scope = scope::connection,
            .type = "duration > 0",
            .help = "Longest a request waits for a pooled connection; then 503 with Retry-After",
            .sample = "2s",
            .set_entry = [](postgres_settings& e, text_t text,
                            origin_t o) { e.acquire_timeout = positive_duration(text, o); },
            .show = [](settings const& s, std::size_t i) { return millis_text(s.acquire_timeout_for(i)); }},
    setting{.key = "purge_endpoint",
            .flags = "--purge-endpoint",
            .form = form::on_switch,
            .type = "bool",
            .help =
                "DELETE /cache/{source_id} drops cached tiles (optionally ?bbox=w,s,e,n&minzoom=&maxzoom=)",
            .sample = "true",
            .set = [](settings& s, text_t text,
                      origin_t o) { s.http.purge_endpoint = parse_boolean(text, o); },
            .show = [](settings const& s, std::size_t) { return boolean_text(s.http.purge_endpoint); }},
    setting{.key = "purge_token_file",
            .flags = "--purge-token-file",
            .type = "path",
            .help = "File holding the bearer token the purge route asks for (KACHEL_PURGE_TOKEN gives it "
                    "directly); without a token the route answers loopback clients only",
            .no_default = "none",
            .sample = "/run/secrets/kachel-purge",
            .set = [](settings& s, text_t text,
                      origin_t o) { s.purge_token_file = std::string{nonempty(text, o)}; },
            .show = [](settings const& s, std::size_t) { return s.purge_token_file.value_or(""); }},
    setting{.key = "notify_changes",
            .scope = scope::connection,
            .flags = "--notify-changes",
            .form = form::on_switch,
            .type = "bool",
            .help = "Listen for the change notifications of the published tables' triggers (see "
                    "--print-change-triggers) and drop exactly the cached tiles a change touches",
            .sample = "true",
            .set = [](settings& s, text_t text, origin_t o) { s.notify_changes = parse_boolean(text, o); },
            .set_entry = [](postgres_settings& e, text_t text,
                            origin_t o) { e.publish.notify_changes = parse_boolean(text, o); },
            .show = [](settings const& s,
                       std::size_t i) { return boolean_text(s.publish_config_for(i).notify_changes); }},
    setting{.key = "reload_interval",
            .scope = scope::connection,
            .flags = "--reload-interval",
            .type = "duration",
            .help = "How often the database's tables and functions are discovered again: new ones are "
                    "published, dropped ones go, changed ones are republished (with notify_changes and the "
                    "event triggers, a schema change reloads at once)",
            .sample = "1m",
            .set = [](settings& s, text_t text,
                      origin_t o) { s.reload_interval = parse_duration_ms(text, o); },
            .set_entry = [](postgres_settings& e, text_t text,
                            origin_t o) { e.reload_interval = parse_duration_ms(text, o); },
            .show = [](settings const& s, std::size_t i) { return millis_text(s.reload_interval_for(i)); }},
    setting{.key = "prepared_statements",
            .scope = scope::connection,
            .flags = "--no-prepared-statements",
            .form = form::off_switch,
            .type = "bool",
            .help =
                "Named prepared statements and session settings; false sends unnamed statements and keeps "
                "no session state, for PgBouncer in transaction mode",
            .sample = "false",
            .set = [](settings& s, text_t text,
                      origin_t o) { s.prepared_statements = parse_boolean(text, o); },
            .set_entry = [](postgres_settings& e, text_t text,
                            origin_t o) { e.prepared_statements = parse_boolean(text, o); },
            .show = [](settings const& s,
                       std::size_t i) { return boolean_text(s.prepared_statements_for(i)); }},
};

} // namespace

std::string setting::default_text() const {
    if (show != nullptr) {
        settings defaults;
        defaults.postgres.emplace_back();
        if (auto text = show(defaults, 0); !text.empty()) {
            return text;
        }
    }
    return std::string{no_default};
}

std::string_view setting::long_flag() const noexcept {
    auto const at = flags.find("--");
    return at == std::string_view::npos ? std::string_view{} : flags.substr(at, flags.find(',', at) - at);
}

std::span<setting const> all_settings() noexcept {
    return table;
}

setting const* find_setting(std::string_view key, setting_scope scope) noexcept {
    auto const* const it = std::find_if(table.begin(), table.end(), [&](setting const& s) {
        return s.scope == scope && !key.empty() && (s.key == key || s.deprecated_key == key);
    });
    return it == table.end() ? nullptr : &*it;
}

void apply_settings(settings& s, std::vector<given_value> values) {
    std::stable_sort(values.begin(), values.end(),
                     [](given_value const& a, given_value const& b) { return a.target < b.target; });
    for (auto const& v : values) {
        if (v.target->set != nullptr) {
            v.target->set(s, v.text, v.origin);
        }
    }
}

} // namespace kachel::config
