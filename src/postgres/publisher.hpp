#pragma once

#include "pg/pool.hpp"
#include "postgres/readiness.hpp"
#include "tiles/catalog.hpp"
#include "tiles/id_resolver.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>

namespace kachel::postgres {

/// Connects to one database (retrying transient failures for `retry_timeout`), logs its TLS
/// and certificates, checks its versions, discovers every table with a geometry or
/// geography column the role can read, computes bounds, and adds one table source per column.
/// \throws database_error when the connection or the checks fail (message: libpq's text + hint).
/// The pool is added to `ready` (if given), for `/_/ready` and the pool metrics.
/// \returns the number of sources added.
boost::asio::awaitable<std::size_t>
async_publish_database(boost::asio::any_io_executor executor, pg::connect_params params,
                       pg::pool_options options, std::chrono::milliseconds retry_timeout,
                       tiles::id_resolver& ids, tiles::catalog& catalog, readiness* ready = nullptr);

} // namespace kachel::postgres
