#pragma once

#include "config/env_substitution.hpp"

#include <yaml-cpp/yaml.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kachel::config {

/// Where values are read from: the file name for messages, the environment for `${VAR}`.
struct yaml_context {
    std::string const& file;
    env_lookup const& lookup;
};

/// A scalar's text, `${VAR}`-expanded when plain (unquoted); nullopt for null or empty.
/// \throws config_error naming `key` when the node is a list or a map.
[[nodiscard]] std::optional<std::string> scalar(YAML::Node const& node, std::string const& key,
                                                yaml_context const& ctx);

/// The scalar's text before `${VAR}` expansion, when expansion changed it (for `--save-config`).
[[nodiscard]] std::optional<std::string> unexpanded(YAML::Node const& node, yaml_context const& ctx);

/// A positive integer (> 0). \throws config_error with the key and the value otherwise.
[[nodiscard]] std::optional<std::uint64_t> positive_integer(YAML::Node const& node, std::string const& key,
                                                            yaml_context const& ctx);

/// An integer in [min, max]. \throws config_error with the key, the value and the range.
[[nodiscard]] std::optional<std::int64_t> integer_in(YAML::Node const& node, std::string const& key,
                                                     yaml_context const& ctx, std::int64_t min,
                                                     std::int64_t max);

/// true/false (also yes/no, on/off). \throws config_error otherwise.
[[nodiscard]] std::optional<bool> boolean(YAML::Node const& node, std::string const& key,
                                          yaml_context const& ctx);

/// Seconds, optionally with a unit: 30, 30s, 2m, 1h. \throws config_error otherwise.
[[nodiscard]] std::optional<std::chrono::milliseconds>
duration(YAML::Node const& node, std::string const& key, yaml_context const& ctx);

/// A string or a list of strings.
[[nodiscard]] std::vector<std::string> string_list(YAML::Node const& node, std::string const& key,
                                                   yaml_context const& ctx);

/// `[west, south, east, north]` in degrees. \throws config_error otherwise.
[[nodiscard]] std::optional<std::array<double, 4>> bounds(YAML::Node const& node, std::string const& key,
                                                          yaml_context const& ctx);

/// \throws config_error "'key' must be a map" when the node is not one.
void require_map(YAML::Node const& node, std::string const& key, yaml_context const& ctx);

/// A zoom level 0..30. \throws config_error otherwise.
[[nodiscard]] std::optional<int> zoom(YAML::Node const& node, std::string const& key,
                                      yaml_context const& ctx);

/// A `cache` value: true for `disable` (or `disabled`); false for a map, whose keys the caller
/// reads. \throws config_error naming `expected` for anything else.
[[nodiscard]] bool cache_disabled(YAML::Node const& node, std::string const& key, yaml_context const& ctx,
                                  std::string_view expected);

/// `parent.child`: the dotted key of a value inside a map, for error messages.
[[nodiscard]] std::string child_key(std::string_view parent, std::string_view child);

/// Logs the warning for a key kachel does not know.
void warn_unknown_key(std::string const& dotted, yaml_context const& ctx);

} // namespace kachel::config
