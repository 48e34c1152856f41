#include "app/application.hpp"

#include "app/archives.hpp"
#include "app/catalog_reload.hpp"
#include "app/change_listener.hpp"
#include "app/sources.hpp"
#include "config/save_config.hpp"
#include "core/error.hpp"
#include "core/event_loops.hpp"
#include "core/metrics.hpp"
#include "http/server.hpp"
#include "pg/hosts.hpp"
#include "postgis/check_connection.hpp"
#include "postgis/publisher.hpp"
#include "postgis/readiness.hpp"
#include "tiles/catalog.hpp"
#include "tiles/id_resolver.hpp"
#include "tiles/tile_cache.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <span>
#include <thread>

namespace kachel::app {

namespace asio = boost::asio;

namespace {

std::string format_endpoint(asio::ip::tcp::endpoint const& ep) {
    if (ep.address().is_v6()) {
        return fmt::format("[{}]:{}", ep.address().to_string(), ep.port());
    }
    return fmt::format("{}:{}", ep.address().to_string(), ep.port());
}

/// Pool gauges per connection, computed at scrape time.
std::vector<metrics::gauge_sample> pool_gauges(postgis::readiness const& ready) {
    std::vector<metrics::gauge_sample> out;
    for (auto const& pool : ready.pools()) {
        auto const s = pool->stats();
        metrics::labels const l{{"connection", pool->params().label()}};
        out.push_back(
            {"kachel_postgres_pool_size", "Maximum connections of the pool.", l, double(s.max_size)});
        out.push_back(
            {"kachel_postgres_pool_connections", "Open connections of the pool.", l, double(s.open)});
        out.push_back({"kachel_postgres_pool_idle", "Idle connections of the pool.", l, double(s.idle)});
        out.push_back({"kachel_postgres_pool_in_use", "Connections in use.", l, double(s.open - s.idle)});
        out.push_back(
            {"kachel_postgres_pool_waiters", "Requests waiting for a connection.", l, double(s.waiters)});
    }
    for (std::size_t i = 0; i < ready.pools().size(); ++i) {
        auto const& replicas = ready.replica_sets()[i];
        if (!replicas) {
            continue;
        }
        auto const connection = ready.pools()[i]->params().label();
        auto const hosts = replicas->report();
        std::uint64_t primary_position = 0;
        for (auto const& h : hosts) {
            if (h.up && h.role == "primary") {
                primary_position = std::max(primary_position, h.position);
            }
        }
        for (auto const& h : hosts) {
            metrics::labels const l{{"connection", connection}, {"host", h.label}, {"role", h.role}};
            out.push_back(
                {"kachel_postgres_host_up", "1 when the host answered its last check.", l, h.up ? 1.0 : 0.0});
            out.push_back({"kachel_postgres_host_serves_reads", "1 when tile reads may go to the host.", l,
                           h.serves_reads ? 1.0 : 0.0});
            if (h.role == "standby" && primary_position > 0) {
                out.push_back({"kachel_postgres_host_lag_bytes",
                               "How far a standby's replay is behind the primary's WAL, as last checked.", l,
                               double(primary_position > h.position ? primary_position - h.position : 0)});
            }
        }
    }
    return out;
}

/// The purge route's bearer token: the contents of `purge_token_file`, else KACHEL_PURGE_TOKEN;
/// nullopt when neither is given. \throws config_error for a file that cannot be read or is empty.
std::optional<std::string> purge_token(config::settings const& s) {
    if (s.purge_token_file) {
        std::ifstream in{*s.purge_token_file, std::ios::binary};
        if (!in) {
            throw config_error{fmt::format("purge_token_file {} cannot be read: {}", *s.purge_token_file,
                                           std::strerror(errno))};
        }
        std::string token{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
        while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back())) != 0) {
            token.pop_back();
        }
        if (token.empty()) {
            throw config_error{
                fmt::format("purge_token_file {} is empty: write the token in it", *s.purge_token_file)};
        }
        return token;
    }
    if (auto const* env = std::getenv("KACHEL_PURGE_TOKEN"); env != nullptr && *env != '\0') {
        return std::string{env};
    }
    return std::nullopt;
}

} // namespace

/// Everything a running server holds, in the order it is built (and destroyed in reverse).
struct application::state {
    explicit state(config::settings s)
        : settings(std::move(s)),
          loops(settings.workers != 0 ? settings.workers
                                      : std::max(1U, std::thread::hardware_concurrency())) {}

