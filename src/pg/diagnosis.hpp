#pragma once

#include "pg/connect_params.hpp"

#include <string>
#include <string_view>

namespace kachel::pg {

/// True for failures that go away by waiting: nothing listening yet, a timeout, a server that
/// is starting or shutting down. Authentication and TLS failures are not transient.
[[nodiscard]] bool is_transient_failure(std::string_view libpq_message) noexcept;

/// libpq's message says a host answered as a standby where the primary was asked for
/// (`target_session_attrs=read-write`).
[[nodiscard]] bool answered_as_standby(std::string_view libpq_message) noexcept;

/// A short reason for metrics: refused, timeout, starting_up, tls, authentication, other.
[[nodiscard]] std::string_view failure_reason(std::string_view libpq_message) noexcept;

/// One line of advice for a failed connection, keyed on libpq's message and naming the file and
/// the channel it came from; empty when no advice applies.
[[nodiscard]] std::string connection_hint(std::string_view libpq_message, connect_params const& params);

/// connection_hint for a message of several hosts (a multi-host string): one hint per different
/// failure, each naming the host it is for; the plain hint when the hosts fail alike.
[[nodiscard]] std::string connection_hints(std::string_view libpq_message, connect_params const& params);

} // namespace kachel::pg
