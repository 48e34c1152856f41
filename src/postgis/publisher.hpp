#pragma once

#include "pg/pool.hpp"
#include "postgis/publish_config.hpp"
#include "postgis/readiness.hpp"
#include "postgis/resolver.hpp"
#include "tiles/catalog.hpp"
#include "tiles/id_resolver.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>

namespace kachel::postgis {

/// What one database published, as resolved (for `--save-config`).
struct published_database {
    std::vector<table_spec> tables;
    std::vector<function_spec> functions;
};

/// Connects to one database (retrying transient failures for `retry_timeout`), logs its TLS
/// and certificates, checks its versions, discovers the tables (geometry or geography columns)
/// and tile functions the role can use, applies `config` (configured and auto-published
/// sources, SRIDs, bounds), and adds one source per result to `catalog`.
/// \throws database_error when the connection or the checks fail (message: libpq's text + hint);
///         config_error when configured sources are invalid and `on_invalid` is abort.
/// The pool is added to `ready` (if given), for `/_/ready` and the pool metrics.
boost::asio::awaitable<published_database>
async_publish_database(boost::asio::any_io_executor executor, pg::connect_params params,
                       pg::pool_options options, std::chrono::milliseconds retry_timeout,
                       publish_config const& config, tiles::id_resolver& ids, tiles::catalog& catalog,
                       readiness* ready = nullptr);

} // namespace kachel::postgis
