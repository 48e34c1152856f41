#pragma once

#include "config/settings.hpp"
#include "config/value_text.hpp"

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kachel::config {

/// Where a setting applies.
enum class setting_scope {
    server,     ///< one value for the process; a top-level config key (dotted inside `cache`)
    connection, ///< one value per `postgres` entry; its flag overrides every entry
    action,     ///< command line only: what to do rather than how to serve; never saved
};

/// How a setting's flag takes its value.
enum class flag_form {
    value,      ///< `--keep-alive 20`
    on_switch,  ///< `--check-connection` means true
    off_switch, ///< `--no-access-log` means false
};

/// One setting, declared once (src/config/setting.cpp): its flag, config key, environment
/// variable, type, default and help, how its text is parsed and stored, and how its effective
/// value is written back. The command line, the config file reader, their precedence,
/// `--save-config`, `--help` and docs/config.md (checked by a test) all come from this table.
struct setting {
    /// The config key: dotted for the `cache` section; inside a `postgres` entry for connection
    /// scope; empty for actions.
    std::string_view key{};
    setting_scope scope = setting_scope::server;
    /// CLI11 names, e.g. `-k,--keep-alive`; empty when the setting is only a config key.
    std::string_view flags{};
    flag_form form = flag_form::value;
    /// An environment variable read when neither a config file nor the flag is given.
    std::string_view env{};
    /// An older top-level key meaning the same, accepted with a deprecation warning.
    std::string_view deprecated_key{};
    /// What a value looks like, for `--help` and the docs.
    std::string_view type{};
    std::string_view help{};
    /// Shown as the default when the setting has no value by default ("number of cores").
    std::string_view no_default{};
    /// A valid value that differs from the default (the round-trip test sets each one).
    std::string_view sample{};
    /// Parses `text` and stores it: for server scope and actions the setting itself, for connection
    /// scope the override of every entry. \throws config_error naming `origin`.
    void (*set)(settings&, std::string_view text, value_origin const& origin) = nullptr;
    /// Connection scope: parses `text` into one `postgres` entry. \throws config_error.
    void (*set_entry)(postgres_settings&, std::string_view text, value_origin const& origin) = nullptr;
    /// The effective value as config text, empty when unset; `connection` indexes `postgres` for
    /// connection scope (which needs at least one entry).
    std::string (*show)(settings const&, std::size_t connection) = nullptr;

    /// The value of a settings object that nobody configured (with one connection entry), or
    /// `no_default`; empty when there is neither.
    [[nodiscard]] std::string default_text() const;
    /// The long flag (`--keep-alive`), or empty.
    [[nodiscard]] std::string_view long_flag() const noexcept;
};

/// Every setting, in the order they are applied (a later one may depend on an earlier one:
/// `cache.size_mb` resets `cache.tile_size_mb`).
[[nodiscard]] std::span<setting const> all_settings() noexcept;

/// The setting with this config key in this scope (server keys are dotted: `cache.size_mb`;
/// deprecated keys are found too); nullptr when there is none.
[[nodiscard]] setting const* find_setting(std::string_view key, setting_scope scope) noexcept;

/// A value one channel gave a setting.
struct given_value {
    setting const* target = nullptr;
    std::string text;
    value_origin origin;
};

/// Stores `values` in table order, so that the order of a file's keys does not matter.
/// \throws config_error from the setting's parser.
void apply_settings(settings& s, std::vector<given_value> values);

} // namespace kachel::config
