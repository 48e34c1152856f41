#include "pg/pool.hpp"

#include "core/error.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "pg/cancel.hpp"
#include "pg/diagnosis.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <tuple>

namespace kachel::pg {

namespace asio = boost::asio;

asio::awaitable<std::vector<effective_setting>> prepare_session(connection& conn,
                                                                pool_options const& options) {
    if (!options.prepared_statements) {
        co_return std::vector<effective_setting>{};
    }
    co_return co_await async_apply_session_settings(conn, options.session_settings);
}

pooled_connection::~pooled_connection() {
    if (m_pool && m_conn) {
        m_pool->release(std::move(m_conn));
    }
}

std::shared_ptr<pool> pool::create(connect_params params, pool_options options) {
    assert(options.max_size >= 1);
    return std::shared_ptr<pool>{new pool(std::move(params), std::move(options))};
}

pool::pool(connect_params params, pool_options options)
    : m_params(std::move(params)), m_options(std::move(options)) {}

std::size_t pool::size() const {
    std::lock_guard const lock{m_mutex};
    return m_open;
}

void pool::adopt(std::unique_ptr<connection> conn) {
    conn->use_prepared_statements(m_options.prepared_statements);
    std::lock_guard const lock{m_mutex};
    ++m_open;
    ++m_next_number;
    m_idle.push_back(std::move(conn));
}

asio::awaitable<pooled_connection> pool::async_acquire() {
    return async_acquire(m_options.acquire_timeout);
}

pool::statistics pool::stats() const {
    std::lock_guard const lock{m_mutex};
    return statistics{m_options.max_size, m_open, m_idle.size(), m_waiters.size()};
}

asio::awaitable<pooled_connection> pool::async_acquire(std::chrono::milliseconds timeout) {
    auto const executor = co_await asio::this_coro::executor;
    auto const deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        std::unique_ptr<connection> conn;
        std::shared_ptr<waiter> wait;
        std::size_t number = 0;
        {
            std::lock_guard const lock{m_mutex};
            if (!m_idle.empty()) {
                conn = std::move(m_idle.back());
                m_idle.pop_back();
            } else if (m_open < m_options.max_size) {
                ++m_open;
                number = m_next_number++;
            } else {
                wait = std::make_shared<waiter>(executor);
                wait->timer.expires_at(deadline);
                m_waiters.push_back(wait);
            }
        }
        if (conn) {
            if (!conn->check_idle()) {
                spdlog::debug("pool {}: closing connection: broken while idle", m_options.name);
                conn.reset();
                std::lock_guard const lock{m_mutex};
                --m_open;
                continue;
            }
            co_return lease(std::move(conn));
        }
        if (number != 0) {
            // The slot counted in m_open goes back whatever ends the attempt: a failure, or the
            // cancellation of the request that waits for it (which throws at its next wait).
            slot_guard slot{*this};
            connect_params params = m_params;
            params.application_name = fmt::format("{}/C{}", m_options.name, number);
            try {
                conn = co_await connection::async_connect(executor, params, deadline);
                conn->use_prepared_statements(m_options.prepared_statements);
                co_await prepare_session(*conn, m_options);
                global_metrics().count_connection_attempt(m_params.label(), {});
            } catch (database_error const& e) {
                global_metrics().count_connection_attempt(m_params.label(), failure_reason(e.what()));
                throw unavailable_error{e.what()};
            }
            spdlog::debug("pool {}: opened connection C{} ({})", m_options.name, number,
                          PQsslInUse(conn->native_handle()) != 0
                              ? PQsslAttribute(conn->native_handle(), "protocol")
                              : "no TLS");
            slot.keep();
            co_return lease(std::move(conn));
        }
        // Woken by expiry or by release() cancelling the timer; both end the wait.
        std::ignore = co_await wait->timer.async_wait(asio::as_tuple(asio::use_awaitable));
        std::lock_guard const lock{m_mutex};
        if (!wait->notified) {
            std::erase(m_waiters, wait);
            if (std::chrono::steady_clock::now() >= deadline) {
                throw unavailable_error{
                    fmt_error("no database connection became free within {} ms (pool size {})",
                              timeout.count(), m_options.max_size)};
            }
        }
    }
}

pooled_connection pool::lease(std::unique_ptr<connection> conn) {
    {
        std::lock_guard const lock{m_mutex};
        m_leased.insert(conn.get());
    }
    return pooled_connection{shared_from_this(), std::move(conn)};
}

asio::awaitable<std::size_t> pool::async_cancel_running(std::chrono::steady_clock::time_point deadline) {
    std::vector<cancel_handle> cancels;
    {
        // PQgetCancel only copies the server's address and the backend key; done under the lock
        // so no leased connection can be freed meanwhile.
        std::lock_guard const lock{m_mutex};
        for (auto* conn : m_leased) {
            if (conn->is_busy()) {
                cancels.emplace_back(PQgetCancel(conn->native_handle()));
            }
        }
    }
    std::size_t sent = 0;
    for (auto& cancel : cancels) {
        auto const outcome = co_await async_send_cancel(std::move(cancel), deadline);
        if (outcome.answered && outcome.error.empty()) {
            ++sent;
        } else {
            spdlog::warn("pool {}: could not cancel a running statement: {}", m_options.name, outcome.error);
        }
    }
    co_return sent;
}

void pool::return_slot() noexcept {
    std::lock_guard const lock{m_mutex};
    --m_open;
    wake_one_locked();
}

void pool::release(std::unique_ptr<connection> conn) noexcept {
    {
        std::lock_guard const lock{m_mutex};
        m_leased.erase(conn.get());
    }
    if (conn->is_busy()) {
        // The request was cancelled mid-statement: cancel it in the server, then give the
        // connection back. Until then it counts as open, not idle.
        try {
            auto const executor = conn->executor();
            asio::co_spawn(
                executor,
                [self = shared_from_this(), c = std::move(conn)]() mutable -> asio::awaitable<void> {
                    // A server that does not answer within the acquire timeout loses the connection.
                    bool const ok = co_await c->async_cancel_and_drain(std::chrono::steady_clock::now() +
                                                                       self->m_options.acquire_timeout);
                    spdlog::debug("pool {}: cancelled a running statement ({})", self->m_options.name,
                                  ok ? "connection reused" : "connection closed");
                    self->release(std::move(c));
                },
                log_failure("Cancelling a statement of a released connection"));
            return;
        } catch (...) { // NOLINT(bugprone-empty-catch): falls through to closing it
        }
        if (!conn) {
            return;
        }
    }
    std::unique_ptr<connection> discard;
    {
        std::lock_guard const lock{m_mutex};
        if (conn->is_broken()) {
            discard = std::move(conn);
            --m_open;
        } else {
            m_idle.push_back(std::move(conn));
        }
        wake_one_locked();
    }
    if (discard) {
        spdlog::debug("pool {}: closing connection: broken after use", m_options.name);
    }
}

void pool::wake_one_locked() noexcept {
    if (m_waiters.empty()) {
        return;
    }
    auto w = std::move(m_waiters.front());
    m_waiters.pop_front();
    w->notified = true;
    // The timer belongs to the waiter's executor; cancel it there.
    asio::post(w->timer.get_executor(), [w] { w->timer.cancel(); });
}

} // namespace kachel::pg
