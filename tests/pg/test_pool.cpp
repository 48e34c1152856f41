// The connection pool against a real server: reuse, limits, acquire timeout, broken connections.

#include "core/error.hpp"
#include "pg/pool.hpp"
#include "support/run.hpp"
#include "support/tcp_proxy.hpp"
#include "support/tempdb.hpp"

#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include <thread>

using namespace kachel;
using test::run;
namespace asio = boost::asio;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

std::shared_ptr<pg::pool> make_pool(std::size_t size, std::chrono::milliseconds timeout) {
    return pg::pool::create(test::params_for(test::tls_conninfo("postgres")),
                            pg::pool_options{size, timeout, "kachel-pool-test"});
}

asio::awaitable<std::string> backend_pid(pg::pool& pool) {
    auto conn = co_await pool.async_acquire();
    auto const r = co_await conn->async_exec("SELECT pg_backend_pid()");
    co_return std::string{r.get(0, 0)};
}

} // namespace

TEST(pool, reuses_an_idle_connection) {
    asio::io_context ioc;
    auto pool = make_pool(2, std::chrono::milliseconds{1000});
    auto const first = run(ioc, backend_pid(*pool));
    auto const second = run(ioc, backend_pid(*pool));
    EXPECT_EQ(first, second);
    EXPECT_EQ(pool->size(), 1U);
}

TEST(pool, connections_are_named_and_use_tls) {
    asio::io_context ioc;
    auto pool = make_pool(1, std::chrono::milliseconds{1000});
    auto const row = run(ioc, [&]() -> asio::awaitable<std::string> {
        auto conn = co_await pool->async_acquire();
        auto const r = co_await conn->async_exec(
            "SELECT a.application_name || ' ' || s.ssl::text FROM pg_stat_activity a JOIN pg_stat_ssl s "
            "USING (pid) WHERE pid = pg_backend_pid()");
        co_return std::string{r.get(0, 0)};
    }());
    EXPECT_EQ(row, "kachel-pool-test/C1 true");
}

TEST(pool, times_out_when_every_connection_is_busy) {
    asio::io_context ioc;
    auto pool = make_pool(1, std::chrono::milliseconds{200});
    auto const outcome = run(ioc, [&]() -> asio::awaitable<std::string> {
        auto held = co_await pool->async_acquire();
        auto const start = std::chrono::steady_clock::now();
        try {
            auto second = co_await pool->async_acquire();
        } catch (unavailable_error const& e) {
            auto const waited = std::chrono::steady_clock::now() - start;
            co_return std::string{e.what()} +
                (waited >= std::chrono::milliseconds{190} ? " [waited]" : " [early]");
        }
        co_return "acquired";
    }());
    EXPECT_NE(outcome.find("no database connection became free within 200 ms"), std::string::npos) << outcome;
    EXPECT_NE(outcome.find("[waited]"), std::string::npos) << outcome;
}

TEST(pool, a_waiter_gets_the_connection_given_back) {
    asio::io_context ioc;
    auto pool = make_pool(1, std::chrono::milliseconds{3000});
    auto const outcome = run(ioc, [&]() -> asio::awaitable<std::string> {
        auto executor = co_await asio::this_coro::executor;
        auto held = std::make_unique<pg::pooled_connection>(co_await pool->async_acquire());
        // Give the connection back after 100 ms from another coroutine.
        asio::co_spawn(
            executor,
            [&held, executor]() -> asio::awaitable<void> {
                asio::steady_timer t{executor, std::chrono::milliseconds{100}};
                co_await t.async_wait(asio::use_awaitable);
                held.reset();
            },
            asio::detached);
        auto const start = std::chrono::steady_clock::now();
        auto again = co_await pool->async_acquire();
        auto const waited = std::chrono::steady_clock::now() - start;
        co_return waited < std::chrono::milliseconds{2000} ? "woken" : "timed out";
    }());
    EXPECT_EQ(outcome, "woken");
    EXPECT_EQ(pool->size(), 1U);
}

