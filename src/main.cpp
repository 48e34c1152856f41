// kachel: reads the settings, publishes the databases' tables, serves them over HTTP.

#include "config/save_config.hpp"
#include "config/settings.hpp"
#include "core/error.hpp"
#include "core/event_loops.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "http/server.hpp"
#include "postgis/check_connection.hpp"
#include "postgis/publisher.hpp"
#include "postgis/readiness.hpp"
#include "tiles/catalog.hpp"
#include "tiles/id_resolver.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <thread>

namespace asio = boost::asio;

namespace {

std::string format_endpoint(asio::ip::tcp::endpoint const& ep) {
    if (ep.address().is_v6()) {
        return fmt::format("[{}]:{}", ep.address().to_string(), ep.port());
    }
    return fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

/// Pool gauges per connection, computed at scrape time.
std::vector<kachel::metrics::gauge_sample> pool_gauges(kachel::postgis::readiness const& ready) {
    std::vector<kachel::metrics::gauge_sample> out;
    for (auto const& pool : ready.pools()) {
        auto const s = pool->stats();
        kachel::metrics::labels const l{{"connection", pool->params().label()}};
        out.push_back(
            {"kachel_postgres_pool_size", "Maximum connections of the pool.", l, double(s.max_size)});
        out.push_back(
            {"kachel_postgres_pool_connections", "Open connections of the pool.", l, double(s.open)});
        out.push_back({"kachel_postgres_pool_idle", "Idle connections of the pool.", l, double(s.idle)});
        out.push_back({"kachel_postgres_pool_in_use", "Connections in use.", l, double(s.open - s.idle)});
        out.push_back(
            {"kachel_postgres_pool_waiters", "Requests waiting for a connection.", l, double(s.waiters)});
    }
    return out;
}

/// Publishes every database, then starts the HTTP server and logs the readiness line.
asio::awaitable<void> start(asio::io_context& ioc, kachel::config::settings const& settings,
                            kachel::postgis::readiness& ready, kachel::tiles::tile_cache* cache,
                            std::unique_ptr<kachel::http::server>& server,
                            std::vector<asio::io_context*> more_loops) {
    auto catalog = std::make_shared<kachel::tiles::catalog>();
    kachel::tiles::id_resolver ids;
    std::vector<kachel::postgis::published_database> published;
    for (std::size_t i = 0; i < settings.postgres.size(); ++i) {
        auto params = settings.connect_params_for(i);
        auto options = settings.pool_options_for(i, params.application_name);
        auto const publish = settings.publish_config_for(i);
        published.push_back(co_await kachel::postgis::async_publish_database(
            ioc.get_executor(), std::move(params), std::move(options), settings.retry_timeout_for(i), publish,
            ids, *catalog, &ready));
    }
    if (settings.save_config) {
        kachel::config::save_config(*settings.save_config, settings, published);
    }
    if (catalog->size() == 0) {
        throw kachel::config_error{
            "No tile sources found: give a PostgreSQL connection (postgresql://... argument, DATABASE_URL or "
            "the config file's postgres.connection_string) to a database with PostGIS tables the user can "
            "read"};
    }
    kachel::http::server_options options;
    options.http = settings.http;
    options.max_connections = settings.max_connections;
    options.keep_alive = settings.keep_alive;
    options.ready = &ready;
    options.cache = cache;
    server = std::make_unique<kachel::http::server>(ioc, catalog, options, more_loops);
    auto const endpoints = server->listen(settings.listen_addresses);
    spdlog::info("kachel is now active. See http://{}{}/catalog to see available services",
                 format_endpoint(endpoints.front()), settings.http.route_prefix);
}

/// Waits for the requests in flight (up to `timeout`), cancels the statements still running
/// after that, waits briefly for their requests to end, then stops the event loop. Pools close
/// their connections cleanly when they are destroyed.
asio::awaitable<void> shut_down(asio::io_context& ioc, kachel::http::server const& server,
                                kachel::postgis::readiness const& ready, std::chrono::seconds timeout) {
    asio::steady_timer timer{ioc};
    auto const wait_until_idle =
        [&](std::chrono::steady_clock::time_point deadline) -> asio::awaitable<void> {
        while (server.in_flight() > 0 && std::chrono::steady_clock::now() < deadline) {
            timer.expires_after(std::chrono::milliseconds{20});
            co_await timer.async_wait(asio::use_awaitable);
        }
    };
    co_await wait_until_idle(std::chrono::steady_clock::now() + timeout);
    if (auto const left = server.in_flight(); left > 0) {
        std::size_t cancelled = 0;
        for (auto const& pool : ready.pools()) {
            cancelled += pool->cancel_running();
        }
        spdlog::warn("{} request(s) still running after {} s: cancelled {} database statement(s)", left,
                     timeout.count(), cancelled);
        co_await wait_until_idle(std::chrono::steady_clock::now() + std::chrono::seconds{2});
    }
    spdlog::info("kachel stopped");
    ioc.stop();
}

/// `--check-connection`: one report per connection on stdout; true when all succeeded.
asio::awaitable<bool> check_connections(asio::io_context& ioc, kachel::config::settings const& settings) {
    if (settings.postgres.empty()) {
        throw kachel::config_error{"--check-connection needs a connection: a postgresql://... argument, "
                                   "DATABASE_URL or the config file's postgres section"};
    }
    bool all_ok = true;
    for (std::size_t i = 0; i < settings.postgres.size(); ++i) {
        auto params = settings.connect_params_for(i);
        auto const options = settings.pool_options_for(i, params.application_name);
        auto const report =
            co_await kachel::postgis::async_check_connection(ioc.get_executor(), params, options);
        fmt::print("{}", report.text);
        std::fflush(stdout);
        all_ok = all_ok && report.ok;
    }
    co_return all_ok;
}

} // namespace

int main(int argc, char** argv) {
    kachel::init_logging();
    kachel::config::settings settings;
    try {
        auto cli = kachel::config::parse_command_line(argc, argv);
        if (cli.exit_code) {
            return *cli.exit_code;
        }
        settings = std::move(cli.values);
    } catch (kachel::error const& e) {
        spdlog::error("{}", e.what());
        return 1;
    }

    unsigned const workers =
        settings.workers != 0 ? settings.workers : std::max(1U, std::thread::hardware_concurrency());
    // One event loop per worker thread: this thread runs `ioc` (startup, signals, accepting and
    // its share of the connections), each further worker runs a loop of its own.
    kachel::event_loops loops{workers};
    asio::io_context& ioc = loops.main();
    std::unique_ptr<kachel::http::server> server;
    std::exception_ptr failure;
    kachel::postgis::readiness ready;
    kachel::global_metrics().set_constant_labels(settings.metric_labels);
    kachel::global_metrics().add_gauges([&ready] { return pool_gauges(ready); });
    std::unique_ptr<kachel::tiles::tile_cache> cache;
    if (auto const cache_options = settings.cache.tile_cache(); cache_options.max_bytes > 0) {
        cache = std::make_unique<kachel::tiles::tile_cache>(cache_options);
        spdlog::info("Tile cache: up to {} MB{}", cache_options.max_bytes / 1'000'000,
                     cache_options.expiry
                         ? fmt::format(", tiles kept {} s", cache_options.expiry->count() / 1000)
                         : std::string{});
        kachel::global_metrics().add_gauges([c = cache.get()] {
            return std::vector<kachel::metrics::gauge_sample>{
                {"kachel_tile_cache_bytes", "Bytes held by the tile cache.", {}, double(c->size_bytes())},
                {"kachel_tile_cache_entries",
                 "Tiles held by the tile cache (one per encoding).",
                 {},
                 double(c->entries())}};
        });
    } else {
        spdlog::info("Tile cache: off");
    }

    asio::signal_set signals{ioc, SIGINT, SIGTERM};
    signals.async_wait([&](boost::system::error_code const& ec, int signo) {
        if (ec) {
            return;
        }
        if (!server) {
            spdlog::info("Received signal {}, stopping", signo);
            ioc.stop();
            return;
        }
        spdlog::info(
            "Received signal {}, shutting down: no new connections, finishing {} request(s) within {} s",
            signo, server->in_flight(), settings.shutdown_timeout.count());
        server->stop();
        asio::co_spawn(ioc, shut_down(ioc, *server, ready, settings.shutdown_timeout), asio::detached);
    });

    bool check_ok = false;
    if (settings.check_connection) {
        asio::co_spawn(ioc, check_connections(ioc, settings), [&](std::exception_ptr e, bool ok) {
            failure = e;
            check_ok = ok;
            ioc.stop();
        });
    } else {
        asio::co_spawn(ioc, start(ioc, settings, ready, cache.get(), server, loops.others()),
                       [&](std::exception_ptr e) {
                           if (e) {
                               failure = e;
                               ioc.stop();
                           }
                       });
    }

    loops.run_main();
    loops.shut_down(); // while the cache, the pools and the server still exist

    if (failure) {
        try {
            std::rethrow_exception(failure);
        } catch (std::exception const& e) {
            spdlog::error("{}", e.what());
        }
        return 1;
    }
    if (settings.check_connection) {
        return check_ok ? 0 : 1;
    }
    return 0;
}
