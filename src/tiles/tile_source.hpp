#pragma once

#include "core/tile_coord.hpp"

#include <boost/asio/awaitable.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kachel::tiles {

/// Why a tile could not be produced. The HTTP layer maps each to one status in one place.
enum class tile_errc {
    none,        ///< success (the tile may be empty)
    not_found,   ///< the source has no such tile
    bad_request, ///< the request cannot be served as asked
    unavailable, ///< no database connection could be had in time: retry later
    timeout,     ///< the query ran longer than the source's statement timeout (and was cancelled)
    upstream,    ///< the server holding a remote archive failed or could not be reached: retry later
    internal,    ///< anything else; details are logged, never sent to the client
};

/// Tile bytes a source lends instead of copying (a tile inside a mapped archive file), in one
/// piece or in several (a value SQLite spreads over pages), and what keeps them where they are
/// for as long as anyone holds them.
class lent_bytes {
  public:
    lent_bytes(std::vector<std::string_view> pieces, std::shared_ptr<void const> keeper) noexcept;

    /// The bytes, in order.
    [[nodiscard]] std::vector<std::string_view> const& pieces() const noexcept { return m_pieces; }
    [[nodiscard]] std::size_t size() const noexcept { return m_size; }

  private:
    std::vector<std::string_view> m_pieces;
    std::size_t m_size = 0;
    std::shared_ptr<void const> m_keeper;
};

/// The outcome of a tile request: bytes (possibly empty = no features) or an error value.
struct tile_result {
    std::string data;
    tile_errc error = tile_errc::none;
    /// What went wrong, for the log only (may contain SQL error text).
    std::string detail;
    /// The tile's ETag when the source provides one (a function's `text` column, decision D9);
    /// otherwise the HTTP layer hashes the bytes.
    std::optional<std::string> etag;
    /// Set instead of `data` by a source that lends its bytes (like `data`, plain or gzip). They
    /// are in memory: reading them never waits for a disk.
    std::optional<lent_bytes> lent;

    /// A failure: `error` (not none) and what went wrong, for the log.
    [[nodiscard]] static tile_result failed(tile_errc error, std::string detail) {
        tile_result out;
        out.error = error;
        out.detail = std::move(detail);
        return out;
    }
};

/// Zoom levels a source serves, from its TileJSON `minzoom`/`maxzoom` (absent = unbounded).
struct zoom_range {
    std::optional<int> min;
    std::optional<int> max;

    [[nodiscard]] bool contains(unsigned z) const noexcept {
        return (!min || static_cast<int>(z) >= *min) && (!max || static_cast<int>(z) <= *max);
    }
};

/// A source's own say on caching (`cache: disable` or `cache: {minzoom, maxzoom}` on a table or
/// function, martin-compat 9): tiles outside it bypass the cache.
struct cache_gate {
    bool disabled = false;
    std::optional<int> minzoom;
    std::optional<int> maxzoom;
    /// This source's time to idle (`cache: {idle_timeout}`), instead of the cache's.
    std::optional<std::chrono::milliseconds> idle_timeout;

    [[nodiscard]] bool allows(unsigned z) const noexcept {
        auto const zoom = static_cast<int>(z);
        return !disabled && (!minzoom || zoom >= *minzoom) && (!maxzoom || zoom <= *maxzoom);
    }
};

/// `id` and a number no other instance has: `id` + U+001F + n (see tile_source::cache_name).
[[nodiscard]] std::string instance_name(std::string_view id);

/// Joins the cache names of a composite's sources into the composite's cache name.
inline constexpr char composite_separator = '\x1e';

/// True when `cache_name` is `id`'s, or one of its instances', or a composite's that holds one.
[[nodiscard]] bool is_cache_name_of(std::string_view cache_name, std::string_view id) noexcept;

/// `minzoom`/`maxzoom` of a TileJSON document.
[[nodiscard]] zoom_range zooms_of(nlohmann::json const& tilejson);

/// A source of tiles: a PostGIS table or function, an MBTiles or PMTiles file.
/// Implementations are immutable after construction and safe to use from any thread.
class tile_source {
  public:
    tile_source() = default;
    tile_source(tile_source const&) = delete;
    tile_source& operator=(tile_source const&) = delete;
    virtual ~tile_source() = default;

    /// The public id, unique in the catalog (`/{id}/{z}/{x}/{y}`).
    [[nodiscard]] virtual std::string const& id() const noexcept = 0;

    /// The TileJSON document without `tiles` (the HTTP layer adds the URL). Valid while the source lives.
    [[nodiscard]] virtual nlohmann::json const& tilejson() const noexcept = 0;

    /// The name its tiles are cached under: the id, or for a source that a reload may replace
    /// under the same id, the id and this instance's number (instance_name), so that a tile an
    /// old instance finishes after the switch is never found by the new one.
    [[nodiscard]] virtual std::string_view cache_name() const noexcept { return id(); }

    /// MIME type of the tiles, e.g. `application/x-protobuf`.
    [[nodiscard]] virtual std::string_view content_type() const noexcept = 0;

    /// True when the source takes the URL query string (a PostgreSQL function with a 4th
    /// json/jsonb parameter): then the query is part of its tiles' identity.
    [[nodiscard]] virtual bool accepts_query() const noexcept { return false; }

    /// The zoom levels this source serves (from its TileJSON). Asked on every tile request:
    /// sources with a fixed TileJSON return a value computed once.
    [[nodiscard]] virtual zoom_range zooms() const;

    /// Which of this source's tiles may be cached (all by default).
    [[nodiscard]] virtual cache_gate cache_policy() const noexcept { return {}; }

    /// Produces one tile. `query` is the URL query string as a JSON object text (`{}` when
    /// empty); sources that do not accept queries ignore it. Never throws: failures come back as
    /// tile_result::error.
    /// \pre is_valid(coord)
    [[nodiscard]] virtual boost::asio::awaitable<tile_result>
    async_get_tile(tile_coord coord, std::string const& query) const = 0;
};

} // namespace kachel::tiles
