#pragma once

#include "pg/connect_params.hpp"
#include "pg/pool.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <string>

namespace kachel::postgis {

/// `--check-connection` for one database: connects once and returns a report (PostgreSQL and
/// PostGIS versions, TLS version and cipher, the server certificate and whether its chain and
/// host name were verified, the client certificate, the session settings tile connections get
/// from `options` with where each value comes from), or libpq's message and kachel's hint.
/// `ok` is false when the connection or the version check failed. Never throws.
struct connection_report {
    bool ok = false;
    std::string text;
};

boost::asio::awaitable<connection_report> async_check_connection(boost::asio::any_io_executor executor,
                                                                 pg::connect_params const& params,
                                                                 pg::pool_options const& options);

} // namespace kachel::postgis
