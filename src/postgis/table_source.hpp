#pragma once

#include "pg/pool.hpp"
#include "pg/replica_set.hpp"
#include "postgis/cql2.hpp"
#include "postgis/publish_config.hpp"
#include "postgis/sql.hpp"
#include "postgis/table_info.hpp"
#include "tiles/change_horizon.hpp"
#include "tiles/tile_format.hpp"
#include "tiles/tile_source.hpp"

#include <array>
#include <memory>
#include <optional>
#include <string>

namespace kachel::postgis {

/// TileJSON keys a source has besides its own description: configured zooms, bounds (configured
/// or computed).
struct tilejson_extras {
    std::optional<std::array<double, 4>> bounds;
    std::optional<int> minzoom;
    std::optional<int> maxzoom;
};

/// Everything a table source is built from.
struct table_spec {
    std::string id;
    table_info table;
    table_layout layout;
    tilejson_extras extras;
    std::chrono::milliseconds statement_timeout = default_statement_timeout;
    tiles::cache_gate cache;
    /// The configured CQL2 filter (text, then its tree); null when every row is served.
    std::string filter_text;
    cql2::node_ptr filter;
    /// The table's triggers notify kachel of changes (`notify_changes`): its cached tiles follow them.
    bool notify_changes = false;
};

/// Sets `bounds`, `minzoom` and `maxzoom` in a TileJSON document when known.
void add_extras(nlohmann::json& doc, tilejson_extras const& extras);

/// Applies a JSON comment as an RFC 7386 merge patch onto `doc`; a comment that is not a JSON
/// object is ignored with a warning naming `what`.
void merge_comment(nlohmann::json& doc, std::optional<std::string> const& comment, std::string_view what);

/// TileJSON of a table source (martin-compat 1.9): name, description `schema.table.column`,
/// one vector layer with the published columns and their types, bounds and zooms when known,
/// then the table's JSON comment applied as a merge patch.
[[nodiscard]] nlohmann::json table_tilejson(table_spec const& spec);

/// Where the tile reads of one database go: its pool, or, when its connection string names
/// several hosts, its standbys and the primary (pg::replica_set), with the changes they may not
/// show yet (tiles::change_horizon).
struct read_route {
    std::shared_ptr<pg::pool> pool;                 ///< the primary's (a single host's) tile connections
    std::shared_ptr<pg::replica_set> replicas;      ///< null for a single host
    std::shared_ptr<tiles::change_horizon> horizon; ///< null for a single host
};

/// Runs a prepared tile statement on a connection of `route` and turns the outcome into a
/// tile_result: zero rows or NULL = empty tile; column 2, when present and usable, = the ETag. A
/// statement still running after `timeout` is cancelled (tile_errc::timeout). On a replica set
/// the read goes to a host that has replayed WAL position `min_position`; a standby that loses
/// its connection meanwhile leaves the rotation and the read is made once more elsewhere.
boost::asio::awaitable<tiles::tile_result>
async_run_tile_query(read_route const& route, std::uint64_t min_position, std::string const& source_id,
                     std::string const& statement_name, std::string const& sql,
                     std::span<Oid const> param_types, std::span<std::string const> params,
                     std::chrono::milliseconds timeout);

/// A unique name for a prepared statement of one source.
[[nodiscard]] std::string next_statement_name();

/// Tiles from one geometry column of a table, view or materialized view, via ST_AsMVT.
class table_source final : public tiles::tile_source {
  public:
    table_source(table_spec spec, read_route route, bool margin_supported);

    [[nodiscard]] std::string const& id() const noexcept override { return m_spec.id; }
    [[nodiscard]] nlohmann::json const& tilejson() const noexcept override { return m_tilejson; }
    [[nodiscard]] tiles::zoom_range zooms() const noexcept override { return m_zooms; }
    [[nodiscard]] tiles::cache_gate cache_policy() const noexcept override { return m_spec.cache; }
    [[nodiscard]] std::string_view content_type() const noexcept override { return tiles::mvt_type; }
    [[nodiscard]] table_spec const& spec() const noexcept { return m_spec; }
    /// The tile query at `zoom`.
    [[nodiscard]] std::string const& sql(int zoom = 0) const noexcept;
    /// Every tile query of the source (one per distinct budget) and the zooms each serves, built
    /// on each call (reloads compare it).
    [[nodiscard]] std::string all_sql() const;
    [[nodiscard]] std::string_view cache_name() const noexcept override { return m_cache_name; }

    [[nodiscard]] boost::asio::awaitable<tiles::tile_result>
    async_get_tile(tile_coord coord, std::string const& query) const override;

  private:
    table_spec m_spec;
    nlohmann::json m_tilejson;
    tiles::zoom_range m_zooms;
    /// One tile query per distinct budget, prepared under its own name.
    struct tile_query {
        std::string sql;
        std::string statement_name;
    };
    std::vector<tile_query> m_queries;
    std::array<std::uint8_t, max_zoom_level + 1> m_query_of_zoom{}; ///< index into m_queries
    /// z, x, y, then the filter's values; their types: int2, int8, int8, then left to PostgreSQL.
    std::vector<std::string> m_params;
    std::vector<Oid> m_param_types;
    read_route m_route;
    std::string m_cache_name; ///< this instance's (a reload may publish another under the id)
};

} // namespace kachel::postgis
