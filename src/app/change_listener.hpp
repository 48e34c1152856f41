#pragma once

#include "pg/connect_params.hpp"
#include "pg/replica_set.hpp"
#include "postgis/change_notify.hpp"
#include "postgis/table_source.hpp"
#include "tiles/change_horizon.hpp"
#include "tiles/tile_cache.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace kachel::app {

/// A source whose cached tiles follow its table's change notifications.
struct followed_source {
    std::string id;
    double margin = 0; ///< how far around a change its tiles reach, in tiles (buffer / extent)
};

/// The sources of one database that follow changes, by (schema, table).
using followed_tables = std::map<std::pair<std::string, std::string>, std::vector<followed_source>>;

/// The table sources of `tables` with notify_changes on.
[[nodiscard]] followed_tables followed_tables_of(std::span<postgis::table_spec const> tables);

/// Follows the change notifications of one database (postgis::change_channel): a connection of
/// its own, set up like the pools' (TLS and all), that LISTENs. Each notification drops exactly
/// the cached tiles its boxes reach, of every source on the table; a schema change asks for a
/// catalog reload (on_catalog). When the connection is lost
/// it reconnects with a growing pause, and drops the followed sources' tiles whole, since a
/// change may have gone unseen. Runs on one event loop until stop().
class change_listener : public std::enable_shared_from_this<change_listener> {
  public:
    /// Called after each change is applied, with the source and the boxes (empty = anywhere).
    using change_handler =
        std::function<void(followed_source const& source, std::vector<tiles::lonlat_box> const&)>;

    change_listener(boost::asio::any_io_executor executor, pg::connect_params params,
                    tiles::tile_cache* cache, followed_tables tables);

    /// Starts listening (the first connection is made in the background).
    void start();
    /// Stops listening; the connection closes. Call on the listener's executor.
    void stop();

    /// Replaces the sources followed (a catalog reload). Call on the listener's executor.
    void follow(followed_tables tables) { m_tables = std::move(tables); }
    /// With read replicas: each change is entered in `horizon` before its tiles leave the cache,
    /// and once a batch is applied, the primary's WAL position settles them and `replicas` is
    /// told to expect it. Call before start().
    void guard_reads(std::shared_ptr<tiles::change_horizon> horizon,
                     std::shared_ptr<pg::replica_set> replicas) {
        m_horizon = std::move(horizon);
        m_replicas = std::move(replicas);
    }
    /// Called for every change applied. Call before start().
    void on_change(change_handler handler) { m_on_change = std::move(handler); }
    /// Called for a schema change (postgis::catalog_payload), and after a reconnect (one may have
    /// gone unseen). Call before start().
    void on_catalog(std::function<void()> handler) { m_on_catalog = std::move(handler); }

    /// Applies one notification's payload: what a notification does, without the connection.
    /// \returns how many cached tiles went.
    std::size_t apply(std::string_view payload, int sender_pid);

    /// The pause before the n-th attempt to reconnect (0.5 s doubling up to 30 s).
    [[nodiscard]] static std::chrono::milliseconds backoff(unsigned attempt) noexcept;
    /// How long the connection may stay silent before it is checked with a statement.
    static constexpr std::chrono::seconds heartbeat{10};

  private:
    /// Connects, listens and applies notifications until stopped; reconnects when lost.
    static boost::asio::awaitable<void> run(std::shared_ptr<change_listener> self);

    struct state;
    std::shared_ptr<state> m_state;
    followed_tables m_tables;
    tiles::tile_cache* m_cache;
    change_handler m_on_change;
    std::function<void()> m_on_catalog;
    std::string m_label;                              ///< the connection's label, for logs and metrics
    std::shared_ptr<tiles::change_horizon> m_horizon; ///< null without replicas
    std::shared_ptr<pg::replica_set> m_replicas;
    /// Reads the primary's WAL position on `conn` and settles the pending changes with it.
    boost::asio::awaitable<void> settle(pg::connection& conn);
    /// Drops the tiles of every followed source (the connection was lost). \returns how many.
    std::size_t drop_all(std::string_view why);
};

} // namespace kachel::app
