#pragma once

#include "pg/connect_params.hpp"
#include "pg/connection.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <memory>

namespace kachel::pg {

/// Opens one connection, retrying transient failures (refused, timeout, starting up) with
/// exponential backoff (250 ms doubling to 5 s) until `retry_timeout` has passed. Logs every
/// attempt at debug (sslmode, TLS or not, why) and a summary at warn.
/// \throws database_error "<libpq message>\nhint: ..." at once for a non-transient failure
///         (authentication, TLS, configuration), or after `retry_timeout` for a transient one.
boost::asio::awaitable<std::unique_ptr<connection>>
async_connect_with_retry(boost::asio::any_io_executor executor, connect_params const& params,
                         std::chrono::milliseconds retry_timeout);

} // namespace kachel::pg
