#include "postgis/readiness.hpp"

#include "core/error.hpp"

#include <fmt/format.h>

namespace kachel::postgis {

namespace asio = boost::asio;

void readiness::add(std::shared_ptr<pg::pool> pool) {
    m_pools.push_back(std::move(pool));
}

asio::awaitable<std::vector<std::string>> readiness::async_problems() const {
    std::vector<std::string> problems;
    for (auto const& pool : m_pools) {
        std::string failure;
        try {
            auto conn = co_await pool->async_acquire(std::chrono::milliseconds{1000});
            co_await conn->async_exec("SELECT 1");
        } catch (std::exception const& e) {
            failure = e.what();
        }
        if (!failure.empty()) {
            // First line only: libpq's details can be long, and the text goes to a client.
            problems.push_back(fmt::format("database {} is not answering: {}", pool->params().label(),
                                           failure.substr(0, failure.find('\n'))));
        }
    }
    co_return problems;
}

} // namespace kachel::postgis
