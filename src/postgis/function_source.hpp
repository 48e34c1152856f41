#pragma once

#include "pg/pool.hpp"
#include "postgis/function_info.hpp"
#include "postgis/publish_config.hpp"
#include "postgis/table_source.hpp"
#include "tiles/tile_source.hpp"

#include <memory>
#include <string>

namespace kachel::postgis {

/// Everything a function source is built from.
struct function_spec {
    std::string id;
    function_info function;
    tilejson_extras extras;
    std::chrono::milliseconds statement_timeout = default_statement_timeout;
    tiles::cache_gate cache;
};

/// The tile format named by a `content_type` in a function's comment (martin-compat 3.5);
/// MVT when absent or not recognised (warned).
[[nodiscard]] std::string function_content_type(nlohmann::json const& tilejson, std::string_view id);

/// TileJSON of a function source: name, description `schema.function`, zooms and bounds when
/// configured, then the function's JSON comment merged in.
[[nodiscard]] nlohmann::json function_tilejson(function_spec const& spec);

/// Tiles from a PostgreSQL function `(z, x, y[, query])` (martin-compat section 3).
class function_source final : public tiles::tile_source {
  public:
    function_source(function_spec spec, read_route route);

    [[nodiscard]] std::string const& id() const noexcept override { return m_spec.id; }
    [[nodiscard]] nlohmann::json const& tilejson() const noexcept override { return m_tilejson; }
    [[nodiscard]] tiles::zoom_range zooms() const noexcept override { return m_zooms; }
    [[nodiscard]] tiles::cache_gate cache_policy() const noexcept override { return m_spec.cache; }
    [[nodiscard]] std::string_view content_type() const noexcept override { return m_content_type; }
    [[nodiscard]] bool accepts_query() const noexcept override {
        return m_spec.function.query_type.has_value();
    }
    [[nodiscard]] function_spec const& spec() const noexcept { return m_spec; }
    [[nodiscard]] std::string const& sql() const noexcept { return m_sql; }
    [[nodiscard]] std::string_view cache_name() const noexcept override { return m_cache_name; }

    [[nodiscard]] boost::asio::awaitable<tiles::tile_result>
    async_get_tile(tile_coord coord, std::string const& query) const override;

  private:
    function_spec m_spec;
    nlohmann::json m_tilejson;
    tiles::zoom_range m_zooms;
    std::string m_content_type;
    std::string m_sql;
    std::string m_statement_name;
    read_route m_route;
    std::string m_cache_name; ///< this instance's (a reload may publish another under the id)
};

} // namespace kachel::postgis