TEST(pool, a_broken_connection_is_replaced) {
    asio::io_context ioc;
    auto pool = make_pool(1, std::chrono::milliseconds{1000});
    test::admin_connection admin{"postgres"};
    // Ends a backend and waits until it has exited (its FATAL and the end of the stream sent).
    auto const terminate = [&admin](std::string const& pid) {
        admin.query("SELECT pg_terminate_backend(" + pid + ")");
        for (int i = 0; i < 500; ++i) {
            if (admin.query("SELECT count(*) FROM pg_stat_activity WHERE pid = " + pid).front() == "0") {
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds{10});
        }
        FAIL() << "backend " << pid << " still there";
    };
    // Ended while idle in the pool: found before use (connection::check_idle), and replaced.
    auto const first = run(ioc, backend_pid(*pool));
    terminate(first);
    auto const second = run(ioc, backend_pid(*pool));
    EXPECT_NE(first, second);
    EXPECT_EQ(pool->size(), 1U);
    // Ended while leased: the statement fails, and the connection is not given back.
    auto const failed = run(ioc, [&]() -> asio::awaitable<bool> {
        auto conn = co_await pool->async_acquire();
        terminate(second);
        try {
            co_await conn->async_exec("SELECT 1");
        } catch (database_error const&) {
            co_return true;
        }
        co_return false;
    }());
    EXPECT_TRUE(failed);
    auto const third = run(ioc, backend_pid(*pool));
    EXPECT_NE(second, third);
    EXPECT_EQ(pool->size(), 1U);
}

namespace {

/// Settings a pooled connection of `pool` runs with, as "name=value" lines in `names` order.
std::string session_values(asio::io_context& ioc, pg::pool& pool) {
    return run(ioc, [&]() -> asio::awaitable<std::string> {
        auto conn = co_await pool.async_acquire();
        auto const r = co_await conn->async_exec(
            "SELECT string_agg(name || '=' || current_setting(name), ' ' ORDER BY name) FROM pg_settings "
            "WHERE name IN ('plan_cache_mode', 'max_parallel_workers_per_gather', 'jit', 'work_mem')");
        co_return std::string{r.get(0, 0)};
    }());
}

/// What acquiring a connection from a pool with `extra` among its session settings gives:
/// "acquired", or the error's text.
std::string acquire_with(pg::session_setting extra) {
    asio::io_context ioc;
    pg::pool_options options{1, std::chrono::milliseconds{1000}, "kachel-pool-test"};
    std::array const extras{std::move(extra)};
    options.session_settings = pg::with_overrides(options.session_settings, extras);
    auto pool = pg::pool::create(test::params_for(test::tls_conninfo("postgres")), options);
    return run(ioc, [&]() -> asio::awaitable<std::string> {
        try {
            auto conn = co_await pool->async_acquire();
        } catch (unavailable_error const& e) {
            co_return e.what();
        }
        co_return "acquired";
    }());
}

} // namespace

TEST(session_settings, tile_connections_run_without_parallel_workers_or_jit_and_with_custom_plans) {
    asio::io_context ioc;
    auto pool = make_pool(1, std::chrono::milliseconds{1000});
    EXPECT_EQ(session_values(ioc, *pool),
              "jit=off max_parallel_workers_per_gather=0 plan_cache_mode=force_custom_plan work_mem=4MB");
}

