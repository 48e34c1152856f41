#pragma once

#include "core/c_handle.hpp"
#include "pg/connect_params.hpp"
#include "pg/result.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace kachel::pg {

/// A message a session sent with NOTIFY to a channel this connection LISTENs on.
struct notification {
    std::string channel;
    std::string payload;
    int sender_pid = 0; ///< the backend that sent it
};

/// One PostgreSQL connection driven without blocking: libpq in non-blocking mode, its socket
/// watched by Asio. Not thread-safe: one coroutine uses it at a time (the pool guarantees this).
class connection {
  public:
    /// How long a connection attempt may take when the connection string sets no
    /// `connect_timeout`. libpq would wait for the operating system (minutes, or for ever when
    /// something on the path accepts and then stays silent); kachel does not.
    static constexpr std::chrono::seconds default_connect_timeout{10};

    /// Connects with PQconnectStartParams/PQconnectPoll, waiting on socket readiness through Asio.
    /// The attempt ends at `connect_timeout` from the connection string or the environment
    /// (libpq's rules: seconds, at least 2; 0 = default_connect_timeout here), or at `deadline`
    /// if that comes first.
    /// \throws database_error with libpq's message verbatim when the connection fails, or
    ///         "... failed: timeout expired" when the attempt ran out of time.
    static boost::asio::awaitable<std::unique_ptr<connection>>
    async_connect(boost::asio::any_io_executor executor, connect_params const& params,
                  std::optional<std::chrono::steady_clock::time_point> deadline = {});

    connection(connection const&) = delete;
    connection& operator=(connection const&) = delete;
    ~connection();

    /// Runs one statement with text parameters. `binary` asks for binary result columns.
    /// \throws database_error on a failed statement or a broken connection.
    boost::asio::awaitable<result> async_exec(std::string_view sql, std::span<std::string const> params = {},
                                              bool binary = false);

    /// Prepares `sql` under `name` on first use on this connection, then executes it. With
    /// prepared statements off (use_prepared_statements(false)), runs it as an unnamed statement
    /// with the same parameter types instead, as a pooler in transaction mode needs.
    /// \throws database_error as async_exec.
    boost::asio::awaitable<result> async_exec_prepared(std::string const& name, std::string const& sql,
                                                       std::span<Oid const> param_types,
                                                       std::span<std::string const> params, bool binary);

    /// Waits for notifications (after `LISTEN`) until `deadline`. \returns those that arrived,
    /// oldest first; empty when the deadline came first. Statements may run between calls: what
    /// arrives meanwhile is kept by libpq and returned by the next call.
    /// \throws connection_lost_error when the connection is lost.
    boost::asio::awaitable<std::vector<notification>>
    async_wait_notifications(std::chrono::steady_clock::time_point deadline);

    /// Whether async_exec_prepared keeps named prepared statements on this connection (default)
    /// or sends unnamed ones (PgBouncer in transaction or statement mode before 1.21).
    void use_prepared_statements(bool on) noexcept { m_prepare = on; }

    /// True once the connection is unusable (lost, or left in an unknown state).
    [[nodiscard]] bool is_broken() const noexcept;

    /// Reads what the server sent an idle connection without waiting: a server that shut down
    /// or ended the session has closed it, which makes the connection broken. \returns !is_broken()
    bool check_idle() noexcept;

    /// True while a statement was sent and its results were not all read: the coroutine running
    /// it was cancelled (client gone, timeout). cancel_and_drain() makes it usable again.
    [[nodiscard]] bool is_busy() const noexcept { return m_busy && !m_broken; }

    /// Asks the server to cancel the running statement (PQcancel, from a helper thread so no
    /// event-loop thread blocks), then reads and drops its results. When the server has not
    /// answered by `deadline` (a network path that went silent), the connection is marked broken.
    /// \returns true when the connection is idle and usable again.
    boost::asio::awaitable<bool>
    async_cancel_and_drain(std::chrono::steady_clock::time_point deadline) noexcept;

    /// The executor the connection's socket is bound to.
    [[nodiscard]] boost::asio::any_io_executor executor() { return m_socket.get_executor(); }

    /// The libpq handle, valid while this object lives.
    [[nodiscard]] PGconn* native_handle() const noexcept { return m_conn.get(); }

    /// "host:port" of the server this connection reached.
    [[nodiscard]] std::string server_address() const;

  private:
    connection(boost::asio::any_io_executor const& executor, PGconn* conn);
    void rebind_socket();
    /// Waits until the socket is ready for `what`; false when `deadline` came first.
    boost::asio::awaitable<bool> async_wait_until(boost::asio::posix::stream_descriptor::wait_type what,
                                                  std::chrono::steady_clock::time_point deadline);
    /// Sends `sql` as an unnamed statement (one round trip) and collects its results.
    boost::asio::awaitable<result> async_exec_unnamed(std::string const& sql,
                                                      std::span<Oid const> param_types,
                                                      std::span<std::string const> params, bool binary);
    /// After a PQsend* call: 0 means the connection is lost. \throws connection_lost_error then.
    void check_sent(int sent);
    boost::asio::awaitable<void> async_flush();
    boost::asio::awaitable<result> async_collect();

    c_handle<PGconn, PQfinish> m_conn;
    boost::asio::posix::stream_descriptor m_socket;
    std::unordered_set<std::string> m_prepared;
    std::atomic<bool> m_broken = false;
    /// Read by pool::async_cancel_running from other threads.
    std::atomic<bool> m_busy = false;
    bool m_prepare = true;
};

} // namespace kachel::pg
