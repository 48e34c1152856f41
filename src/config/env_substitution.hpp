#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace kachel::config {

/// Looks up an environment variable; nullopt when unset.
using env_lookup = std::function<std::optional<std::string>(std::string const&)>;

/// The process environment.
[[nodiscard]] std::optional<std::string> process_env(std::string const& name);

/// Expands `$VAR`, `${VAR}`, `${VAR:-default}` (unset or empty), `${VAR-default}` (unset),
/// `${VAR:+alt}`, `${VAR+alt}`, `${VAR:?message}`, `${VAR?message}` and `$$` (a literal `$`), as in
/// Martin's config files. The legacy `${VAR:default}` means `${VAR:-default}`.
/// \throws config_error `missing property 'VAR'` for an unset variable without a default, or the
///         `?` message.
[[nodiscard]] std::string substitute_env(std::string_view text, env_lookup const& lookup = process_env);

} // namespace kachel::config