    config::settings settings;
    event_loops loops;
    postgis::readiness ready;
    /// Where archive reads run: they may block on the disk, so never on an event loop.
    asio::thread_pool blocking{std::max(2U, std::thread::hardware_concurrency())};
    std::unique_ptr<tiles::tile_cache> cache;
    /// Source ids, handed out at startup and by every reload (of archives and of databases);
    /// declared before what uses it, so that it outlives them.
    tiles::id_resolver ids;
    std::unique_ptr<archive_set> archives;
    std::unique_ptr<http::server> server;
    /// What changed, for `/_/changes`: told by the change listeners and the purge route.
    http::change_feed changes;
    /// Per database: its change listener, when it notifies changes (else null).
    std::vector<std::shared_ptr<change_listener>> listeners;
    /// Reloads the databases' catalogs (reload_interval, schema changes).
    std::shared_ptr<catalog_reloader> reloader;
    std::vector<std::size_t> gauge_tokens;
    std::exception_ptr failure;
    bool shutting_down = false; ///< on the main loop only

    /// Startup's outcome for wait_until_serving.
    std::mutex mutex;
    std::condition_variable changed;
    bool started = false;
    std::optional<asio::ip::tcp::endpoint> endpoint;

    void announce(std::optional<asio::ip::tcp::endpoint> ep) {
        {
            std::lock_guard const lock{mutex};
            started = true;
            endpoint = std::move(ep);
        }
        changed.notify_all();
    }

    /// Publishes every database, then starts the HTTP server and logs the readiness line.
    asio::awaitable<void> start() {
        auto& ioc = loops.main();
        auto catalog = std::make_shared<tiles::catalog>();
        auto const published =
            co_await async_publish_databases(settings, ioc.get_executor(), ids, *catalog, ready);
        std::map<std::string, std::shared_ptr<tiles::tile_source const>, std::less<>> by_id;
        for (auto& source : catalog->all()) {
            by_id.emplace(source->id(), std::move(source));
        }
        std::vector<database_part> parts;
        for (std::size_t i = 0; i < published.size(); ++i) {
            database_part part{settings.connect_params_for(i).label(),
                               settings.publish_config_for(i),
                               settings.reload_interval_for(i),
                               published[i],
                               {}};
            for (auto const& spec : published[i].tables) {
                part.sources.push_back(by_id.at(spec.id));
            }
            for (auto const& spec : published[i].functions) {
                part.sources.push_back(by_id.at(spec.id));
            }
            parts.push_back(std::move(part));
        }
        reloader = std::make_shared<catalog_reloader>(ioc.get_executor(), std::move(parts), ids, cache.get());
        listeners.resize(published.size());
        for (std::size_t i = 0; i < published.size(); ++i) {
            follow_changes(i, published[i]);
        }
        auto fixed = catalog->all(); // the PostgreSQL sources, which archive reloads keep
        archives = std::make_unique<archive_set>(settings, blocking.get_executor(), cache.get());
        for (auto& source : archives->open_all(ids)) {
            catalog->add(std::move(source));
        }
        if (settings.save_config) {
            config::save_config(*settings.save_config, settings, published);
        }
        if (catalog->size() == 0) {
            throw config_error{
                "No tile sources found: give a PostgreSQL connection (postgresql://... argument, "
                "DATABASE_URL or the config file's postgres.connection_string) to a database "
                "with PostGIS tables the user can read, or MBTiles or PMTiles files"};
        }
        http::server_options options;
        options.http = settings.http;
        if (options.http.purge_endpoint) {
            options.http.purge_token = purge_token(settings);
            spdlog::info("Purge route on: DELETE {}/cache/{{source_id}}, for {}", settings.http.route_prefix,
                         options.http.purge_token ? "requests with the bearer token"
                                                  : "loopback clients only");
        }
        options.max_connections = settings.max_connections;
        options.keep_alive = settings.keep_alive;
        options.ready = &ready;
        options.cache = cache.get();
        options.changes = &changes;
        options.blocking = blocking.get_executor();
        auto live = std::make_shared<tiles::live_catalog>(catalog);
        server = std::make_unique<http::server>(ioc, live, options, loops.others());
        auto const endpoints = server->listen(settings.listen_addresses);
        archives->watch(ioc, std::move(fixed), std::move(live), ids);
        reloader->on_publish([this](std::vector<std::shared_ptr<tiles::tile_source const>> sources) {
            archives->replace_fixed(std::move(sources));
        });
        reloader->on_reloaded(
            [this](std::size_t i, postgis::published_database const& db, catalog_changes const& found) {
                follow_changes(i, db);
                if (found.any()) {
                    nlohmann::json const event{
                        {"added", found.added}, {"changed", found.changed}, {"removed", found.removed}};
                    changes.publish("catalog", event.dump());
                }
            });
        reloader->start();
        spdlog::info("kachel is now active. See http://{}{}/catalog to see available services",
                     format_endpoint(endpoints.front()), settings.http.route_prefix);
        announce(endpoints.front());
    }