TEST(session_settings, the_users_choices_win_over_kachels_defaults) {
    test::tempdb const db;
    // The database's own setting, and one in the connection's options.
    db.query("ALTER DATABASE \"" + db.name() + "\" SET max_parallel_workers_per_gather = 3");
    asio::io_context ioc;
    auto params = test::params_for(test::tls_conninfo(db.name()) + " options='-c jit=on -c work_mem=8MB'");
    auto pool =
        pg::pool::create(params, pg::pool_options{1, std::chrono::milliseconds{1000}, "kachel-pool-test"});
    EXPECT_EQ(session_values(ioc, *pool),
              "jit=on max_parallel_workers_per_gather=3 plan_cache_mode=force_custom_plan work_mem=8MB");

    // What the startup log and --check-connection print: each value with its origin.
    auto conn = run(ioc, pg::connection::async_connect(ioc.get_executor(), params));
    auto const effective = run(ioc, pg::prepare_session(*conn, pool->options()));
    EXPECT_EQ(pg::describe(effective), "plan_cache_mode=force_custom_plan (kachel default), "
                                       "max_parallel_workers_per_gather=3 (ALTER DATABASE), "
                                       "jit=on (connection options)");

    // The config key (forced) wins over both.
    pg::pool_options options{1, std::chrono::milliseconds{1000}, "kachel-pool-test"};
    std::array const from_config{
        pg::session_setting{"jit", "off", "session_settings in test.yaml", true},
        pg::session_setting{"max_parallel_workers_per_gather", "1", "session_settings in test.yaml", true},
        pg::session_setting{"work_mem", "16MB", "session_settings in test.yaml", true}};
    options.session_settings = pg::with_overrides(options.session_settings, from_config);
    auto configured = pg::pool::create(params, options);
    EXPECT_EQ(session_values(ioc, *configured),
              "jit=off max_parallel_workers_per_gather=1 plan_cache_mode=force_custom_plan work_mem=16MB");
}

TEST(session_settings, a_value_the_server_refuses_fails_with_its_name) {
    auto const outcome =
        acquire_with(pg::session_setting{"jit", "sometimes", "session_settings in test.yaml", true});
    EXPECT_NE(outcome.find("parameter \"jit\" requires a Boolean value"), std::string::npos) << outcome;
    EXPECT_NE(outcome.find("jit=sometimes (session_settings in test.yaml)"), std::string::npos) << outcome;
}

TEST(session_settings, a_name_the_server_does_not_know_fails_instead_of_being_ignored) {
    auto const outcome = acquire_with(
        pg::session_setting{"max_parallel_worker_per_gather", "1", "session_settings in test.yaml", true});
    EXPECT_NE(outcome.find("unrecognized configuration parameter \"max_parallel_worker_per_gather\""),
              std::string::npos)
        << outcome;
}

TEST(session_settings, none_without_prepared_statements) {
    asio::io_context ioc;
    pg::pool_options options{1, std::chrono::milliseconds{1000}, "kachel-pool-test"};
    options.prepared_statements = false;
    auto pool = pg::pool::create(test::params_for(test::tls_conninfo("postgres")), options);
    EXPECT_EQ(session_values(ioc, *pool),
              "jit=on max_parallel_workers_per_gather=2 plan_cache_mode=auto work_mem=4MB");
}

TEST(pool, a_request_cancelled_while_its_connection_opens_gives_the_slot_back) {
    // The path goes silent: the connection attempt would wait for its whole connect_timeout.
    test::tcp_proxy silent{static_cast<unsigned short>(std::stoi(test::cluster_env("KACHEL_PG_PORT")))};
    silent.blackhole();
    auto const conninfo = "host=127.0.0.1 port=" + std::to_string(silent.port()) +
                          " dbname=postgres user=kachel sslmode=disable connect_timeout=30";
    auto pool =
        pg::pool::create(test::params_for(conninfo), pg::pool_options{1, std::chrono::seconds{30}, "slot"});
    asio::io_context ioc;
    auto const outcome = run(ioc, [&]() -> asio::awaitable<int> {
        asio::steady_timer client_gone{co_await asio::this_coro::executor, std::chrono::milliseconds{200}};
        // The client goes away first: the acquire is cancelled mid-connect.
        auto const first = co_await (pool->async_acquire() || client_gone.async_wait(asio::use_awaitable));
        co_return static_cast<int>(first.index());
    }());
    EXPECT_EQ(outcome, 1);
    auto const stats = pool->stats();
    EXPECT_EQ(stats.open, 0U) << "the cancelled attempt kept its slot: the pool of one is full for ever";
    EXPECT_EQ(stats.waiters, 0U);
}
