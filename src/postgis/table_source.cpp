#include "postgis/table_source.hpp"

#include "core/error.hpp"
#include "core/metrics.hpp"
#include "postgis/row_filter.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <atomic>

namespace kachel::postgis {

namespace asio = boost::asio;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

// Parameter types of every table tile statement: z int2, x int8, y int8.
constexpr std::array<Oid, 3> tile_param_types{21, 20, 20};

/// ETag text from a function is sent inside quotes: only visible ASCII other than `"` works.
bool usable_etag(std::string_view text) noexcept {
    if (text.empty() || text.size() > 256) {
        return false;
    }
    return std::ranges::all_of(text, [](char c) { return c > 0x20 && c < 0x7f && c != '"'; });
}

} // namespace

std::string next_statement_name() {
    static std::atomic<unsigned> counter{0};
    return "kachel_tile_" + std::to_string(++counter);
}

void add_extras(nlohmann::json& doc, tilejson_extras const& extras) {
    if (extras.bounds) {
        doc["bounds"] = *extras.bounds;
    }
    if (extras.minzoom) {
        doc["minzoom"] = *extras.minzoom;
    }
    if (extras.maxzoom) {
        doc["maxzoom"] = *extras.maxzoom;
    }
}

void merge_comment(nlohmann::json& doc, std::optional<std::string> const& comment, std::string_view what) {
    if (!comment) {
        return;
    }
    auto patch = nlohmann::json::parse(*comment, nullptr, false);
    if (patch.is_discarded() || !patch.is_object()) {
        spdlog::warn("Comment on {} is not a JSON object, ignored for the TileJSON", what);
        return;
    }
    doc.merge_patch(patch);
}

nlohmann::json table_tilejson(table_spec const& spec) {
    auto const& table = spec.table;
    nlohmann::json fields = nlohmann::json::object();
    for (auto const& p : spec.layout.properties) {
        fields[p.name] = p.type;
    }
    nlohmann::json doc{
        {"tilejson", "3.0.0"},
        {"name", spec.id},
        {"description", table.schema + "." + table.table + "." + table.geometry_column},
        {"vector_layers",
         nlohmann::json::array({nlohmann::json{{"id", spec.layout.layer}, {"fields", std::move(fields)}}})},
    };
    add_extras(doc, spec.extras);
    merge_comment(doc, table.comment, table.schema + "." + table.table);
    return doc;
}

