#pragma once

#include "pg/connection.hpp"
#include "pg/session_settings.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

namespace kachel::pg {

class pool;

struct pool_options;

/// Applies `options.session_settings` to a connection before its first use, when prepared
/// statements are on (a pooler in transaction mode gets no session state).
/// \returns the effective values, empty when nothing was set. \throws database_error
boost::asio::awaitable<std::vector<effective_setting>> prepare_session(connection& conn,
                                                                       pool_options const& options);

/// A connection borrowed from a pool; gives it back (or discards it if broken) when destroyed.
class pooled_connection {
  public:
    pooled_connection(std::shared_ptr<pool> owner, std::unique_ptr<connection> conn) noexcept
        : m_pool(std::move(owner)), m_conn(std::move(conn)) {}
    pooled_connection(pooled_connection&&) noexcept = default;
    pooled_connection& operator=(pooled_connection&&) noexcept = delete;
    pooled_connection(pooled_connection const&) = delete;
    pooled_connection& operator=(pooled_connection const&) = delete;
    ~pooled_connection();

    /// \pre the lease was not moved from
    [[nodiscard]] connection& operator*() const noexcept { return *m_conn; }
    [[nodiscard]] connection* operator->() const noexcept { return m_conn.get(); }

  private:
    std::shared_ptr<pool> m_pool;
    std::unique_ptr<connection> m_conn;
};

/// Pool settings.
struct pool_options {
    static constexpr std::size_t default_max_size = 20;
    static constexpr std::chrono::milliseconds default_acquire_timeout{5000};

    std::size_t max_size = default_max_size;
    /// How long a request waits for a free connection before it gets "unavailable" (HTTP 503).
    std::chrono::milliseconds acquire_timeout = default_acquire_timeout;
    /// Names connections "<name>/C<n>" through application_name (unless the user set one).
    std::string name = "kachel";
    /// Server settings of every connection (prepare_session): kachel's defaults, the user's
    /// `session_settings`, and the statement_timeout backstop behind kachel's own timer.
    std::vector<session_setting> session_settings = default_session_settings();
    /// Named prepared statements and session settings (prepare_session) on every connection.
    /// false for a pooler in transaction mode: unnamed statements, no session state.
    bool prepared_statements = true;
};

/// A fixed-size pool of connections to one database, created lazily. Each connection is
/// either idle (in m_idle), in use (leased), or gone (broken ones are closed, not returned).
/// Thread-safe; always owned by a shared_ptr (leases keep it alive).
class pool : public std::enable_shared_from_this<pool> {
  public:
    /// \pre options.max_size >= 1
    /// Connections are bound to the executor of the coroutine that first needs them.
    static std::shared_ptr<pool> create(connect_params params, pool_options options);

    /// Borrows a connection: an idle one, a new one while below max_size, or the next one given
    /// back within acquire_timeout.
    /// \throws unavailable_error when the wait times out or a new connection cannot be made.
    boost::asio::awaitable<pooled_connection> async_acquire();
    /// The same with another wait limit (readiness checks wait less than tile requests).
    boost::asio::awaitable<pooled_connection> async_acquire(std::chrono::milliseconds timeout);

    /// A snapshot for metrics.
    struct statistics {
        std::size_t max_size = 0;
        std::size_t open = 0;
        std::size_t idle = 0;
        std::size_t waiters = 0;
    };
    [[nodiscard]] statistics stats() const;

    /// Adds an already connected connection (the one used for startup checks) as idle.
    /// \pre prepare_session() ran on it, when prepared statements are on.
    void adopt(std::unique_ptr<connection> conn);

    [[nodiscard]] connect_params const& params() const noexcept { return m_params; }
    [[nodiscard]] pool_options const& options() const noexcept { return m_options; }

    /// Connections currently open (idle + in use).
    [[nodiscard]] std::size_t size() const;

    /// Sends a cancel request for every statement running on a leased connection (at shutdown),
    /// each from a thread of its own (pg::async_send_cancel), waiting for the server's answers
    /// until `deadline`. \returns how many the server acknowledged.
    [[nodiscard]] boost::asio::awaitable<std::size_t>
    async_cancel_running(std::chrono::steady_clock::time_point deadline);

  private:
    friend class pooled_connection;
    struct waiter {
        explicit waiter(boost::asio::any_io_executor const& ex) : timer(ex) {}
        boost::asio::steady_timer timer;
        bool notified = false; // guarded by m_mutex
    };

    pool(connect_params params, pool_options options);
    void release(std::unique_ptr<connection> conn) noexcept;
    pooled_connection lease(std::unique_ptr<connection> conn);
    void wake_one_locked() noexcept;
    /// Gives back a slot of m_open that an attempt to open a connection held, waking a waiter.
    void return_slot() noexcept;

    /// Holds a slot of m_open while a connection is being opened; returns it unless kept.
    class slot_guard {
      public:
        explicit slot_guard(pool& p) noexcept : m_pool(&p) {}
        slot_guard(slot_guard const&) = delete;
        slot_guard& operator=(slot_guard const&) = delete;
        ~slot_guard() {
            if (m_pool != nullptr) {
                m_pool->return_slot();
            }
        }
        /// The slot now counts the opened connection.
        void keep() noexcept { m_pool = nullptr; }

      private:
        pool* m_pool;
    };

    connect_params m_params;
    pool_options m_options;
    mutable std::mutex m_mutex;
    std::vector<std::unique_ptr<connection>> m_idle;
    std::unordered_set<connection*> m_leased;
    std::deque<std::shared_ptr<waiter>> m_waiters;
    std::size_t m_open = 0;
    std::size_t m_next_number = 1;
};

} // namespace kachel::pg
