#pragma once

#include "postgis/publish_config.hpp"
#include "postgis/publisher.hpp"
#include "tiles/id_resolver.hpp"
#include "tiles/tile_cache.hpp"
#include "tiles/tile_source.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace kachel::app {

/// What a catalog reload changed, by source id.
struct catalog_changes {
    std::vector<std::string> added;
    std::vector<std::string> changed; ///< republished: their cached tiles went
    std::vector<std::string> removed; ///< no longer served (404)
    [[nodiscard]] bool any() const noexcept { return !added.empty() || !changed.empty() || !removed.empty(); }
};

/// The sources `found` publishes, in its order, each source of `current` whose fingerprint
/// (postgis::fingerprint) is unchanged kept as it is, so that its cached tiles stay; and what
/// changed. A changed source is a new instance, whose cache name differs from the old one's.
struct merged_sources {
    std::vector<std::shared_ptr<tiles::tile_source const>> sources;
    catalog_changes changes;
};
[[nodiscard]] merged_sources merge_sources(std::span<std::shared_ptr<tiles::tile_source const> const> current,
                                           postgis::published_database const& found);

/// One database's part of the catalog.
struct database_part {
    std::string label;                     ///< host:port/db, for logs and metrics
    postgis::publish_config config;        ///< what it publishes, as at startup
    std::chrono::milliseconds interval{0}; ///< `reload_interval`; 0: only when asked
    postgis::published_database published;
    std::vector<std::shared_ptr<tiles::tile_source const>> sources;
};

/// Reloads the catalog of each database while kachel runs (`reload_interval`, and at once when a
/// schema change is notified): discovery runs again on one of the database's pooled connections,
/// with the startup inputs. New tables and functions are published, dropped ones go (404), and
/// those whose SQL or TileJSON changed (bounds aside) are republished with their cached tiles
/// dropped; the others are kept as they are. A configured source that can no longer be published
/// goes with a warning, whatever `on_invalid` says (the server is running). A reload that fails
/// (the database is down) leaves the catalog as it was, and is tried again next time.
/// Runs on one event loop; requests in flight finish on the catalog they started with.
class catalog_reloader : public std::enable_shared_from_this<catalog_reloader> {
  public:
    /// Gets every database's sources after a reload changed any: publish them.
    using publish_handler = std::function<void(std::vector<std::shared_ptr<tiles::tile_source const>>)>;
    /// Told after each successful reload of database `index`, changed or not.
    using reloaded_handler =
        std::function<void(std::size_t index, postgis::published_database const&, catalog_changes const&)>;

    /// How long a requested reload waits for more requests (a migration's many statements).
    static constexpr std::chrono::milliseconds debounce{100};

    /// \param ids hands out the ids, as at startup (it must outlive the reloader)
    /// \param cache where the tiles of changed and removed sources are dropped (may be null)
    catalog_reloader(boost::asio::any_io_executor executor, std::vector<database_part> parts,
                     tiles::id_resolver& ids, tiles::tile_cache* cache);
    ~catalog_reloader();
    catalog_reloader(catalog_reloader const&) = delete;
    catalog_reloader& operator=(catalog_reloader const&) = delete;

    /// Call before start().
    void on_publish(publish_handler handler) { m_publish = std::move(handler); }
    void on_reloaded(reloaded_handler handler) { m_reloaded = std::move(handler); }

    /// Starts the reload loops. Call on the executor, as every call below.
    void start();
    /// Stops the loops; a reload under way is cancelled (wait until busy() is false).
    void stop();
    /// True while a reload runs.
    [[nodiscard]] bool busy() const noexcept;
    /// Reloads database `index` soon (after `debounce`), whatever its interval.
    void request(std::size_t index);

    /// Every database's sources now, in database order.
    [[nodiscard]] std::vector<std::shared_ptr<tiles::tile_source const>> sources() const;

  private:
    struct part_state;
    static boost::asio::awaitable<void> run(std::shared_ptr<catalog_reloader> self, std::size_t index);
    boost::asio::awaitable<void> reload(std::size_t index);

    boost::asio::any_io_executor m_executor;
    std::vector<std::unique_ptr<part_state>> m_parts;
    tiles::id_resolver* m_ids;
    tiles::tile_cache* m_cache;
    publish_handler m_publish;
    reloaded_handler m_reloaded;
    bool m_stopped = false;
};

} // namespace kachel::app
