#pragma once

#include "pg/hosts.hpp"
#include "pg/pool.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace kachel::pg {

/// One host of a replica set as last seen.
struct host_report {
    std::string label; ///< "host:port/dbname"
    /// "primary", "standby", "unknown" before its first check, "unreachable" when it never answered
    std::string role;
    bool up = false;            ///< answered its last check
    bool serves_reads = false;  ///< a tile read may go to it now
    std::uint64_t position = 0; ///< WAL replayed (a standby) or inserted (the primary)
    std::string error;          ///< why it is down (first line, no secrets)
    /// The role the config file gives it (`hosts`), "" for none: kachel follows `role`, and
    /// names a host whose answer differs.
    std::string configured_role;
};

/// The hosts of a connection string that names several: a primary and its streaming standbys
/// (docs/operations.md, "Read replicas"). Tile reads go to the standbys in turn, each on a pool
/// of its own, and to the primary (`primary`, the pool libpq points at the primary) when none
/// can take them; `target_session_attrs` narrows that (read_target).
///
/// One connection per host checks it every second: up or down, primary or standby, and how far
/// it has replayed the WAL. A host that fails leaves the rotation, and is tried again with a
/// growing pause. A read that must see a change asks for a WAL position (async_acquire_read):
/// only a standby known to have replayed it takes the read, so a tile made there is never older
/// than the change. While a position is expected (expect) the hosts are checked every 10 ms.
/// Thread-safe; the checks run on the executor given to create().
class replica_set : public std::enable_shared_from_this<replica_set> {
  public:
    /// Checks while nothing is expected, and while a position is.
    static constexpr std::chrono::milliseconds check_interval{1000};
    static constexpr std::chrono::milliseconds eager_interval{10};
    /// How long after a position is expected the checks stay eager.
    static constexpr std::chrono::seconds eager_for{30};
    /// A check not answered within this time marks the host down.
    static constexpr std::chrono::milliseconds check_timeout{2000};
    /// How long a read that must see a position waits for a standby when the primary cannot
    /// take it, before it goes to the most advanced standby anyway.
    static constexpr std::chrono::milliseconds lag_wait{1000};

    /// \pre hosts.size() >= 2 (split_hosts of `primary`'s string)
    static std::shared_ptr<replica_set> create(boost::asio::any_io_executor executor,
                                               std::shared_ptr<pool> primary,
                                               std::vector<connect_params> hosts, pool_options const& options,
                                               read_target target);

    replica_set(replica_set const&) = delete;
    replica_set& operator=(replica_set const&) = delete;
    ~replica_set();

    /// Starts checking the hosts. stop() before the executor goes.
    void start();
    void stop();

    /// A connection for a tile read and where it goes.
    struct read_lease {
        pooled_connection conn;
        std::optional<std::size_t> host; ///< the standby's index; nullopt for the primary pool
    };

    /// A connection for a read that must see WAL position `min_position` (0: any): a standby
    /// that has replayed it, in turn, else the primary, else (the primary failing) the first
    /// standby to replay it within lag_wait, else the most advanced one.
    /// \throws unavailable_error when no host the read target allows can take it.
    boost::asio::awaitable<read_lease> async_acquire_read(std::uint64_t min_position);

    /// A read on standby `host` lost its connection: the host leaves the rotation until its
    /// check succeeds again.
    void host_failed(std::size_t host, std::string const& why);

    /// Positions up to `position` are expected on every standby: check often until they are.
    void expect(std::uint64_t position);

    /// The lowest position every standby up is known to have replayed; the highest possible when
    /// no standby is up.
    [[nodiscard]] std::uint64_t replayed_everywhere() const;

    [[nodiscard]] std::vector<host_report> report() const;
    /// The label of standby `host`, for metrics.
    [[nodiscard]] std::string const& label(std::size_t host) const noexcept;
    [[nodiscard]] std::shared_ptr<pool> const& primary() const noexcept { return m_primary; }
    /// The pool of every host, for metrics and shutdown.
    [[nodiscard]] std::vector<std::shared_ptr<pool>> host_pools() const;
    [[nodiscard]] read_target target() const noexcept { return m_target; }

    /// The pause before the n-th new attempt to reach a host that failed (0.5 s doubling to 8 s).
    [[nodiscard]] static std::chrono::milliseconds backoff(unsigned failures) noexcept;

  private:
    struct host_state {
        connect_params params;
        std::shared_ptr<pg::pool> reads; ///< its tile connections
        std::string label;
        std::string role = "unknown";
        bool up = false;
        /// Since it last came up, it has replayed every position expected before: a host back
        /// from an outage may be behind changes whose expectations are gone.
        bool caught_up = false;
        std::uint64_t position = 0;
        std::uint64_t rejoin_position = 0; ///< what it must reach to be caught up
        std::string error;
        /// Its role in the config file (`hosts`), value "" for none.
        sourced_value configured;
        /// The role it was last warned about for differing from `configured`.
        std::string mismatch;
    };
    struct state;

    replica_set(boost::asio::any_io_executor executor, std::shared_ptr<pool> primary,
                std::vector<connect_params> hosts, pool_options const& options, read_target target);
    static boost::asio::awaitable<void> watch(std::shared_ptr<replica_set> self, std::size_t index);
    /// A warning when host `h` answers as `role` but the config says otherwise, the first time.
    /// Under the lock.
    static std::string role_mismatch(host_state& h, std::string const& role, std::string const& name);
    /// Records the outcome of a check of host `index` (under no lock).
    void record(std::size_t index, std::optional<std::string> role, std::uint64_t position,
                std::string const& error);
    /// The standby to read from, in turn, among those up that reached `min_position`; with
    /// `furthest`, the one up that replayed the most, caught up or not.
    std::optional<std::size_t> pick(std::uint64_t min_position, bool furthest);
    /// A connection of a standby pick() chooses; nullopt when none can give one.
    boost::asio::awaitable<std::optional<read_lease>> async_standby(std::uint64_t min_position,
                                                                    bool furthest);
    [[nodiscard]] std::chrono::milliseconds next_check(std::size_t index) const;

    std::shared_ptr<pool> m_primary;
    read_target m_target;
    std::string m_name; ///< the pools' name, for logs
    mutable std::mutex m_mutex;
    std::vector<host_state> m_hosts;
    std::uint64_t m_expected = 0; ///< the highest position expect() was given
    /// When expect() last raised it: a standby still behind 30 s later (its replay paused, or
    /// far behind) is checked every second again, not every 10 ms.
    std::chrono::steady_clock::time_point m_expected_at;
    std::string m_primaries; ///< the hosts that said they are the primary, as last warned about
    std::size_t m_next = 0;  ///< round-robin cursor
    std::shared_ptr<state> m_state;
};

} // namespace kachel::pg