    /// Database `i` notifies its changes when notify_changes is on for it or for one of its
    /// tables: its listener follows the tables of `db` (started the first time). On the main loop.
    void follow_changes(std::size_t i, postgis::published_database const& db) {
        auto tables = followed_tables_of(db.tables);
        if (listeners[i]) {
            listeners[i]->follow(std::move(tables));
            return;
        }
        if (tables.empty() && !settings.publish_config_for(i).notify_changes) {
            return;
        }
        // LISTEN needs the primary: libpq finds it among several hosts.
        auto params = pg::primary_params(settings.connect_params_for(i));
        params.application_name += " changes";
        auto listener = std::make_shared<change_listener>(loops.main().get_executor(), std::move(params),
                                                          cache.get(), std::move(tables));
        if (db.replicas) {
            listener->guard_reads(db.horizon, db.replicas);
        }
        listener->on_change(
            [this](followed_source const& source, std::vector<tiles::lonlat_box> const& boxes) {
                changes.publish(http::change_event{{source.id}, boxes, source.margin, {}, {}});
            });
        listener->on_catalog([this, i] { reloader->request(i); });
        listener->start();
        listeners[i] = std::move(listener);
    }

    /// `--print-change-triggers`: the trigger SQL for the published tables on stdout.
    asio::awaitable<void> print_change_triggers() {
        auto catalog = std::make_shared<tiles::catalog>();
        auto const published =
            co_await async_publish_databases(settings, loops.main().get_executor(), ids, *catalog, ready);
        for (std::size_t i = 0; i < published.size(); ++i) {
            auto const& specs = published[i].tables;
            bool const any_on = std::any_of(specs.begin(), specs.end(),
                                            [](postgis::table_spec const& t) { return t.notify_changes; });
            std::vector<postgis::table_info> tables;
            std::vector<int> srids;
            for (auto const& t : specs) {
                if (t.notify_changes || !any_on) {
                    tables.push_back(t.table);
                    srids.push_back(t.layout.srid);
                }
            }
            auto const label = settings.connect_params_for(i).label();
            if (tables.empty()) {
                spdlog::warn("{} publishes no table: no trigger to print", label);
                continue;
            }
            if (!any_on) {
                spdlog::warn("notify_changes is off for {}: the SQL below covers every published table, and "
                             "kachel listens once notify_changes is on",
                             label);
            }
            fmt::print("-- {}\n{}", label,
                       postgis::change_triggers_sql(postgis::notified_tables(tables, srids)));
        }
        (void)std::fflush(stdout);
    }

    /// Waits for the requests in flight (up to `shutdown_timeout`), cancels the statements still
    /// running after that, waits briefly for their requests to end, then stops the event loop.
    /// Pools close their connections cleanly when they are destroyed.
    asio::awaitable<void> shut_down() {
        auto& ioc = loops.main();
        if (archives) {
            archives->stop();
        }
        if (reloader) {
            reloader->stop();
        }
        for (auto const& listener : listeners) {
            if (listener) {
                listener->stop();
            }
        }
        for (auto const& replicas : ready.replica_sets()) {
            if (replicas) {
                replicas->stop();
            }
        }
        auto const timeout = settings.shutdown_timeout;
        asio::steady_timer timer{ioc};
        using std::chrono::steady_clock;
        // Waits in steps of 20 ms while `busy()` is true, until `deadline`.
        auto const wait_while = [&timer](auto busy,
                                         steady_clock::time_point deadline) -> asio::awaitable<void> {
            while (busy() && steady_clock::now() < deadline) {
                timer.expires_after(std::chrono::milliseconds{20});
                co_await timer.async_wait(asio::use_awaitable);
            }
        };
        auto const requests = [this] { return server->in_flight() > 0; };
        co_await wait_while(requests, steady_clock::now() + timeout);
        // A catalog reload under way was cancelled: a moment for it to give its connection back.
        co_await wait_while([this] { return reloader && reloader->busy(); },
                            steady_clock::now() + std::chrono::seconds{2});
        // The change streams were told to end: a moment for their last words.
        co_await wait_while([this] { return changes.subscribers() > 0; },
                            steady_clock::now() + std::chrono::seconds{1});
        if (auto const left = server->in_flight(); left > 0) {
            auto const deadline = steady_clock::now() + std::chrono::seconds{2};
            std::size_t cancelled = 0;
            for (auto const& pool : ready.pools()) {
                cancelled += co_await pool->async_cancel_running(deadline);
            }
            for (auto const& replicas : ready.replica_sets()) {
                if (!replicas) {
                    continue;
                }
                auto const host_pools = replicas->host_pools();
                for (auto const& pool : host_pools) {
                    cancelled += co_await pool->async_cancel_running(deadline);
                }
            }
            spdlog::warn("{} request(s) still running after {} s: cancelled {} database statement(s)", left,
                         timeout.count(), cancelled);
            co_await wait_while(requests, deadline);
        }
        spdlog::info("kachel stopped");
        ioc.stop();
    }

