#pragma once

#include "pg/pool.hpp"
#include "pg/replica_set.hpp"
#include "tiles/readiness_check.hpp"

#include <boost/asio/awaitable.hpp>

#include <memory>
#include <string>
#include <vector>

namespace kachel::postgis {

/// Readiness of the configured databases for `/_/ready`: each must hand out a connection within
/// a second and answer `SELECT 1`. A database with read replicas is ready while a host its read
/// target allows serves reads (a standby, or the primary answering), and each host is reported.
class readiness final : public tiles::readiness_check {
  public:
    /// `replicas` may be null (a single host).
    void add(std::shared_ptr<pg::pool> pool, std::shared_ptr<pg::replica_set> replicas = nullptr);

    /// Why kachel is not ready (one line per failing database), empty when ready.
    [[nodiscard]] boost::asio::awaitable<std::vector<std::string>> async_problems() const override;

    /// One line per host of each replica set: "host localhost:5433/db: standby, up, serves reads,
    /// WAL 0/3000148".
    [[nodiscard]] std::vector<std::string> details() const override;

    /// The pools, for metrics.
    [[nodiscard]] std::vector<std::shared_ptr<pg::pool>> const& pools() const noexcept { return m_pools; }
    /// The replica sets, for metrics and shutdown.
    [[nodiscard]] std::vector<std::shared_ptr<pg::replica_set>> const& replica_sets() const noexcept {
        return m_replicas;
    }

  private:
    std::vector<std::shared_ptr<pg::pool>> m_pools;
    std::vector<std::shared_ptr<pg::replica_set>> m_replicas; ///< one per pool, null for a single host
};

} // namespace kachel::postgis
