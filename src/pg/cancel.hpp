#pragma once

#include "core/c_handle.hpp"

#include <boost/asio/awaitable.hpp>
#include <libpq-fe.h>

#include <chrono>
#include <string>

namespace kachel::pg {

/// A running statement's cancel key (PQgetCancel): the server's address and the backend's key,
/// independent of the connection it came from.
using cancel_handle = c_handle<PGcancel, PQfreeCancel>;

/// What became of a cancel request.
struct cancel_outcome {
    /// PQcancel returned before the deadline (false: it still waits, or there was no cancel key).
    bool answered = false;
    /// Why the request failed (libpq's text, or why it could not be sent); empty when it worked.
    std::string error;
};

/// Sends a cancel request (PQcancel) on a thread of its own: PQcancel opens a connection of its
/// own and blocks until the server answers, so a silent network path must stall neither an event
/// loop nor later cancellations. The thread owns the handle; the caller stops waiting at `deadline`.
[[nodiscard]] boost::asio::awaitable<cancel_outcome>
async_send_cancel(cancel_handle cancel, std::chrono::steady_clock::time_point deadline);

} // namespace kachel::pg
