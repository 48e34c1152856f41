#pragma once

#include "http/http_options.hpp"
#include "http/server.hpp"
#include "pg/connect_params.hpp"
#include "pg/pool.hpp"
#include "pg/session_settings.hpp"
#include "postgis/publish_config.hpp"
#include "tiles/archive_paths.hpp"
#include "tiles/tile_cache.hpp"

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace kachel::config {

/// One host of a connection's `hosts` list (docs/operations.md, "Read replicas").
struct postgres_host {
    std::string host;
    std::string port;   ///< "" for the connection string's, or libpq's default
    std::string role;   ///< "primary", "standby" or "" (not said)
    std::string origin; ///< "config.yaml postgres.hosts[1]"
};

/// One PostgreSQL connection to publish, from the command line, DATABASE_URL or a `postgres:`
/// entry of the config file.
struct postgres_settings {
    /// URL or key=value form. May contain a password: never log it.
    std::string connection_string;
    /// Config keys `ssl_root_cert`, `ssl_cert`, `ssl_key`, with their origin.
    std::optional<pg::sourced_value> ssl_root_cert;
    std::optional<pg::sourced_value> ssl_cert;
    std::optional<pg::sourced_value> ssl_key;
    std::optional<std::size_t> pool_size;
    std::optional<std::chrono::seconds> retry_timeout;
    /// `acquire_timeout`: how long a request waits for a pooled connection before 503.
    std::optional<std::chrono::milliseconds> acquire_timeout;
    /// `prepared_statements` (default true): false for PgBouncer in transaction mode.
    std::optional<bool> prepared_statements;
    /// `reload_interval`: how often the catalog is discovered again (0: never).
    std::optional<std::chrono::milliseconds> reload_interval;
    /// `session_settings`: server settings for the tile connections, each beating kachel's default
    /// of the same name and any value from the connection's options, role or database.
    std::vector<pg::session_setting> session_settings;
    /// `hosts`: the primary and standbys, in place of the connection string's host. Empty when
    /// the connection string names the host(s).
    std::vector<postgres_host> hosts;
    /// "command line argument 1", "DATABASE_URL", "config.yaml postgres[0]".
    std::string origin;
    /// What to publish (`tables`, `functions`, `auto_publish`, `default_srid`, ...).
    postgis::publish_config publish;
    /// The config text of connection_string when it used `${VAR}`: written back by --save-config.
    std::optional<std::string> connection_string_reference;
    /// `auto_publish` as written in the file (YAML), for --save-config.
    std::optional<std::string> auto_publish_yaml;
    /// The entry has a `tables` or `functions` key.
    bool sources_listed = false;
};

/// The `cache` section (martin-compat 9); `cache: disable` is `size_mb: 0`.
struct cache_settings {
    /// Megabytes of 1,000,000 bytes for every cache; 0 turns caching off.
    std::int64_t size_mb = 512;
    /// The tile cache's share; half of size_mb when unset, as in Martin.
    std::optional<std::int64_t> tile_size_mb;
    std::optional<std::chrono::seconds> expiry;                 ///< `expiry`
    std::optional<std::chrono::seconds> tile_expiry;            ///< `tile_expiry` (wins over `expiry`)
    std::optional<std::chrono::milliseconds> idle_timeout;      ///< `idle_timeout`
    std::optional<std::chrono::milliseconds> tile_idle_timeout; ///< `tile_idle_timeout` (wins)
    std::optional<int> minzoom;
    std::optional<int> maxzoom;

    /// What the tile cache gets: `tile_size_mb`, else half of `size_mb`; no bytes when off.
    [[nodiscard]] tiles::tile_cache_options tile_cache() const;
};

/// Everything kachel needs to start, after command line, config file and environment are merged.
struct settings {
    std::vector<postgres_settings> postgres;
    /// MBTiles files and directories: positional paths, or the config file's `mbtiles` section.
    tiles::archive_config mbtiles;
    /// PMTiles files and directories, the same way (`pmtiles` section).
    tiles::archive_config pmtiles;
    /// `-l/--listen-addresses`, config `listen_addresses`.
    std::string listen_addresses = "0.0.0.0:3000";
    /// `-W/--workers`, config `worker_processes` (0 = number of cores).
    unsigned workers = 0;
    /// `--ca-root-file`: overrides `ssl_root_cert` of every connection (a keyword inside the
    /// connection string still wins).
    std::optional<std::string> ca_root_file;
    /// `-p/--pool-size`: overrides `pool_size` of every connection.
    std::optional<std::size_t> pool_size;
    /// `--retry-timeout`: overrides `retry_timeout` of every connection.
    std::optional<std::chrono::seconds> retry_timeout;
    /// HTTP behaviour: `-u/--webui` + `web_ui`, `cors`, `cache_control`, `--preferred-encoding` +
    /// `preferred_encoding`, `--no-access-log` + `access_log`.
    http::http_options http;
    /// `-k/--keep-alive`, config `keep_alive`: idle time allowed between requests on a connection.
    std::chrono::seconds keep_alive = http::server_options::default_keep_alive;
    /// `--max-connections`, config `max_connections`: HTTP connections served at once.
    std::size_t max_connections = http::server_options::default_max_connections;
    /// `observability.metrics.add_labels`: constant labels on every metric.
    std::vector<std::pair<std::string, std::string>> metric_labels;
    /// `--check-connection`: connect once per connection, report, exit.
    bool check_connection = false;
    /// `-d/--default-srid` (or DEFAULT_SRID without a config file): overrides every connection's.
    std::optional<int> default_srid;
    /// `-b/--auto-bounds`: overrides every connection's `auto_bounds`.
    std::optional<postgis::bounds_mode> auto_bounds;
    /// `-m/--max-feature-count`: overrides every connection's `max_feature_count`.
    std::optional<std::uint64_t> max_feature_count;
    /// The tile cache: `cache` (martin-compat 9), `-C/--cache-size`, `--cache-expiry`.
    cache_settings cache;
    /// `on_invalid` / `--on-invalid`: what happens to configured sources that cannot be published.
    postgis::invalid_policy on_invalid = postgis::invalid_policy::abort;
    /// `shutdown_timeout` / `--shutdown-timeout`: how long SIGTERM waits for requests in flight.
    std::chrono::seconds shutdown_timeout{10};
    /// `--save-config FILE|-`: write the resolved configuration there after publishing.
    std::optional<std::string> save_config;
    /// `purge_token_file` / `--purge-token-file`: the file holding the purge route's bearer token.
    std::optional<std::string> purge_token_file;

    static constexpr std::size_t default_pool_size = pg::pool_options::default_max_size;
    static constexpr std::chrono::seconds default_retry_timeout{30};
    /// `retry_timeout: infinite`: a century, which keeps deadline arithmetic from overflowing.
    static constexpr std::chrono::seconds infinite_retry{std::chrono::hours{24 * 365 * 100}};

    /// The connection parameters of entry `i` with every channel applied (see pg::make_connect_params).
    /// \throws config_error as make_connect_params
    [[nodiscard]] pg::connect_params connect_params_for(std::size_t i) const;
    [[nodiscard]] std::size_t pool_size_for(std::size_t i) const;
    [[nodiscard]] std::chrono::seconds retry_timeout_for(std::size_t i) const;
    [[nodiscard]] std::chrono::milliseconds acquire_timeout_for(std::size_t i) const;
    /// `--no-prepared-statements`, else the connection's `prepared_statements`, else true.
    [[nodiscard]] bool prepared_statements_for(std::size_t i) const;
    /// The pool settings of connection i: size, acquire timeout, prepared statements, and the
    /// session settings (kachel's defaults with the entry's `session_settings` over them).
    [[nodiscard]] pg::pool_options pool_options_for(std::size_t i, std::string name) const;
    /// `--no-prepared-statements` (false): overrides every connection's `prepared_statements`.
    std::optional<bool> prepared_statements;
    /// `--notify-changes`: overrides every connection's `notify_changes`.
    std::optional<bool> notify_changes;
    /// `--reload-interval`: overrides every connection's `reload_interval`.
    std::optional<std::chrono::milliseconds> reload_interval;
    /// Martin's default `reload_interval`.
    static constexpr std::chrono::minutes default_reload_interval{10};
    /// `--reload-interval`, else the connection's `reload_interval`, else 10 minutes; 0 = never.
    [[nodiscard]] std::chrono::milliseconds reload_interval_for(std::size_t i) const;
    /// `--print-change-triggers`: print the trigger SQL for the published tables, and exit.
    bool print_change_triggers = false;
    static constexpr std::chrono::milliseconds default_acquire_timeout =
        pg::pool_options::default_acquire_timeout;
    /// The publishing settings of entry `i` with the command-line overrides applied.
    [[nodiscard]] postgis::publish_config publish_config_for(std::size_t i) const;
};

/// The result of reading the command line: settings to run with, or an exit code (help,
/// version, or a usage error already printed).
struct command_line {
    settings values;
    std::optional<int> exit_code;
};

/// True for `postgres://...` and `postgresql://...` URLs and libpq `key=value` strings.
[[nodiscard]] bool is_connection_string(std::string_view arg) noexcept;

/// Parses `kachel [OPTIONS] [CONNECTION]...`, reads the `-c/--config` file if given, and
/// DATABASE_URL when no connection is given anywhere else.
/// \throws config_error for values that make no sense, naming the flag or config key.
[[nodiscard]] command_line parse_command_line(int argc, char const* const* argv);

} // namespace kachel::config
