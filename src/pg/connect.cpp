#include "pg/connect.hpp"

#include "core/error.hpp"
#include "core/metrics.hpp"
#include "core/text.hpp"
#include "pg/diagnosis.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace kachel::pg {

namespace asio = boost::asio;

namespace {

std::string describe_success(connection const& conn, connect_params const& params) {
    PGconn* c = conn.native_handle();
    if (PQsslInUse(c) != 0) {
        return fmt::format("TLS {}", PQsslAttribute(c, "protocol"));
    }
    if (params.sslmode.value == "prefer") {
        return "no TLS: sslmode=prefer fell back to plaintext (the server refused TLS or the TLS attempt "
               "failed)";
    }
    if (params.sslmode.value == "allow") {
        return "no TLS: sslmode=allow tries plaintext first and the server accepted it";
    }
    return "no TLS";
}

/// "connection to server at ... failed: Connection refused\n\tIs ..." -> "Connection refused".
std::string short_reason(std::string_view failure) {
    auto line = first_line(failure);
    if (auto const pos = line.rfind("failed: "); pos != std::string_view::npos) {
        line = line.substr(pos + 8);
    }
    return std::string{line};
}

} // namespace

asio::awaitable<std::unique_ptr<connection>>
async_connect_with_retry(asio::any_io_executor executor, connect_params const& params,
                         std::chrono::milliseconds retry_timeout) {
    auto const start = std::chrono::steady_clock::now();
    // NOLINTNEXTLINE(clang-analyzer-deadcode.DeadStores): read below; clang 14 loses it across co_await
    auto const deadline = start + retry_timeout;
    auto delay = std::chrono::milliseconds{250};
    for (int attempt = 1;; ++attempt) {
        std::string failure;
        try {
            auto conn = co_await connection::async_connect(executor, params);
            global_metrics().count_connection_attempt(params.label(), {});
            spdlog::debug("connection attempt {} to {} (sslmode {}): connected, {}", attempt,
                          conn->server_address(), params.sslmode.value, describe_success(*conn, params));
            if (attempt > 1) {
                spdlog::info("Connected to PostgreSQL after {} attempts", attempt);
            }
            co_return conn;
        } catch (database_error const& e) {
            failure = e.what();
        }
        global_metrics().count_connection_attempt(params.label(), failure_reason(failure));
        spdlog::debug("connection attempt {} ({}, sslmode {}) failed: {}", attempt, params.redacted(),
                      params.sslmode.value, failure);
        auto const now = std::chrono::steady_clock::now();
        if (!is_transient_failure(failure) || now + delay > deadline) {
            auto const hint = connection_hints(failure, params);
            std::string message = failure;
            if (is_transient_failure(failure) && attempt > 1) {
                message += fmt::format("\n(gave up after {} attempts in {} s; --retry-timeout / "
                                       "postgres.retry_timeout sets how long to wait)",
                                       attempt,
                                       std::chrono::duration_cast<std::chrono::seconds>(now - start).count());
            }
            if (!hint.empty()) {
                message += "\n" + hint;
            }
            throw database_error{message};
        }
        if (attempt == 1) {
            spdlog::warn("PostgreSQL is not reachable yet ({}), retrying for up to {} s",
                         short_reason(failure),
                         std::chrono::duration_cast<std::chrono::seconds>(retry_timeout).count());
        }
        asio::steady_timer timer{executor, delay};
        co_await timer.async_wait(asio::use_awaitable);
        delay = std::min(delay * 2, std::chrono::milliseconds{5000});
    }
}

} // namespace kachel::pg
