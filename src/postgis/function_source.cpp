#include "postgis/function_source.hpp"

#include "postgis/sql.hpp"
#include "tiles/tile_format.hpp"

#include <spdlog/spdlog.h>

#include <array>

namespace kachel::postgis {

namespace asio = boost::asio;

namespace {

// z int2, x int8, y int8 (cast to integer in the SQL), then the query as json (114) or jsonb (3802).
constexpr std::array<Oid, 4> json_param_types{21, 20, 20, 114};
constexpr std::array<Oid, 4> jsonb_param_types{21, 20, 20, 3802};

} // namespace

std::string function_content_type(nlohmann::json const& tilejson, std::string_view id) {
    auto const it = tilejson.find("content_type");
    if (it == tilejson.end()) {
        return std::string{tiles::mvt_type};
    }
    if (it->is_string()) {
        if (auto canonical = tiles::canonical_tile_type(it->get_ref<std::string const&>())) {
            return std::string{*canonical};
        }
    }
    spdlog::warn("Function source '{}': content_type {} in its comment is not a known tile format, serving "
                 "it as application/x-protobuf",
                 id, it->dump());
    return std::string{tiles::mvt_type};
}

nlohmann::json function_tilejson(function_spec const& spec) {
    auto const& f = spec.function;
    nlohmann::json doc{
        {"tilejson", "3.0.0"},
        {"name", spec.id},
        {"description", f.schema + "." + f.function},
    };
    add_extras(doc, spec.extras);
    merge_comment(doc, f.comment, "function " + f.schema + "." + f.function);
    return doc;
}

function_source::function_source(function_spec spec, read_route route)
    : m_spec(std::move(spec)), m_tilejson(function_tilejson(m_spec)), m_zooms(tiles::zooms_of(m_tilejson)),
      m_content_type(function_content_type(m_tilejson, m_spec.id)), m_sql(function_tile_sql(m_spec.function)),
      m_statement_name(next_statement_name()), m_route(std::move(route)),
      m_cache_name(tiles::instance_name(m_spec.id)) {
    spdlog::debug("source {}: tile SQL: {}", m_spec.id, m_sql);
}

asio::awaitable<tiles::tile_result> function_source::async_get_tile(tile_coord coord,
                                                                    std::string const& query) const {
    if (!m_spec.function.query_type) {
        std::array<std::string, 3> const params{std::to_string(coord.z), std::to_string(coord.x),
                                                std::to_string(coord.y)};
        co_return co_await async_run_tile_query(m_route, 0, m_spec.id, m_statement_name, m_sql,
                                                std::span{json_param_types}.first<3>(), params,
                                                m_spec.statement_timeout);
    }
    std::array<std::string, 4> const params{std::to_string(coord.z), std::to_string(coord.x),
                                            std::to_string(coord.y),
                                            query.empty() ? std::string{"{}"} : query};
    auto const& types = *m_spec.function.query_type == "jsonb" ? jsonb_param_types : json_param_types;
    co_return co_await async_run_tile_query(m_route, 0, m_spec.id, m_statement_name, m_sql, types, params,
                                            m_spec.statement_timeout);
}

} // namespace kachel::postgis
