#pragma once

#include "core/c_handle.hpp"

#include <boost/asio/awaitable.hpp>
#include <libpq-fe.h>

#include <chrono>
#include <optional>
#include <string>

namespace kachel::pg {

/// A running statement's cancel key (PQgetCancel): the server's address and the backend's key,
/// independent of the connection it came from.
using cancel_handle = c_handle<PGcancel, PQfreeCancel>;

/// Sends a cancel request (PQcancel) on a thread of its own: PQcancel opens a connection of its
/// own and blocks until the server answers, so a silent network path must stall neither an event
/// loop nor later cancellations. The thread owns the handle; the caller stops waiting at `deadline`.
/// \returns nullopt when the server answered in time; else why not (libpq's text, or the deadline).
[[nodiscard]] boost::asio::awaitable<std::optional<std::string>>
async_send_cancel(cancel_handle cancel, std::chrono::steady_clock::time_point deadline);

} // namespace kachel::pg
