#pragma once

#include "config/env_substitution.hpp"
#include "config/settings.hpp"

#include <optional>
#include <string>
#include <vector>

namespace kachel::config {

/// The `cache` section (martin-compat 9), and the deprecated top-level `cache_size_mb` /
/// `tile_cache_size_mb`, which mean `cache.size_mb` / `cache.tile_size_mb`.
struct cache_file_settings {
    bool disabled = false; ///< `cache: disable`
    std::optional<std::int64_t> size_mb;
    std::optional<std::int64_t> tile_size_mb;
    std::optional<std::chrono::seconds> expiry;      ///< `expiry`
    std::optional<std::chrono::seconds> tile_expiry; ///< `tile_expiry` (wins over `expiry`)
    std::optional<int> minzoom;
    std::optional<int> maxzoom;
};

/// What a config file sets; absent keys stay empty so command-line flags can be layered on top.
struct file_settings {
    cache_file_settings cache;
    std::vector<postgres_settings> postgres;
    std::optional<std::string> listen_addresses;
    std::optional<unsigned> workers;
    std::optional<http::webui_mode> webui;
    std::optional<http::cors_options> cors;
    std::optional<std::string> cache_control;
    std::optional<http::encoding> preferred_encoding;
    std::optional<bool> access_log;
    std::optional<std::size_t> max_connections;
    std::vector<std::pair<std::string, std::string>> metric_labels;
    std::optional<std::string> route_prefix;
    std::optional<std::string> base_path;
    std::optional<postgres::invalid_policy> on_invalid;
    std::optional<std::chrono::seconds> shutdown_timeout;
    std::optional<std::chrono::seconds> keep_alive;
};

/// Reads a Martin-style YAML config file. `${VAR}` references in plain (unquoted) scalars are
/// expanded from the environment; unknown keys are logged as warnings with their dotted path.
/// \throws config_error naming the file, the key and the offending value (never a password).
[[nodiscard]] file_settings load_config_file(std::string const& path, env_lookup const& lookup = process_env);

/// The same from YAML text (`name` is used in messages).
[[nodiscard]] file_settings parse_config(std::string const& yaml, std::string const& name,
                                         env_lookup const& lookup = process_env);

} // namespace kachel::config
