#pragma once

#include "config/env_substitution.hpp"
#include "config/setting.hpp"
#include "config/settings.hpp"

#include <optional>
#include <string>
#include <vector>

namespace kachel::config {

/// What a config file sets; absent keys stay empty so command-line flags can be layered on top.
struct file_settings {
    /// The keys of the settings table (src/config/setting.cpp) at the top level and in `cache`, in
    /// file order; apply_settings stores them. Connection keys are already in `postgres`.
    std::vector<given_value> values;
    std::vector<postgres_settings> postgres;
    std::optional<http::cors_options> cors;
    std::vector<std::pair<std::string, std::string>> metric_labels;
    /// The `mbtiles` and `pmtiles` sections.
    std::optional<tiles::archive_config> mbtiles;
    std::optional<tiles::archive_config> pmtiles;

    /// These settings over `s`: the table's keys, `cors`, the labels and the connections.
    /// \throws config_error as the settings' parsers.
    void apply_to(settings& s) const;
};

/// Reads a Martin-style YAML config file. `${VAR}` references in plain (unquoted) scalars are
/// expanded from the environment; unknown keys are logged as warnings with their dotted path.
/// \throws config_error naming the file, the key and the offending value (never a password).
[[nodiscard]] file_settings load_config_file(std::string const& path, env_lookup const& lookup = process_env);

/// The same from YAML text (`name` is used in messages).
[[nodiscard]] file_settings parse_config(std::string const& yaml, std::string const& name,
                                         env_lookup const& lookup = process_env);

} // namespace kachel::config
