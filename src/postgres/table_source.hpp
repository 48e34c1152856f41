#pragma once

#include "pg/pool.hpp"
#include "postgres/sql.hpp"
#include "postgres/table_info.hpp"
#include "tiles/tile_source.hpp"

#include <array>
#include <memory>
#include <optional>
#include <string>

namespace kachel::postgres {

/// TileJSON of a table source (martin-compat 1.9): name, description `schema.table.column`,
/// one vector layer with the columns and their PostgreSQL types, bounds when known, then the
/// table's JSON comment applied as an RFC 7386 merge patch (a non-JSON comment is ignored).
[[nodiscard]] nlohmann::json table_tilejson(table_info const& table, std::string const& id,
                                            std::optional<std::array<double, 4>> const& bounds);

/// Tiles from one geometry column of a table, view or materialized view, via ST_AsMVT.
class table_source final : public tiles::tile_source {
  public:
    table_source(std::string id, table_info table, std::optional<std::array<double, 4>> bounds,
                 std::shared_ptr<pg::pool> pool, bool margin_supported);

    [[nodiscard]] std::string const& id() const noexcept override { return m_id; }
    [[nodiscard]] nlohmann::json const& tilejson() const noexcept override { return m_tilejson; }
    [[nodiscard]] std::string_view content_type() const noexcept override { return "application/x-protobuf"; }
    [[nodiscard]] table_info const& info() const noexcept { return m_table; }
    [[nodiscard]] std::string const& sql() const noexcept { return m_sql; }

    boost::asio::awaitable<tiles::tile_result> async_get_tile(tile_coord coord) const override;

  private:
    std::string m_id;
    table_info m_table;
    nlohmann::json m_tilejson;
    std::string m_sql;
    std::string m_statement_name;
    std::shared_ptr<pg::pool> m_pool;
};

} // namespace kachel::postgres
