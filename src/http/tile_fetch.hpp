#pragma once

#include "core/tile_coord.hpp"
#include "http/compression.hpp"
#include "tiles/tile_cache.hpp"
#include "tiles/tile_source.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kachel::http {

/// Where a tile request's bytes come from: each source's tile through the cache when the cache
/// covers the zoom and the source allows it (one computation for concurrent misses), else straight
/// from the source. Composites fetch their constituents at once. Records whether any lookup hit or
/// missed, for the access log. The references must outlive the fetch.
class tile_fetch {
  public:
    /// \pre `query_json` outlives the fetch; `cache` may be null (no cache).
    /// `blocking`: where tiles over offload_size are compressed (none: on the caller's loop).
    /// `size_warning`: a tile a source makes bigger than this is warned about (0: never).
    tile_fetch(tile_coord coord, std::string const& query_json, std::string_view raw_query,
               tiles::tile_cache* cache, boost::asio::any_io_executor blocking = {},
               std::size_t size_warning = 0) noexcept
        : m_coord(coord), m_query_json(query_json), m_raw_query(raw_query), m_cache(cache),
          m_blocking(std::move(blocking)), m_size_warning(size_warning) {}

    /// Tiles bigger than this are compressed on the blocking pool: at the encoders' speeds
    /// (docs/operations.md), a few milliseconds of an event loop at most.
    static constexpr std::size_t offload_size = std::size_t{512} << 10;

    /// True when `source`'s tile goes through the cache.
    [[nodiscard]] bool cached(tiles::tile_source const& source) const noexcept;

    /// The cache key of `source`'s tile in encoding `e` (the query only for sources that take one).
    [[nodiscard]] tiles::tile_key_view key_view(tiles::tile_source const& source, encoding e) const noexcept;

    /// One source's uncompressed tile. Never throws for a failed tile: the error is in the result.
    [[nodiscard]] boost::asio::awaitable<tiles::fetched_tile> get(tiles::tile_source const* source);

    /// A source's tile compressed with `e`, made once per cache entry.
    [[nodiscard]] boost::asio::awaitable<std::shared_ptr<tiles::tile_bytes const>>
    encoded(tiles::tile_source const& source, std::shared_ptr<tiles::tile_bytes const> plain, encoding e);

    /// True when every one of `sources` goes through the cache: then their composite does too.
    [[nodiscard]] bool cached(std::span<tiles::tile_source const* const> sources) const noexcept;

    /// A composite's cache name: its sources' cache names, each after a `\x1e`, so that dropping
    /// any of them drops it (tiles::is_cache_name_of).
    [[nodiscard]] static std::string composite_name(std::span<tiles::tile_source const* const> sources);

    /// The cache key of the composite named `name` in encoding `e` (with the query when one of
    /// `sources` takes it).
    [[nodiscard]] tiles::tile_key_view composite_key_view(std::string_view name,
                                                          std::span<tiles::tile_source const* const> sources,
                                                          encoding e) const noexcept;

    /// The vector tile of several sources: their layers in order, with the ETag of the one
    /// non-empty tile or all ETags joined (Martin's rule). Made once per cache entry of `name`,
    /// when cached(sources); a failed constituent's error is the result's.
    [[nodiscard]] boost::asio::awaitable<tiles::fetched_tile>
    get_composite(std::span<tiles::tile_source const* const> sources, std::string const& name);

    /// The composite `plain` compressed with `e`, made once per cache entry.
    [[nodiscard]] boost::asio::awaitable<std::shared_ptr<tiles::tile_bytes const>>
    encoded_composite(std::span<tiles::tile_source const* const> sources, std::string const& name,
                      std::shared_ptr<tiles::tile_bytes const> plain, encoding e);

    /// Every constituent's tile at once; results in the sources' order.
    [[nodiscard]] boost::asio::awaitable<std::vector<tiles::fetched_tile>>
    get_all(std::span<tiles::tile_source const* const> sources);

    /// Time this fetch spent waiting for its sources' tiles (database queries, archive reads),
    /// summed over the sources, and compressing; for Server-Timing.
    [[nodiscard]] std::chrono::microseconds source_time() const noexcept { return m_source_time; }
    [[nodiscard]] std::chrono::microseconds encode_time() const noexcept { return m_encode_time; }

    /// "hit" when every cached lookup hit, "miss" when any missed, "-" when nothing went through
    /// the cache.
    [[nodiscard]] std::string_view cache_status() const noexcept {
        return m_any_miss ? "miss" : m_any_hit ? "hit" : "-";
    }

  private:
    [[nodiscard]] tiles::tile_key key(tiles::tile_source const& source, encoding e) const;
    /// `plain` compressed with `e` under `key` (when `cache_it`), made once.
    [[nodiscard]] boost::asio::awaitable<std::shared_ptr<tiles::tile_bytes const>>
    encoded_under(std::optional<tiles::tile_key> key, std::optional<std::chrono::milliseconds> idle_timeout,
                  std::shared_ptr<tiles::tile_bytes const> plain, encoding e);

    tile_coord m_coord;
    std::string const& m_query_json; ///< for the sources (`{}` when none takes a query)
    std::string_view m_raw_query;    ///< the cache key part for sources that take a query
    tiles::tile_cache* m_cache;
    boost::asio::any_io_executor m_blocking;
    std::size_t m_size_warning;
    std::chrono::microseconds m_source_time{0};
    std::chrono::microseconds m_encode_time{0};
    bool m_any_miss = false;
    bool m_any_hit = false;
};

} // namespace kachel::http
