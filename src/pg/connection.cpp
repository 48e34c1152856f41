#include "pg/connection.hpp"

#include "core/error.hpp"
#include "pg/cancel.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <array>
#include <charconv>

namespace kachel::pg {

namespace asio = boost::asio;

using asio::posix::stream_descriptor;
using namespace asio::experimental::awaitable_operators;
using clock = std::chrono::steady_clock;

namespace {

/// libpq messages end with a newline; keep the text, drop trailing whitespace.
std::string trimmed_message(char const* msg) {
    std::string s = msg == nullptr ? std::string{} : std::string{msg};
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) {
        s.pop_back();
    }
    return s;
}

/// Server notices (e.g. "stats for ... do not exist") go to the debug log, not to stderr.
void log_notice(void* /*arg*/, char const* message) {
    spdlog::debug("PostgreSQL notice: {}", trimmed_message(message));
}

/// Pointers to the parameters' text, as libpq takes them (valid while `params` lives).
std::vector<char const*> c_strings(std::span<std::string const> params) {
    std::vector<char const*> out;
    out.reserve(params.size());
    for (auto const& p : params) {
        out.push_back(p.c_str());
    }
    return out;
}

/// The `connect_timeout` libpq will use for `conn` (connection string, PGCONNECT_TIMEOUT), with
/// libpq's rules: whole seconds, 1 counts as 2, 0 or less or absent means none (nullopt).
std::optional<std::chrono::seconds> connect_timeout_of(PGconn* conn) {
    c_handle<PQconninfoOption, PQconninfoFree> options{PQconninfo(conn)};
    for (auto const* o = options.get(); o != nullptr && o->keyword != nullptr; ++o) {
        if (std::string_view{o->keyword} != "connect_timeout" || o->val == nullptr) {
            continue;
        }
        std::string_view const text{o->val};
        int seconds = 0;
        auto const [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
        if (ec != std::errc{} || seconds <= 0) {
            return std::nullopt;
        }
        return std::chrono::seconds{std::max(seconds, 2)};
    }
    return std::nullopt;
}

} // namespace

connection::connection(asio::any_io_executor const& executor, PGconn* conn)
    : m_conn(conn), m_socket(executor) {}

connection::~connection() {
    // libpq owns the file descriptor: detach it from Asio so only PQfinish closes it.
    if (m_socket.is_open()) {
        m_socket.release();
    }
}

void connection::rebind_socket() {
    // PQsocket() may change while connecting (sslmode allow/prefer retries, several hosts), and a
    // new socket can reuse the old number: always re-register with the reactor.
    if (m_socket.is_open()) {
        m_socket.release();
    }
    int const fd = PQsocket(m_conn.get());
    if (fd >= 0) {
        m_socket.assign(fd);
    }
}

asio::awaitable<bool> connection::async_wait_until(stream_descriptor::wait_type what,
                                                   clock::time_point deadline) {
    asio::steady_timer timer{m_socket.get_executor(), deadline};
    auto const outcome = co_await (m_socket.async_wait(what, asio::as_tuple(asio::use_awaitable)) ||
                                   timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    co_return outcome.index() == 0;
}

asio::awaitable<std::unique_ptr<connection>>
connection::async_connect(asio::any_io_executor executor, connect_params const& params,
                          std::optional<clock::time_point> deadline) {
    std::vector<char const*> keys;
    std::vector<char const*> values;
    keys.push_back("fallback_application_name");
    values.push_back(params.application_name.c_str());
    for (auto const& [k, v] : params.keywords) {
        keys.push_back(k.c_str());
        values.push_back(v.c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);

    PGconn* raw = PQconnectStartParams(keys.data(), values.data(), 0);
    if (raw == nullptr) {
        throw database_error{"libpq could not allocate a connection"};
    }
    std::unique_ptr<connection> conn{new connection(executor, raw)};
    PQsetNoticeProcessor(raw, &log_notice, nullptr);
    if (PQstatus(raw) == CONNECTION_BAD) {
        throw database_error{trimmed_message(PQerrorMessage(raw))};
    }
    auto const limit = connect_timeout_of(raw).value_or(default_connect_timeout);
    auto const started = clock::now();
    auto const attempt_end = std::min(started + limit, deadline.value_or(clock::time_point::max()));
    auto status = PGRES_POLLING_WRITING;
    while (status != PGRES_POLLING_OK) {
        if (status == PGRES_POLLING_FAILED) {
            throw database_error{trimmed_message(PQerrorMessage(raw))};
        }
        conn->rebind_socket();
        if (!conn->m_socket.is_open()) {
            throw database_error{trimmed_message(PQerrorMessage(raw))};
        }
        auto const what =
            status == PGRES_POLLING_READING ? stream_descriptor::wait_read : stream_descriptor::wait_write;
        if (!co_await conn->async_wait_until(what, attempt_end)) {
            // What libpq says when its own connect_timeout expires, so the same hint applies.
            throw database_error{fmt::format(
                "connection to server at \"{}\", port {} failed: timeout expired (no answer within {} ms)",
                PQhost(raw) == nullptr ? "" : PQhost(raw), PQport(raw) == nullptr ? "" : PQport(raw),
                std::chrono::duration_cast<std::chrono::milliseconds>(attempt_end - started).count())};
        }
        status = PQconnectPoll(raw);
    }
    conn->rebind_socket();
    if (PQsetnonblocking(raw, 1) != 0) {
        throw database_error{trimmed_message(PQerrorMessage(raw))};
    }
    co_return conn;
}

bool connection::is_broken() const noexcept {
    return m_broken || PQstatus(m_conn.get()) != CONNECTION_OK ||
           PQtransactionStatus(m_conn.get()) != PQTRANS_IDLE;
}

bool connection::check_idle() noexcept {
    // An idle session is sent nothing but what ends it (a FATAL message, TLS close_notify, FIN)
    // or notices: peek without waiting, and let libpq read what is there.
    for (int round = 0; round < 2 && !is_broken(); ++round) {
        char byte = 0;
        auto const n = ::recv(PQsocket(m_conn.get()), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            m_broken = true;
        } else if (n < 0 || PQconsumeInput(m_conn.get()) == 0) {
            m_broken = m_broken || n > 0;
            break;
        }
    }
    return !is_broken();
}

std::string connection::server_address() const {
    char const* host = PQhost(m_conn.get());
    char const* port = PQport(m_conn.get());
    return fmt::format("{}:{}", host == nullptr ? "" : host, port == nullptr ? "" : port);
}

asio::awaitable<void> connection::async_flush() {
    for (;;) {
        int const r = PQflush(m_conn.get());
        if (r == 0) {
            co_return;
        }
        if (r < 0) {
            m_broken = true;
            throw connection_lost_error{trimmed_message(PQerrorMessage(m_conn.get()))};
        }
        // Output is pending: wait until the socket accepts more (our statements are small, so the
        // server never blocks on us and reading in between is not needed).
        co_await m_socket.async_wait(stream_descriptor::wait_write, asio::use_awaitable);
    }
}

asio::awaitable<result> connection::async_collect() {
    m_busy = true;
    result last;
    std::string error;
    for (;;) {
        while (PQisBusy(m_conn.get()) != 0) {
            co_await m_socket.async_wait(stream_descriptor::wait_read, asio::use_awaitable);
            if (PQconsumeInput(m_conn.get()) == 0) {
                m_broken = true;
                throw connection_lost_error{trimmed_message(PQerrorMessage(m_conn.get()))};
            }
        }
        result r{PQgetResult(m_conn.get())};
        if (!r) {
            break;
        }
        auto const st = r.status();
        if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK && error.empty()) {
            error = trimmed_message(PQresultErrorMessage(r.native_handle()));
            if (error.empty()) {
                error = trimmed_message(PQerrorMessage(m_conn.get()));
            }
        }
        last = std::move(r);
    }
    m_busy = false;
    if (!error.empty()) {
        if (PQstatus(m_conn.get()) != CONNECTION_OK) {
            m_broken = true;
            throw connection_lost_error{error};
        }
        throw database_error{error};
    }
    co_return last;
}

asio::awaitable<bool> connection::async_cancel_and_drain(clock::time_point deadline) noexcept {
    try {
        auto const cancel = co_await async_send_cancel(cancel_handle{PQgetCancel(m_conn.get())}, deadline);
        if (!cancel.answered) {
            spdlog::warn("Could not cancel a running statement: {}; closing its connection", cancel.error);
            m_broken = true;
            co_return false;
        }
        if (!cancel.error.empty()) {
            // The statement runs on: wait for it as for a cancelled one, until the deadline.
            spdlog::warn("Could not cancel a running statement: {}", cancel.error);
        }
        asio::steady_timer timer{m_socket.get_executor(), deadline};
        auto drain = [this]() -> asio::awaitable<void> {
            try {
                co_await async_collect();
            } catch (database_error const&) {
                // "canceling statement due to user request": expected.
            } catch (boost::system::system_error const&) {
                m_broken = true; // the wait was cancelled: the deadline came first
            }
        };
        auto const outcome = co_await (drain() || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
        if (outcome.index() == 1) {
            spdlog::warn("A cancelled statement's connection did not answer in time; closing it");
            m_broken = true;
        }
        co_return !is_broken();
    } catch (std::exception const& e) {
        spdlog::debug("cancelling a statement failed: {}", e.what());
        m_broken = true;
        co_return false;
    }
}

asio::awaitable<std::vector<notification>> connection::async_wait_notifications(clock::time_point deadline) {
    std::vector<notification> out;
    for (;;) {
        if (PQconsumeInput(m_conn.get()) == 0 || PQstatus(m_conn.get()) != CONNECTION_OK) {
            m_broken = true;
            throw connection_lost_error{trimmed_message(PQerrorMessage(m_conn.get()))};
        }
        while (c_handle<PGnotify, PQfreemem> n{PQnotifies(m_conn.get())}) {
            out.push_back(
                notification{n->relname, n->extra == nullptr ? std::string{} : n->extra, n->be_pid});
        }
        if (!out.empty() || !co_await async_wait_until(stream_descriptor::wait_read, deadline)) {
            co_return out;
        }
    }
}

asio::awaitable<result> connection::async_exec(std::string_view sql, std::span<std::string const> params,
                                               bool binary) {
    std::string const query{sql};
    co_return co_await async_exec_unnamed(query, {}, params, binary);
}

asio::awaitable<result> connection::async_exec_unnamed(std::string const& sql,
                                                       std::span<Oid const> param_types,
                                                       std::span<std::string const> params, bool binary) {
    auto const values = c_strings(params);
    check_sent(PQsendQueryParams(m_conn.get(), sql.c_str(), static_cast<int>(values.size()),
                                 param_types.data(), values.data(), nullptr, nullptr, binary ? 1 : 0));
    co_await async_flush();
    co_return co_await async_collect();
}

void connection::check_sent(int sent) {
    if (sent == 0) {
        m_broken = true;
        throw connection_lost_error{trimmed_message(PQerrorMessage(m_conn.get()))};
    }
}

asio::awaitable<result> connection::async_exec_prepared(std::string const& name, std::string const& sql,
                                                        std::span<Oid const> param_types,
                                                        std::span<std::string const> params, bool binary) {
    if (!m_prepare) {
        co_return co_await async_exec_unnamed(sql, param_types, params, binary);
    }
    if (!m_prepared.contains(name)) {
        check_sent(PQsendPrepare(m_conn.get(), name.c_str(), sql.c_str(),
                                 static_cast<int>(param_types.size()), param_types.data()));
        co_await async_flush();
        co_await async_collect();
        m_prepared.insert(name);
    }
    auto const values = c_strings(params);
    check_sent(PQsendQueryPrepared(m_conn.get(), name.c_str(), static_cast<int>(values.size()), values.data(),
                                   nullptr, nullptr, binary ? 1 : 0));
    co_await async_flush();
    co_return co_await async_collect();
}

} // namespace kachel::pg
