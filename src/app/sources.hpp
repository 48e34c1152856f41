#pragma once

#include "config/settings.hpp"
#include "postgis/publisher.hpp"
#include "postgis/readiness.hpp"
#include "tiles/catalog.hpp"
#include "tiles/id_resolver.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <vector>

namespace kachel::app {

/// Publishes every PostgreSQL connection of `settings`, one after the other, into `catalog`
/// with ids from `ids`; the pools report to `ready`. \throws as postgis::async_publish_database
[[nodiscard]] boost::asio::awaitable<std::vector<postgis::published_database>>
async_publish_databases(config::settings const& settings, boost::asio::any_io_executor executor,
                        tiles::id_resolver& ids, tiles::catalog& catalog, postgis::readiness& ready);

} // namespace kachel::app
