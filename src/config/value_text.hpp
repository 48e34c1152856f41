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

/// true/false, yes/no, on/off.
[[nodiscard]] bool parse_boolean(std::string_view text, value_origin const& origin);

/// Seconds, bare or with a unit: 30, 30s, 2m, 1h.
[[nodiscard]] std::chrono::seconds parse_duration(std::string_view text, value_origin const& origin);

/// The text form of a duration that parse_duration reads back: `75s`.
[[nodiscard]] std::string duration_text(std::chrono::seconds value);

} // namespace kachel::config
