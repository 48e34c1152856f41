// The connection pool against a real server: reuse, limits, acquire timeout, broken connections.

#include "core/error.hpp"
#include "pg/pool.hpp"
#include "support/run.hpp"
#include "support/tempdb.hpp"

#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

using namespace kachel;
using test::run;
namespace asio = boost::asio;

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
    auto const first = run(ioc, backend_pid(*pool));
    test::admin_connection{"postgres"}.query("SELECT pg_terminate_backend(" + first + ")");
    // The next query on the killed connection fails; the one after runs on a new connection.
    auto const failed = run(ioc, [&]() -> asio::awaitable<bool> {
        auto conn = co_await pool->async_acquire();
        try {
            co_await conn->async_exec("SELECT 1");
        } catch (database_error const&) {
            co_return true;
        }
        co_return false;
    }());
    EXPECT_TRUE(failed);
    auto const second = run(ioc, backend_pid(*pool));
    EXPECT_NE(first, second);
    EXPECT_EQ(pool->size(), 1U);
}
