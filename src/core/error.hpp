#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <utility>

namespace kachel {

/// Base of every exception kachel throws at startup or on an invariant failure.
/// On the request path errors travel as values instead (see tiles::tile_result).
class error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

/// Bad command line, environment or configuration. The message names the offending setting.
class config_error : public error {
  public:
    using error::error;
};

/// A PostgreSQL failure. The message is libpq's text (verbatim) plus context; never a password.
class database_error : public error {
  public:
    using error::error;
};

/// No database connection could be had in time (pool exhausted or database unreachable).
class unavailable_error : public database_error {
  public:
    using database_error::database_error;
};

/// A database connection broke while in use (server gone, network lost): retry later.
class connection_lost_error : public unavailable_error {
  public:
    using unavailable_error::unavailable_error;
};

/// A tile source could not be set up.
class source_error : public error {
  public:
    using error::error;
};

/// Formats an error message with fmt; use as `throw config_error{fmt_error("... {}", x)}`.
template <typename... TArgs>
[[nodiscard]] std::string fmt_error(fmt::format_string<TArgs...> format, TArgs&&... args) {
    return fmt::format(format, std::forward<TArgs>(args)...);
}

} // namespace kachel
