#pragma once

#include "pg/connection.hpp"
#include "postgis/function_info.hpp"
#include "postgis/row_filter.hpp"
#include "postgis/table_info.hpp"

#include <boost/asio/awaitable.hpp>

#include <optional>
#include <span>
#include <vector>

namespace kachel::postgis {

/// Oldest PostgreSQL kachel runs against (server_version_num).
inline constexpr int minimum_postgres_version = 110000;
/// Oldest PostGIS kachel runs against: ST_TileEnvelope appeared in 3.0.
inline constexpr int minimum_postgis_version = 30000;
/// PostGIS from which ST_TileEnvelope takes a margin.
inline constexpr int postgis_margin_version = 30100;

/// Server versions, as numbers like 150020 (PostgreSQL) and 30302 (PostGIS 3.3.2).
struct server_versions {
    int postgres = 0;
    int postgis = 0;
    std::string postgres_text;
    std::string postgis_text;
};

/// Reads the versions and checks them against the minimums.
/// \throws database_error when PostGIS is missing or either version is too old.
boost::asio::awaitable<server_versions> async_check_versions(pg::connection& conn);

/// Every (relation, geometry/geography column) the connected role can read, sorted by schema,
/// table, column. Relations with SRID 0 are included; the caller decides.
/// \throws database_error
boost::asio::awaitable<std::vector<table_info>> async_discover_tables(pg::connection& conn);

/// Every function the role may execute whose signature serves tiles (martin-compat 3.1), sorted
/// by schema and name. Of overloads sharing a name, the last one wins (logged).
/// \throws database_error
boost::asio::awaitable<std::vector<function_info>> async_discover_functions(pg::connection& conn);

/// `auto_bounds`: how a table's extent is found when no bounds are configured.
enum class bounds_mode {
    quick, ///< ST_EstimatedExtent, then ST_Extent when there are no statistics (5 s limit per query)
    calc,  ///< ST_Extent, exact, no time limit
    skip,  ///< none: TileJSON without bounds
};

/// The table's extent in EPSG:4326 as [west, south, east, north] with the column taken as
/// `srid`; nullopt for an empty table, for `skip`, or when the queries fail (logged). The
/// caller sets the statement timeout.
boost::asio::awaitable<std::optional<std::array<double, 4>>>
async_table_bounds(pg::connection& conn, table_info const& table, int srid, bounds_mode mode);

/// The estimated extents (`quick`'s first try) of many tables in one statement, one round trip
/// instead of one per table: element i is requests[i]'s [west, south, east, north] in EPSG:4326,
/// or nullopt when that table has no statistics yet. nullopt as a whole when the statement fails
/// (logged at debug); the caller then asks table by table, where one table's failure stays its own.
boost::asio::awaitable<std::optional<std::vector<std::optional<std::array<double, 4>>>>>
async_estimated_bounds(pg::connection& conn, std::span<bounds_request const> requests);

/// The exact extents (ST_Extent) of many tables, a few dozen tables per statement instead of one
/// statement per table: element i is requests[i]'s [west, south, east, north] in EPSG:4326, or
/// nullopt for an empty table or one whose own statement failed too (logged). A statement that
/// fails (the 5 s limit of `quick`, a table the user cannot read) is retried table by table, so
/// one table's failure stays its own. The caller sets the statement timeout.
boost::asio::awaitable<std::vector<std::optional<std::array<double, 4>>>>
async_exact_bounds(pg::connection& conn, std::span<bounds_request const> requests);

/// The extent in EPSG:4326 of the rows of `table` that `filter` keeps (compiled with its
/// parameters from `$1`); nullopt when it keeps none or the query fails (logged).
boost::asio::awaitable<std::optional<std::array<double, 4>>>
async_filtered_bounds(pg::connection& conn, table_info const& table, int srid, row_filter const& filter);

/// What the values of a column declared without an SRID carry (see value_srids_sql).
struct value_srids {
    bool read = false;      ///< false when the query failed (logged with the fix)
    std::vector<int> srids; ///< the SRIDs to draw, 0 for values without one
    /// The extent of those values in EPSG:4326 [west, south, east, north]; nullopt when none.
    std::optional<std::array<double, 4>> bounds;
};

/// Reads the SRIDs the values of `table`'s column carry, with `srid` standing in for values that
/// carry none, and the extent of the rows `filter` keeps (every row without one). Logs
/// them; values whose SRID spatial_ref_sys does not know are left out with a warning, since no
/// tile can draw them. The caller sets the statement timeout.
boost::asio::awaitable<value_srids> async_value_srids(pg::connection& conn, table_info const& table, int srid,
                                                      row_filter const* filter);

/// Has PostgreSQL check `filter` (parameters from `$1`) against `table` without reading a row:
/// operators for the columns' types, values that fit them, valid WKT.
/// \throws config_error naming `source_id`, the filter and PostgreSQL's message.
boost::asio::awaitable<void> async_check_filter(pg::connection& conn, table_info const& table,
                                                row_filter const& filter, std::string const& source_id,
                                                std::string const& filter_text);

} // namespace kachel::postgis
