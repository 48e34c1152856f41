#pragma once

#include "config/env_substitution.hpp"
#include "config/settings.hpp"

#include <optional>
#include <string>
#include <vector>

namespace kachel::config {

/// What a config file sets; absent keys stay empty so command-line flags can be layered on top.
struct file_settings {
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
};

/// Reads a Martin-style YAML config file. `${VAR}` references in plain (unquoted) scalars are
/// expanded from the environment; unknown keys are logged as warnings with their dotted path.
/// \throws config_error naming the file, the key and the offending value (never a password).
[[nodiscard]] file_settings load_config_file(std::string const& path, env_lookup const& lookup = process_env);

/// The same from YAML text (`name` is used in messages).
[[nodiscard]] file_settings parse_config(std::string const& yaml, std::string const& name,
                                         env_lookup const& lookup = process_env);

} // namespace kachel::config