    /// On the main loop: a graceful shutdown once serving, else an immediate stop.
    void stop(std::string_view why) {
        auto& ioc = loops.main();
        if (shutting_down) {
            return;
        }
        shutting_down = true;
        if (!server) {
            spdlog::info("{}, stopping", why);
            ioc.stop();
            return;
        }
        spdlog::info("{}, shutting down: no new connections, finishing {} request(s) within {} s", why,
                     server->in_flight(), settings.shutdown_timeout.count());
        server->stop();
        changes.close(); // the event streams end; they are not requests to wait for
        asio::co_spawn(ioc, shut_down(), [this](std::exception_ptr const& e) {
            if (e) {
                // A failed shutdown must not leave the process hanging: stop the loops now.
                failure = e;
                loops.main().stop();
            }
        });
    }

    /// `--check-connection`: one report per connection on stdout; true when all succeeded.
    asio::awaitable<bool> check_connections() {
        if (settings.postgres.empty()) {
            throw config_error{
                "--check-connection needs a connection: a postgresql://... argument, DATABASE_URL "
                "or the config file's postgres section"};
        }
        bool all_ok = true;
        for (std::size_t i = 0; i < settings.postgres.size(); ++i) {
            auto params = settings.connect_params_for(i);
            auto const options = settings.pool_options_for(i, params.application_name);
            auto const report =
                co_await postgis::async_check_connection(loops.main().get_executor(), params, options);
            fmt::print("{}", report.text);
            (void)std::fflush(stdout);
            all_ok = all_ok && report.ok;
        }
        co_return all_ok;
    }
};

application::application(config::settings settings) : m_state(std::make_unique<state>(std::move(settings))) {}

application::~application() {
    for (auto const token : m_state->gauge_tokens) {
        global_metrics().remove_gauges(token);
    }
}

int application::run(bool handle_signals) {
    auto& s = *m_state;
    auto& ioc = s.loops.main();
    auto const& settings = s.settings;
    global_metrics().set_constant_labels(settings.metric_labels);
    s.gauge_tokens.push_back(global_metrics().add_gauges([&s] { return pool_gauges(s.ready); }));
    if (auto const cache_options = settings.cache.tile_cache(); cache_options.max_bytes > 0) {
        s.cache = std::make_unique<tiles::tile_cache>(cache_options);
        spdlog::info("Tile cache: up to {} MB{}", cache_options.max_bytes / 1'000'000,
                     cache_options.expiry
                         ? fmt::format(", tiles kept {} s", cache_options.expiry->count() / 1000)
                         : std::string{});
        s.gauge_tokens.push_back(global_metrics().add_gauges([c = s.cache.get()] {
            return std::vector<metrics::gauge_sample>{
                {"kachel_tile_cache_bytes", "Bytes held by the tile cache.", {}, double(c->size_bytes())},
                {"kachel_tile_cache_entries",
                 "Tiles held by the tile cache (one per encoding).",
                 {},
                 double(c->entries())}};
        }));
    } else {
        spdlog::info("Tile cache: off");
    }

    std::optional<asio::signal_set> signals;
    if (handle_signals) {
        signals.emplace(ioc, SIGINT, SIGTERM);
        signals->async_wait([&s](boost::system::error_code const& ec, int signo) {
            if (!ec) {
                s.stop(fmt::format("Received signal {}", signo));
            }
        });
    }

    bool check_ok = false;
    if (settings.print_change_triggers) {
        asio::co_spawn(ioc, s.print_change_triggers(), [&](std::exception_ptr const& e) {
            s.failure = e;
            ioc.stop();
        });
    } else if (settings.check_connection) {
        asio::co_spawn(ioc, s.check_connections(), [&](std::exception_ptr e, bool ok) {
            s.failure = std::move(e);
            check_ok = ok;
            ioc.stop();
        });
    } else {
        asio::co_spawn(ioc, s.start(), [&s, &ioc](std::exception_ptr const& e) {
            if (e) {
                s.failure = e;
                ioc.stop();
            }
        });
    }

    s.loops.run_main();
    s.loops.shut_down(); // while the cache, the pools and the server still exist
    s.announce(std::nullopt);

    if (s.failure) {
        try {
            std::rethrow_exception(s.failure);
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

void application::request_stop() {
    auto* s = m_state.get();
    asio::post(s->loops.main(), [s] { s->stop("Stop requested"); });
}

std::optional<asio::ip::tcp::endpoint> application::wait_until_serving(std::chrono::seconds timeout) {
    auto& s = *m_state;
    std::unique_lock lock{s.mutex};
    s.changed.wait_for(lock, timeout, [&s] { return s.started; });
    return s.endpoint;
}

} // namespace kachel::app
