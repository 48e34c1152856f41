#include "postgis/publisher.hpp"

#include "core/error.hpp"
#include "core/metrics.hpp"
#include "core/text.hpp"
#include "pg/connect.hpp"
#include "pg/diagnosis.hpp"
#include "pg/hosts.hpp"
#include "pg/tls_info.hpp"
#include "postgis/discovery.hpp"
#include "postgis/function_source.hpp"
#include "postgis/table_source.hpp"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <utility>

namespace kachel::postgis {

namespace asio = boost::asio;

namespace {

/// Connection identity used in source signatures: host, port and database (decision D11). A
/// connection string of several hosts is one identity whichever host is the primary now, so a
/// failover republishes nothing under another id.
std::string pool_identity(pg::connection const& conn, pg::connect_params const& params) {
    if (pg::split_hosts(params).size() > 1) {
        return params.label();
    }
    char const* db = PQdb(conn.native_handle());
    return fmt::format("{}/{}", conn.server_address(), db == nullptr ? "" : db);
}

/// The connection that discovers the catalog of several hosts: to the primary, which libpq
/// finds among them. When no host takes writes but one answers as a standby (the primary is
/// down), the catalog is read on the standby, so its tiles are served at once; reloads and LISTEN
/// wait for a primary. \returns the connection, and whether it is to the primary.
asio::awaitable<std::pair<std::unique_ptr<pg::connection>, bool>>
async_discovery_connection(asio::any_io_executor executor, pg::connect_params const& first,
                           std::chrono::milliseconds retry_timeout) {
    using result = std::pair<std::unique_ptr<pg::connection>, bool>;
    std::string failure;
    try {
        auto conn = co_await pg::async_connect_with_retry(executor, first, std::chrono::milliseconds{0});
        co_return result(std::move(conn), true);
    } catch (database_error const& e) {
        failure = e.what();
    }
    if (!pg::answered_as_standby(failure)) {
        auto conn = co_await pg::async_connect_with_retry(executor, first, retry_timeout);
        co_return result(std::move(conn), true);
    }
    spdlog::warn("No host of {} takes writes now ({}): the catalog is read on a standby and its tiles "
                 "are served from the standbys; catalog reloads and change notifications wait for a primary",
                 first.label(), first_line(failure));
    auto const any = pg::any_host_params(first);
    auto conn = co_await pg::async_connect_with_retry(executor, any, retry_timeout);
    co_return result(std::move(conn), false);
}

void log_connection(pg::connection const& conn, server_versions const& versions) {
    PGconn* c = conn.native_handle();
    spdlog::info("Connected to PostgreSQL {} / PostGIS {} at {} as {} (database {})", versions.postgres_text,
                 versions.postgis_text, conn.server_address(), PQuser(c), PQdb(c));
}

/// Certificate expiry dates as metrics (kachel_postgres_certificate_expiry_seconds).
void record_certificates(pg::tls_report const& tls, pg::connect_params const& params) {
    auto const unix_time = [](pg::certificate_info const& c) {
        return static_cast<double>(
            std::chrono::duration_cast<std::chrono::seconds>(c.not_after.time_since_epoch()).count());
    };
    auto& m = global_metrics();
    if (!tls.server_chain.empty()) {
        m.set_certificate_expiry(params.label(), "server", tls.server_chain.front().subject,
                                 unix_time(tls.server_chain.front()));
    }
    if (tls.client) {
        m.set_certificate_expiry(params.label(), "client", tls.client->subject, unix_time(*tls.client));
    }
    if (tls.chain_verified) {
        for (auto const& ca : tls.trusted_cas) {
            m.set_certificate_expiry(params.label(), "ca", ca.subject, unix_time(ca));
        }
    }
}

char const* relation_kind(char relkind) noexcept {
    switch (relkind) {
    case 'v':
        return "view";
    case 'm':
        return "materialized view";
    default:
        return "table";
    }
}

} // namespace

std::shared_ptr<tiles::tile_source const> make_source(table_spec const& spec, published_database const& db) {
    return std::make_shared<table_source>(spec, route_of(db), db.margin_supported);
}

std::shared_ptr<tiles::tile_source const> make_source(function_spec const& spec,
                                                      published_database const& db) {
    return std::make_shared<function_source>(spec, route_of(db));
}

std::vector<std::shared_ptr<tiles::tile_source const>> make_sources(published_database const& db) {
    std::vector<std::shared_ptr<tiles::tile_source const>> out;
    for (auto const& spec : db.tables) {
        auto const& table = spec.table;
        if (!table.has_spatial_index && table.relkind != 'v') {
            spdlog::warn("Table {}.{} has no spatial index on column {}", table.schema, table.table,
                         table.geometry_column);
        }
        spdlog::info("Publishing {} {}.{}.{} as source '{}'", relation_kind(table.relkind), table.schema,
                     table.table, table.geometry_column, spec.id);
        out.push_back(make_source(spec, db));
    }
    for (auto const& spec : db.functions) {
        spdlog::info("Publishing function {} as source '{}'", spec.function.signature, spec.id);
        out.push_back(make_source(spec, db));
    }
    return out;
}

std::string fingerprint(tiles::tile_source const& source) {
    auto doc = source.tilejson();
    doc.erase("bounds");
    std::string out = doc.dump();
    if (auto const* table = dynamic_cast<table_source const*>(&source)) {
        out += table->all_sql();
    } else if (auto const* function = dynamic_cast<function_source const*>(&source)) {
        out += function->sql();
    }
    return out;
}

read_route route_of(published_database const& db) {
    return read_route{db.pool, db.replicas, db.horizon};
}

asio::awaitable<published_database> async_rediscover_database(read_route route, publish_config const& config,
                                                              tiles::id_resolver& ids) {
    auto const& pool = route.pool;
    auto lease = co_await pool->async_acquire();
    auto const versions = co_await async_check_versions(*lease);
    published_database out;
    std::exception_ptr failure;
    try {
        out = co_await async_discover_database(*lease, config, pool_identity(*lease, pool->params()), ids);
    } catch (...) {
        failure = std::current_exception();
    }
    // The connection goes back to the pool with the tile connections' settings, whatever happened.
    co_await pg::prepare_session(*lease, pool->options());
    if (failure) {
        std::rethrow_exception(failure);
    }
    out.pool = route.pool;
    out.replicas = route.replicas;
    out.horizon = route.horizon;
    out.margin_supported = versions.postgis >= postgis_margin_version;
    co_return out;
}

asio::awaitable<published_database> async_discover_database(pg::connection& conn,
                                                            publish_config const& config,
                                                            std::string const& identity,
                                                            tiles::id_resolver& ids) {
    bool const want_tables = config.auto_publish.tables || !config.tables.empty();
    bool const want_functions = config.auto_publish.functions || !config.functions.empty();
    std::vector<table_info> tables;
    std::vector<function_info> functions;
    if (want_tables) {
        tables = co_await async_discover_tables(conn);
    }
    if (want_functions) {
        functions = co_await async_discover_functions(conn);
    }
    auto const schema_rows = co_await conn.async_exec("SELECT nspname::text FROM pg_namespace");
    std::vector<std::string> schemas;
    schemas.reserve(static_cast<std::size_t>(schema_rows.num_rows()));
    for (int i = 0; i < schema_rows.num_rows(); ++i) {
        schemas.emplace_back(schema_rows.get(i, 0));
    }

    auto resolved = resolve_sources(config, tables, functions, schemas, identity, ids);
    if (!resolved.fatal_problems.empty()) {
        throw config_error{
            fmt_error("{}\n{} row filter(s) cannot be applied: fix them; a source whose filter "
                      "fails is never served unfiltered",
                      fmt::join(resolved.fatal_problems, "\n"), resolved.fatal_problems.size())};
    }
    for (auto const& spec : resolved.tables) {
        if (spec.filter) {
            auto const filter = compile_filter(*spec.filter, spec.table, spec.layout.srid, 1);
            co_await async_check_filter(conn, spec.table, filter, spec.id, spec.filter_text);
        }
    }
    if (!resolved.problems.empty()) {
        for (auto const& p : resolved.problems) {
            if (config.on_invalid == invalid_policy::abort) {
                spdlog::error("{}", p);
            } else {
                spdlog::warn("{}; the source is skipped", p);
            }
        }
        if (config.on_invalid == invalid_policy::abort) {
            throw config_error{
                fmt_error("{} configured source(s) cannot be published (see the errors above): fix "
                          "the config, or set on_invalid: warn (--on-invalid warn) to start without "
                          "them",
                          resolved.problems.size())};
        }
    }

    // quick: each bounds statement may take 5 s; calc: no limit.
    co_await conn.async_exec(config.auto_bounds == bounds_mode::quick ? "SET statement_timeout = 5000"
                                                                      : "SET statement_timeout = 0");
    // Bounds in as few statements as possible. quick: every table's estimated extent in one
    // statement, then the exact extents of the tables it could not estimate (neither statistics
    // nor a spatial index), a few dozen tables per statement; calc: the exact extents that way.
    std::vector<bounds_request> requests;
    std::vector<std::size_t> positions;
    std::vector<std::optional<std::array<double, 4>>> found(resolved.tables.size());
    for (std::size_t i = 0; i < resolved.tables.size(); ++i) {
        auto& spec = resolved.tables[i];
        if (srid_per_value(spec.table, spec.layout.srid)) {
            // A column without a declared SRID: its values' SRIDs (for the tile filter) and
            // their extent, of the rows the filter keeps, in one statement.
            std::optional<row_filter> filter;
            if (spec.filter) {
                filter = compile_filter(*spec.filter, spec.table, spec.layout.srid, 1);
            }
            auto found_srids =
                co_await async_value_srids(conn, spec.table, spec.layout.srid, filter ? &*filter : nullptr);
            spec.layout.value_srids = std::move(found_srids.srids);
            if (resolved.needs_bounds[i] && config.auto_bounds != bounds_mode::skip) {
                found[i] = found_srids.bounds;
            }
        } else if (resolved.needs_bounds[i] && spec.filter) {
            // The bounds of the rows the filter keeps: no estimate knows them.
            if (config.auto_bounds != bounds_mode::skip) {
                auto const filter = compile_filter(*spec.filter, spec.table, spec.layout.srid, 1);
                found[i] = co_await async_filtered_bounds(conn, spec.table, spec.layout.srid, filter);
            }
        } else if (resolved.needs_bounds[i]) {
            requests.push_back({&resolved.tables[i].table, resolved.tables[i].layout.srid});
            positions.push_back(i);
        }
    }
    if (!requests.empty() && config.auto_bounds != bounds_mode::skip) {
        std::vector<bounds_request> exact;
        std::vector<std::size_t> exact_positions;
        if (config.auto_bounds == bounds_mode::calc) {
            exact = requests;
            exact_positions = positions;
        } else if (auto batch = co_await async_estimated_bounds(conn, requests)) {
            for (std::size_t k = 0; k < positions.size(); ++k) {
                found[positions[k]] = (*batch)[k];
                if (!(*batch)[k]) {
                    auto const& table = *requests[k].table;
                    spdlog::debug("Estimated bounds of {}.{}.{} unavailable (no statistics or spatial "
                                  "index yet: run ANALYZE); computing them exactly",
                                  table.schema, table.table, table.geometry_column);
                    exact.push_back(requests[k]);
                    exact_positions.push_back(positions[k]);
                }
            }
        } else {
            // The one statement failed: each table on its own, estimated then exact.
            for (std::size_t k = 0; k < positions.size(); ++k) {
                found[positions[k]] = co_await async_table_bounds(conn, *requests[k].table, requests[k].srid,
                                                                  bounds_mode::quick);
            }
        }
        auto const exact_found = co_await async_exact_bounds(conn, exact);
        for (std::size_t k = 0; k < exact_positions.size(); ++k) {
            found[exact_positions[k]] = exact_found[k];
        }
    }
    published_database out;
    for (std::size_t i = 0; i < resolved.tables.size(); ++i) {
        auto& spec = resolved.tables[i];
        if (resolved.needs_bounds[i]) {
            spec.extras.bounds = found[i];
        }
        out.tables.push_back(std::move(spec));
    }
    out.functions = std::move(resolved.functions);
    co_await conn.async_exec("RESET statement_timeout");
    co_return out;
}

asio::awaitable<published_database>
async_publish_database(asio::any_io_executor executor, pg::connect_params params, pg::pool_options options,
                       std::chrono::milliseconds retry_timeout, publish_config const& config,
                       tiles::id_resolver& ids, tiles::catalog& catalog, readiness* ready) {
    // Several hosts: discovery, reloads and LISTEN go to the primary, which libpq finds among
    // them; the tile reads go to the standbys too (pg::replica_set).
    auto hosts = pg::split_hosts(params);
    auto const target = pg::read_target_of(params);
    params = pg::primary_params(std::move(params));
    spdlog::info("Connecting to PostgreSQL ({}; sslmode {} from {})", params.redacted(), params.sslmode.value,
                 params.sslmode.source);
    pg::connect_params first = params;
    first.application_name = options.name + "/C1";
    std::unique_ptr<pg::connection> conn;
    bool on_primary = true;
    try {
        if (hosts.size() > 1 && target != pg::read_target::primary_only) {
            auto found = co_await async_discovery_connection(executor, first, retry_timeout);
            conn = std::move(found.first);
            on_primary = found.second;
        } else {
            conn = co_await pg::async_connect_with_retry(executor, first, retry_timeout);
        }
    } catch (database_error const& e) {
        throw database_error{fmt_error("Connecting to PostgreSQL ({}) failed: {}", params.origin, e.what())};
    }
    auto const tls = pg::inspect_tls(*conn, params);
    pg::log_tls(tls, *conn, params, options.name);
    record_certificates(tls, params);
    auto const versions = co_await async_check_versions(*conn);
    log_connection(*conn, versions);
    // Discovery and the bounds queries run with the tile connections' settings too: a parallel
    // plan for a batch of bounds started workers that each loaded PostGIS (130 ms for 50 tables
    // whose extents took 20 ms). The statement_timeout backstop is added once it is known.
    co_await pg::prepare_session(*conn, options);
    auto const identity = pool_identity(*conn, params);

    auto out = co_await async_discover_database(*conn, config, identity, ids);
    // The server-side limit backs kachel's per-source timer: a little above the longest of them,
    // so kachel cancels first and keeps the connection.
    auto longest = config.statement_timeout;
    for (auto const& t : out.tables) {
        longest = std::max(longest, t.statement_timeout);
    }
    for (auto const& f : out.functions) {
        longest = std::max(longest, f.statement_timeout);
    }
    if (longest.count() > 0) {
        std::array const backstop{pg::session_setting{
            "statement_timeout", std::to_string((longest + std::chrono::seconds{1}).count()),
            "kachel: the longest source timeout + 1 s", true}};
        options.session_settings = pg::with_overrides(std::move(options.session_settings), backstop);
    }
    auto pool = pg::pool::create(std::move(params), std::move(options));
    out.pool = pool;
    if (hosts.size() > 1) {
        out.replicas = pg::replica_set::create(executor, pool, std::move(hosts), pool->options(), target);
        out.horizon = std::make_shared<tiles::change_horizon>();
        out.replicas->start();
        spdlog::info("{} names {} hosts: tile reads go to {}", pool->params().origin,
                     out.replicas->host_pools().size(),
                     target == pg::read_target::primary_only    ? "the primary (target_session_attrs)"
                     : target == pg::read_target::standbys_only ? "the standbys only (target_session_attrs)"
                                                                : "the standbys in turn, else the primary");
    }
    out.margin_supported = versions.postgis >= postgis_margin_version;
    for (auto& source : make_sources(out)) {
        catalog.add(std::move(source));
    }
    auto const effective = co_await pg::prepare_session(*conn, pool->options());
    spdlog::info("Session settings of the tile connections to {}: {}", pool->params().label(),
                 pool->options().prepared_statements
                     ? pg::describe(effective)
                     : std::string{"none (prepared_statements off: no session state)"});
    if (on_primary) {
        // A standby's connection stays out of the primary's pool: a read that must see a change
        // goes there.
        pool->adopt(std::move(conn));
    }
    if (ready != nullptr) {
        ready->add(pool, out.replicas);
    }
    co_return out;
}

} // namespace kachel::postgis