namespace {

/// The query and its outcome as a value: never throws, so racing it against a timer with `||`
/// (which waits for the first *successful* branch) ends as soon as either finishes.
asio::awaitable<tiles::tile_result> run_query(pg::connection& conn, std::string const& source_id,
                                              std::string const& statement_name, std::string const& sql,
                                              std::span<Oid const> param_types,
                                              std::span<std::string const> params) {
    try {
        auto const start = std::chrono::steady_clock::now();
        auto const r = co_await conn.async_exec_prepared(statement_name, sql, param_types, params, true);
        global_metrics().observe_query(
            source_id, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        if (r.num_rows() > 1) {
            co_return tiles::tile_result::failed(
                tiles::tile_errc::internal, fmt::format("the query returned {} rows, not one", r.num_rows()));
        }
        if (r.num_rows() == 0 || r.is_null(0, 0)) {
            co_return tiles::tile_result{};
        }
        tiles::tile_result out;
        out.data = std::string{r.get(0, 0)};
        if (r.num_fields() > 1 && !r.is_null(0, 1) && usable_etag(r.get(0, 1))) {
            out.etag = std::string{r.get(0, 1)};
        }
        co_return out;
    } catch (unavailable_error const& e) {
        co_return tiles::tile_result::failed(tiles::tile_errc::unavailable, e.what());
    } catch (boost::system::system_error const& e) {
        if (e.code() == asio::error::operation_aborted) {
            throw; // cancelled: let the cancellation through
        }
        co_return tiles::tile_result::failed(tiles::tile_errc::internal, e.what());
    } catch (std::exception const& e) {
        co_return tiles::tile_result::failed(tiles::tile_errc::internal, e.what());
    }
}

} // namespace

namespace {

/// One read on a connection of `route`; `host` tells which standby took it (none: the primary).
asio::awaitable<tiles::tile_result> run_once(read_route const& route, std::uint64_t min_position,
                                             std::optional<std::size_t>& host, std::string const& source_id,
                                             std::string const& statement_name, std::string const& sql,
                                             std::span<Oid const> param_types,
                                             std::span<std::string const> params,
                                             std::chrono::milliseconds timeout) {
    std::optional<pg::pooled_connection> conn;
    try {
        if (route.replicas) {
            auto lease = co_await route.replicas->async_acquire_read(min_position);
            host = lease.host;
            conn.emplace(std::move(lease.conn));
        } else {
            conn.emplace(co_await route.pool->async_acquire());
        }
    } catch (unavailable_error const& e) {
        co_return tiles::tile_result::failed(tiles::tile_errc::unavailable, e.what());
    } catch (boost::system::system_error const& e) {
        if (e.code() == asio::error::operation_aborted) {
            throw; // the request was cancelled while it waited for a host
        }
        co_return tiles::tile_result::failed(tiles::tile_errc::internal, e.what());
    } catch (std::exception const& e) {
        co_return tiles::tile_result::failed(tiles::tile_errc::internal, e.what());
    }
    // 0 = no limit.
    asio::steady_timer timer{co_await asio::this_coro::executor,
                             timeout.count() > 0 ? timeout
                                                 : std::chrono::milliseconds{std::chrono::hours{24 * 365}}};
    auto outcome = co_await (run_query(**conn, source_id, statement_name, sql, param_types, params) ||
                             timer.async_wait(asio::use_awaitable));
    if (outcome.index() == 1) {
        // The statement is cancelled in the server when the lease goes back (pg::pool::release).
        co_return tiles::tile_result::failed(
            tiles::tile_errc::timeout,
            fmt::format("statement timeout: still running after {} ms, cancelled", timeout.count()));
    }
    if (host && (*conn)->is_broken()) {
        route.replicas->host_failed(*host, std::get<0>(outcome).detail);
    }
    co_return std::move(std::get<0>(outcome));
}

void count_read(read_route const& route, std::optional<std::size_t> host) {
    global_metrics().count("kachel_postgres_reads_total",
                           "Tile reads of a database with read replicas, by host (primary: the primary).",
                           {{"connection", route.pool->params().label()},
                            {"host", host ? route.replicas->label(*host) : std::string{"primary"}}});
}

} // namespace

asio::awaitable<tiles::tile_result>
async_run_tile_query(read_route const& route, std::uint64_t min_position, std::string const& source_id,
                     std::string const& statement_name, std::string const& sql,
                     std::span<Oid const> param_types, std::span<std::string const> params,
                     std::chrono::milliseconds timeout) {
    std::optional<std::size_t> host;
    auto result = co_await run_once(route, min_position, host, source_id, statement_name, sql, param_types,
                                    params, timeout);
    if (!route.replicas) {
        co_return result;
    }
    count_read(route, host);
    if (result.error == tiles::tile_errc::unavailable) {
        // The host went away under the read (a standby, or a primary failing over): once more,
        // on another host or the primary.
        spdlog::debug("source {}: a read on {} failed ({}); reading again", source_id,
                      host ? route.replicas->label(*host) : std::string{"the primary"}, result.detail);
        host.reset();
        result = co_await run_once(route, min_position, host, source_id, statement_name, sql, param_types,
                                   params, timeout);
        count_read(route, host);
    }
    co_return result;
}

table_source::table_source(table_spec spec, read_route route, bool margin_supported)
    : m_spec(std::move(spec)), m_tilejson(table_tilejson(m_spec)), m_zooms(tiles::zooms_of(m_tilejson)),
      m_params(3), m_param_types(tile_param_types.begin(), tile_param_types.end()), m_route(std::move(route)),
      m_cache_name(tiles::instance_name(m_spec.id)) {
    row_filter filter;
    if (m_spec.filter) {
        filter = compile_filter(*m_spec.filter, m_spec.table, m_spec.layout.srid, 4);
        m_params.insert(m_params.end(), filter.params.begin(), filter.params.end());
        m_param_types.resize(m_params.size(), 0);
    }
    // Zooms whose budgets are equal share a query: a source without per-zoom values has one.
    std::vector<zoom_budget> budgets;
    std::vector<std::string> zooms_text; // for the debug log
    for (int z = 0; z <= max_zoom_level; ++z) {
        auto const budget = budget_at(m_spec.layout.budget, z);
        auto const found = std::find(budgets.begin(), budgets.end(), budget);
        auto const index = static_cast<std::size_t>(found - budgets.begin());
        if (found == budgets.end()) {
            budgets.push_back(budget);
            m_queries.push_back({table_tile_sql(m_spec.table, m_spec.layout, margin_supported, filter.sql, z),
                                 next_statement_name()});
            zooms_text.emplace_back();
        }
        m_query_of_zoom[static_cast<std::size_t>(z)] = static_cast<std::uint8_t>(index);
        auto& zooms = zooms_text[index];
        zooms += zooms.empty() ? std::to_string(z) : "," + std::to_string(z);
    }
    for (std::size_t i = 0; i < m_queries.size(); ++i) {
        spdlog::debug("source {}: tile SQL{}: {}", m_spec.id,
                      m_queries.size() > 1 ? " at zooms " + zooms_text[i] : std::string{}, m_queries[i].sql);
    }
}

std::string const& table_source::sql(int zoom) const noexcept {
    return m_queries[m_query_of_zoom[static_cast<std::size_t>(std::clamp(zoom, 0, max_zoom_level))]].sql;
}

std::string table_source::all_sql() const {
    std::string out;
    for (std::size_t z = 0; z < m_query_of_zoom.size(); ++z) {
        out += fmt::format("{}:{} ", z, m_query_of_zoom[z]);
    }
    for (auto const& q : m_queries) {
        out += '\n';
        out += q.sql;
    }
    return out;
}

asio::awaitable<tiles::tile_result> table_source::async_get_tile(tile_coord coord,
                                                                 std::string const& /*query_json*/) const {
    auto params = m_params;
    params[0] = std::to_string(coord.z);
    params[1] = std::to_string(coord.x);
    params[2] = std::to_string(coord.y);
    auto const& query = m_queries[m_query_of_zoom[static_cast<std::size_t>(
        std::clamp(static_cast<int>(coord.z), 0, max_zoom_level))]];
    // A tile a change touched that a standby may not show yet is read where it shows.
    auto const min_position =
        m_route.horizon && m_route.horizon->size() > 0
            ? m_route.horizon->needed(m_spec.id, coord, m_route.replicas->replayed_everywhere())
            : 0;
    co_return co_await async_run_tile_query(m_route, min_position, m_spec.id, query.statement_name, query.sql,
                                            m_param_types, params, m_spec.statement_timeout);
}

} // namespace kachel::postgis
