#include "postgres/table_source.hpp"

#include "core/error.hpp"
#include "core/metrics.hpp"

#include <spdlog/spdlog.h>

#include <atomic>

namespace kachel::postgres {

namespace asio = boost::asio;

namespace {

// Parameter types of every tile statement: z int2, x int8, y int8.
constexpr std::array<Oid, 3> tile_param_types{21, 20, 20};

std::string next_statement_name() {
    static std::atomic<unsigned> counter{0};
    return "kachel_tile_" + std::to_string(++counter);
}

} // namespace

nlohmann::json table_tilejson(table_info const& table, std::string const& id,
                              std::optional<std::array<double, 4>> const& bounds) {
    nlohmann::json fields = nlohmann::json::object();
    for (auto const& [name, type] : table.properties) {
        fields[name] = type;
    }
    nlohmann::json doc{
        {"tilejson", "3.0.0"},
        {"name", id},
        {"description", table.schema + "." + table.table + "." + table.geometry_column},
        {"vector_layers", nlohmann::json::array({nlohmann::json{{"id", id}, {"fields", std::move(fields)}}})},
    };
    if (bounds) {
        doc["bounds"] = *bounds;
    }
    if (table.comment) {
        auto patch = nlohmann::json::parse(*table.comment, nullptr, false);
        if (patch.is_discarded() || !patch.is_object()) {
            spdlog::warn("Comment on {}.{} is not a JSON object, ignored for the TileJSON", table.schema,
                         table.table);
        } else {
            doc.merge_patch(patch);
        }
    }
    return doc;
}

table_source::table_source(std::string id, table_info table, std::optional<std::array<double, 4>> bounds,
                           std::shared_ptr<pg::pool> pool, bool margin_supported)
    : m_id(std::move(id)), m_table(std::move(table)), m_tilejson(table_tilejson(m_table, m_id, bounds)),
      m_sql(table_tile_sql(m_table, m_id, tile_params{}, margin_supported)),
      m_statement_name(next_statement_name()), m_pool(std::move(pool)) {}

asio::awaitable<tiles::tile_result> table_source::async_get_tile(tile_coord coord) const {
    std::array<std::string, 3> const params{std::to_string(coord.z), std::to_string(coord.x),
                                            std::to_string(coord.y)};
    try {
        auto conn = co_await m_pool->async_acquire();
        auto const start = std::chrono::steady_clock::now();
        auto const r =
            co_await conn->async_exec_prepared(m_statement_name, m_sql, tile_param_types, params, true);
        global_metrics().observe_query(
            m_id, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        if (r.num_rows() == 0 || r.is_null(0, 0)) {
            co_return tiles::tile_result{};
        }
        co_return tiles::tile_result{std::string{r.get(0, 0)}, tiles::tile_errc::none, {}};
    } catch (unavailable_error const& e) {
        co_return tiles::tile_result{{}, tiles::tile_errc::unavailable, e.what()};
    } catch (std::exception const& e) {
        co_return tiles::tile_result{{}, tiles::tile_errc::internal, e.what()};
    }
}

} // namespace kachel::postgres
