#pragma once

#include "pg/pool.hpp"
#include "tiles/readiness_check.hpp"

#include <boost/asio/awaitable.hpp>

#include <memory>
#include <string>
#include <vector>

namespace kachel::postgis {

/// Readiness of the configured databases for `/_/ready`: each must hand out a connection within
/// a second and answer `SELECT 1`.
class readiness final : public tiles::readiness_check {
  public:
    void add(std::shared_ptr<pg::pool> pool);

    /// Why kachel is not ready (one line per failing database), empty when ready.
    [[nodiscard]] boost::asio::awaitable<std::vector<std::string>> async_problems() const override;

    /// The pools, for metrics.
    [[nodiscard]] std::vector<std::shared_ptr<pg::pool>> const& pools() const noexcept { return m_pools; }

  private:
    std::vector<std::shared_ptr<pg::pool>> m_pools;
};

} // namespace kachel::postgis
