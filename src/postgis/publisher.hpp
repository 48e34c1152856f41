#pragma once

#include "pg/pool.hpp"
#include "postgis/publish_config.hpp"
#include "postgis/readiness.hpp"
#include "postgis/resolver.hpp"
#include "postgis/table_source.hpp"
#include "tiles/catalog.hpp"
#include "tiles/id_resolver.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>

namespace kachel::postgis {

/// What one database published, as resolved (for `--save-config` and catalog reloads).
struct published_database {
    std::vector<table_spec> tables;
    std::vector<function_spec> functions;
    std::shared_ptr<pg::pool> pool; ///< the tile connections (to the primary, with replicas)
    /// The standbys, when the connection string names several hosts; else null.
    std::shared_ptr<pg::replica_set> replicas;
    /// The changes the standbys may not show yet; null without replicas.
    std::shared_ptr<tiles::change_horizon> horizon;
    bool margin_supported = false; ///< the PostGIS version takes ST_TileEnvelope's margin
};

/// Discovers the tables and functions of the database `conn` is connected to, applies `config`
/// (ids from `ids`, `identity` naming the database in their signatures), checks the row filters
/// and finds the bounds: the sources as they would be published now. The connection is left
/// with kachel's session settings as they were, but for `statement_timeout`, which is RESET.
/// \throws config_error as async_publish_database; database_error when a statement fails.
boost::asio::awaitable<published_database> async_discover_database(pg::connection& conn,
                                                                   publish_config const& config,
                                                                   std::string const& identity,
                                                                   tiles::id_resolver& ids);

/// The source of one spec of `db`, on its pool.
[[nodiscard]] std::shared_ptr<tiles::tile_source const> make_source(table_spec const& spec,
                                                                    published_database const& db);
[[nodiscard]] std::shared_ptr<tiles::tile_source const> make_source(function_spec const& spec,
                                                                    published_database const& db);

/// One source per spec of `db` (tables, then functions), each logged as published.
[[nodiscard]] std::vector<std::shared_ptr<tiles::tile_source const>>
make_sources(published_database const& db);

/// What decides a PostgreSQL source's tiles and TileJSON but its bounds: its SQL and its TileJSON
/// without `bounds`. A reload republishes a source whose fingerprint changed, and keeps the others
/// (as Martin does, whose fingerprint leaves out bounds and cache settings too).
[[nodiscard]] std::string fingerprint(tiles::tile_source const& source);

/// Where the tile reads of `db` go.
[[nodiscard]] read_route route_of(published_database const& db);

/// What a database publishes now, found again on one of the primary's connections (a catalog
/// reload), which goes back with the pool's session settings; the reads keep `route`.
/// \throws as async_discover_database
boost::asio::awaitable<published_database>
async_rediscover_database(read_route route, publish_config const& config, tiles::id_resolver& ids);

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
