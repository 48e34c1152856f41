#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace kachel::http {

/// Completes when the peer closes the connection (or it fails); never when the peer merely sends
/// more data (a pipelined request). Raced against the making of a tile, so that a client that
/// goes away cancels the work and its database statements.
/// \pre `socket` outlives the wait.
[[nodiscard]] boost::asio::awaitable<void> async_wait_disconnect(boost::asio::ip::tcp::socket& socket);

} // namespace kachel::http
