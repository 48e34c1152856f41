#pragma once

#include <spdlog/spdlog.h>

#include <exception>
#include <optional>
#include <span>
#include <string_view>

namespace kachel {

/// Parses a log filter in the RUST_LOG/KACHEL_LOG directive syntax (`debug`, `kachel=debug`,
/// `info,kachel=trace`, `warn,other=debug`) and returns the level for kachel's own messages.
/// Directives for other targets are ignored; an unparsable filter yields `debug`, as Martin does.
spdlog::level::level_enum parse_log_filter(std::string_view filter) noexcept;

/// The shape of log lines (`KACHEL_LOG_FORMAT`, else Martin's `RUST_LOG_FORMAT`):
/// full (the default: time, level, message), compact (time, one-letter level, message), bare (level
/// and message), pretty (time and level, then the message indented on its own line), json (one
/// object per line: timestamp, level, target, message, fields).
enum class log_format { full, compact, bare, pretty, json };

[[nodiscard]] std::optional<log_format> parse_log_format(std::string_view text) noexcept;

/// The format init_logging chose.
[[nodiscard]] log_format current_log_format() noexcept;

/// Sets up the process-wide logger on stdout (on stderr when `on_stderr`: for a run whose stdout is
/// its output), level from KACHEL_LOG, else RUST_LOG, else info, and the format as above. May be
/// called again to move the logger. \throws config_error for an unknown format.
void init_logging(bool on_stderr = false);

/// A structured field of a log line: text, or a number (written unquoted in JSON).
struct log_field {
    std::string_view name;
    std::string_view text;
    std::optional<double> number = std::nullopt;
};

/// Logs `message` with `fields`: in the json format as the line's `fields` object, otherwise
/// appended as ` name=value`.
void log_with_fields(spdlog::level::level_enum level, std::string_view message,
                     std::span<log_field const> fields);

/// Logs an exception that a coroutine let escape: `what failed: <message>`.
void log_exception(char const* what, std::exception_ptr const& failure) noexcept;

/// A co_spawn completion handler that logs an exception the coroutine let escape, where
/// asio::detached would drop it silently. \pre `what` is a string literal.
[[nodiscard]] inline auto log_failure(char const* what) noexcept {
    return [what](std::exception_ptr const& failure) {
        if (failure) {
            log_exception(what, failure);
        }
    };
}

} // namespace kachel
