#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace kachel::config {

/// Where a value was given, for messages: a flag (`--keep-alive`), or a key of a file.
struct value_origin {
    std::string file; ///< empty for the command line and the environment
    std::string key;  ///< `--keep-alive`, `DEFAULT_SRID` or a dotted key (`postgres[0].pool_size`)

    /// `--keep-alive` or `config.yaml: 'keep_alive'`.
    [[nodiscard]] std::string describe() const;
    /// `postgres[0].ssl_root_cert in config.yaml`, `--ca-root-file`: the channel of a TLS file.
    [[nodiscard]] std::string channel() const;
};

// Text parsers shared by the command line, the environment and the config file. Each accepts the
// value as written and throws config_error naming `origin`, what was expected and what was given.

/// An integer in [min, max].
[[nodiscard]] std::int64_t parse_integer(std::string_view text, value_origin const& origin, std::int64_t min,
                                         std::int64_t max);

/// An integer > 0.
[[nodiscard]] std::uint64_t parse_positive(std::string_view text, value_origin const& origin);

/// A finite number > 0; `example` shows a good one in the message (`"1 or 0.5"`).
[[nodiscard]] double parse_positive_number(std::string_view text, value_origin const& origin,
                                           std::string_view example);

/// A size in bytes: a whole number with an optional unit, B, kB (1,000), MB, GB, KiB (1,024),
/// MiB or GiB, case aside.
[[nodiscard]] std::uint64_t parse_size(std::string_view text, value_origin const& origin);

/// The text form of a size that parse_size reads back: `500kB`, `2MB`, `1500B`.
[[nodiscard]] std::string size_text(std::uint64_t bytes);

/// true/false, yes/no, on/off.
[[nodiscard]] bool parse_boolean(std::string_view text, value_origin const& origin);

/// A duration as Martin writes them (humantime): bare seconds (`30`), or a sum of numbers with
/// units (`500ms`, `30s`, `1m 30s`, `2h`, `1d`, `1week`); units from `ns` to `y` in their short
/// and long spellings. \throws config_error naming the setting and the accepted forms.
[[nodiscard]] std::chrono::milliseconds parse_duration_ms(std::string_view text, value_origin const& origin);

/// A duration in whole seconds (parse_duration_ms's forms). \throws config_error for a fraction
/// of a second, which the setting cannot hold.
[[nodiscard]] std::chrono::seconds parse_duration(std::string_view text, value_origin const& origin);

/// The text form of a duration that parse_duration reads back: `75s`.
[[nodiscard]] std::string duration_text(std::chrono::seconds value);

/// The text form of a duration that parse_duration_ms reads back: `75s` or `1500ms`.
[[nodiscard]] std::string duration_text(std::chrono::milliseconds value);

} // namespace kachel::config
