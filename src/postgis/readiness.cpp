#include "postgis/readiness.hpp"

#include "core/error.hpp"
#include "core/text.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace kachel::postgis {

namespace asio = boost::asio;

void readiness::add(std::shared_ptr<pg::pool> pool, std::shared_ptr<pg::replica_set> replicas) {
    m_pools.push_back(std::move(pool));
    m_replicas.push_back(std::move(replicas));
}

namespace {

/// "" when the pool hands out a connection within a second that answers; else why not.
asio::awaitable<std::string> check(pg::pool& pool) {
    std::string failure;
    try {
        auto conn = co_await pool.async_acquire(std::chrono::milliseconds{1000});
        co_await conn->async_exec("SELECT 1");
    } catch (std::exception const& e) {
        failure = e.what();
    }
    // First line only: libpq's details can be long, and the text goes to a client.
    co_return std::string{first_line(failure)};
}

} // namespace

asio::awaitable<std::vector<std::string>> readiness::async_problems() const {
    std::vector<std::string> problems;
    for (std::size_t i = 0; i < m_pools.size(); ++i) {
        auto const& pool = m_pools[i];
        auto const& replicas = m_replicas[i];
        if (replicas) {
            auto const hosts = replicas->report();
            bool const standby_serves = std::any_of(hosts.begin(), hosts.end(),
                                                    [](pg::host_report const& h) { return h.serves_reads; });
            if (standby_serves) {
                continue;
            }
            if (replicas->target() == pg::read_target::standbys_only) {
                problems.push_back(fmt::format("database {}: no standby serves reads (target_session_attrs "
                                               "asks for standbys)",
                                               pool->params().label()));
                continue;
            }
        }
        auto const failure = co_await check(*pool);
        if (!failure.empty()) {
            problems.push_back(
                fmt::format("database {} is not answering: {}", pool->params().label(), failure));
        }
    }
    co_return problems;
}

std::vector<std::string> readiness::details() const {
    std::vector<std::string> out;
    for (auto const& replicas : m_replicas) {
        if (!replicas) {
            continue;
        }
        for (auto const& h : replicas->report()) {
            bool const differs = h.up && !h.configured_role.empty() && h.configured_role != h.role;
            out.push_back(fmt::format("host {}: {}{}, {}{}{}", h.label, h.role,
                                      differs ? fmt::format(" (configured as {})", h.configured_role) : "",
                                      h.up ? "up" : "down", h.serves_reads ? ", serves reads" : "",
                                      h.up ? fmt::format(", WAL {}", pg::lsn_text(h.position))
                                           : fmt::format(" ({})", h.error)));
        }
    }
    return out;
}

} // namespace kachel::postgis
