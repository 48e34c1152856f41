#pragma once

#include <spdlog/spdlog.h>

#include <exception>
#include <string_view>

namespace kachel {

/// Parses a log filter in the RUST_LOG/KACHEL_LOG directive syntax (`debug`, `kachel=debug`,
/// `info,kachel=trace`, `warn,other=debug`) and returns the level for kachel's own messages.
/// Directives for other targets are ignored; an unparsable filter yields `debug`, as Martin does.
spdlog::level::level_enum parse_log_filter(std::string_view filter) noexcept;

/// Sets up the process-wide logger on stdout, level from KACHEL_LOG, else RUST_LOG, else info.
void init_logging();

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
