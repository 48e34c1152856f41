#pragma once

#include "config/settings.hpp"
#include "postgis/publisher.hpp"

#include <string>
#include <vector>

namespace kachel::config {

/// The fully resolved configuration as YAML (martin-compat 6.4, decision D15): server settings,
/// and per database every published table and function spelled out with what discovery found,
/// such that starting from this file publishes the same catalog. Passwords are never written: a
/// `${VAR}` connection string is written back as written, any other loses its password.
/// \pre published.size() == s.postgres.size()
[[nodiscard]] std::string render_saved_config(settings const& s,
                                              std::vector<postgis::published_database> const& published);

/// Writes render_saved_config to `path`, or to stdout for `-`.
/// \throws config_error when the file cannot be written.
void save_config(std::string const& path, settings const& s,
                 std::vector<postgis::published_database> const& published);

} // namespace kachel::config
