#pragma once

#include "postgis/publisher.hpp"
#include "support/run.hpp"
#include "support/test_env.hpp"

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace kachel::test {

/// The configured `tables` of database `db` (over TLS, verify-full), published with `config`'s
/// other settings into a fresh catalog.
inline tiles::catalog publish_tables(boost::asio::io_context& ioc, std::string const& db,
                                     std::vector<postgis::table_config> tables,
                                     postgis::publish_config config) {
    config.tables = std::move(tables);
    tiles::catalog catalog;
    tiles::id_resolver ids;
    auto const params = params_for(tls_conninfo(db));
    run(ioc, postgis::async_publish_database(ioc.get_executor(), params, pg::pool_options{},
                                             std::chrono::milliseconds{0}, config, ids, catalog));
    return catalog;
}

} // namespace kachel::test
