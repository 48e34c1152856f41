#pragma once

#include "config/yaml_values.hpp"

#include <span>
#include <string>
#include <string_view>

namespace kachel::config {

/// What kachel does with one of Martin's configuration keys (docs/config.md, "Martin's keys").
enum class key_status {
    implemented, ///< read and applied
    refused,     ///< decides what is served or who sees it and is not implemented: startup stops
    warned,      ///< affects only speed or looks: a warning, then ignored
};

struct martin_key {
    /// Dotted path; `*` stands for a source id (`postgres.tables.*.filter`); list entries of
    /// `postgres` are written without their index.
    std::string_view path;
    key_status status;
    /// For refused keys: the value that asks for nothing (`disabled`, `0s`, `false`), accepted
    /// without a word. Empty when there is none.
    std::string_view off_value;
    /// A value for tests: a YAML flow scalar, list or map.
    std::string_view sample;
    /// Why, for the error or warning (and docs/config.md).
    std::string_view note;
};

/// Every key of Martin 1.17's configuration reference that concerns PostgreSQL sources, the server
/// or other source kinds.
[[nodiscard]] std::span<martin_key const> martin_keys() noexcept;

/// `postgres[1].tables.roads.filter` -> `postgres.tables.*.filter`.
[[nodiscard]] std::string key_pattern(std::string_view dotted);

/// For a key the section's reader does not handle: a refused Martin key throws config_error naming
/// the file and the key (unless its value is the off value), a warned one logs a warning, and an
/// unknown key warns like Martin, except inside a table or function entry, where a misspelt key
/// (`filtr`) could publish rows the config meant to hide: there it throws.
void unhandled_key(std::string const& dotted, YAML::Node const& value, yaml_context const& ctx);

} // namespace kachel::config
