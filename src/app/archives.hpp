#pragma once

#include "config/settings.hpp"
#include "tiles/catalog.hpp"
#include "tiles/id_resolver.hpp"
#include "tiles/tile_cache.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/io_context.hpp>

#include <memory>
#include <vector>

namespace kachel::app {

/// The MBTiles and PMTiles archives the settings name, and, once `watch` runs, their files
/// followed on disk (inotify) without a restart:
/// - an archive that appears in a watched directory is published;
/// - one replaced (renamed over, or written and closed) is opened anew, and its cached tiles go;
/// - one deleted is unpublished (404), and its cached tiles go.
/// Each change publishes a new catalog whole; requests in flight finish on the one they started
/// with. A file still open for writing is left alone until it is closed. Archives at URLs are
/// not watched: they notice a replacement by its ETag on their next read (see pmtiles_source),
/// and every `pmtiles.reload_interval` each one asks its server, so that tiles cached from an
/// old version go even when no request reaches the archive.
class archive_set {
  public:
    archive_set(config::settings const& settings, boost::asio::any_io_executor blocking,
                tiles::tile_cache* cache);
    ~archive_set();
    archive_set(archive_set const&) = delete;
    archive_set& operator=(archive_set const&) = delete;

    /// Opens every archive (at startup), with ids from `ids`. A file that cannot be served stops
    /// startup (config_error naming it), or with on_invalid: warn is skipped with a warning.
    [[nodiscard]] std::vector<std::shared_ptr<tiles::tile_source const>> open_all(tiles::id_resolver& ids);

    /// Follows the local files and directories from now on, on `ioc`; each change publishes
    /// `fixed` (the PostgreSQL sources) and the archives as a new catalog into `live`.
    /// `ids` (which must outlive the set) carries on handing out ids as at startup.
    void watch(boost::asio::io_context& ioc, std::vector<std::shared_ptr<tiles::tile_source const>> fixed,
               std::shared_ptr<tiles::live_catalog> live, tiles::id_resolver& ids);

    /// Replaces the PostgreSQL sources (a catalog reload) and publishes the catalog with them at
    /// once; from any thread, after watch.
    void replace_fixed(std::vector<std::shared_ptr<tiles::tile_source const>> fixed);

    /// Stops watching (at shutdown).
    void stop();

    /// Catalog changes made since startup (for tests and metrics).
    [[nodiscard]] std::uint64_t reloads() const noexcept;

  private:
    struct state;
    std::shared_ptr<state> m_state;
};

} // namespace kachel::app
