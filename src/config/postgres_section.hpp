#pragma once

#include "config/settings.hpp"
#include "config/yaml_values.hpp"

namespace kachel::config {

/// One `postgres` entry of the config file (martin-compat 6.2): connection, TLS files, pool,
/// and what to publish (`tables`, `functions`, `auto_publish`, `default_srid`, `auto_bounds`,
/// `max_feature_count`). `path` is its dotted name (`postgres` or `postgres[1]`) for messages.
/// \throws config_error naming the key and the offending value.
[[nodiscard]] postgres_settings parse_postgres(YAML::Node const& node, std::string const& path,
                                               yaml_context const& ctx);

/// `on_invalid` values: abort, or warn with Martin's aliases. nullopt when not one of them.
[[nodiscard]] std::optional<postgis::invalid_policy> parse_invalid_policy(std::string_view text);

/// `auto_bounds` values: quick, calc, skip. nullopt when not one of them.
[[nodiscard]] std::optional<postgis::bounds_mode> parse_bounds_mode(std::string_view text);

} // namespace kachel::config
