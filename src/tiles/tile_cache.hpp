#pragma once

#include "core/tile_coord.hpp"
#include "tiles/content_encoding.hpp"
#include "tiles/tile_ranges.hpp"
#include "tiles/tile_source.hpp"

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace kachel::tiles {

/// Tile bytes as the HTTP layer sends them, shared by the cache and every response that serves
/// them (never copied on a hit). Immutable once made.
struct tile_bytes {
    std::string data;
    /// Bytes lent by the source, served instead of `data` when set.
    std::optional<lent_bytes> lent;
    [[nodiscard]] std::size_t size() const noexcept { return lent ? lent->size() : data.size(); }
    [[nodiscard]] bool empty() const noexcept { return size() == 0; }
    /// The first piece: enough to tell a compressed tile by its first bytes (a source lends no
    /// first piece shorter than 16 bytes).
    [[nodiscard]] std::string_view front() const noexcept {
        return lent ? (lent->pieces().empty() ? std::string_view{} : lent->pieces().front())
                    : std::string_view{data};
    }
    /// All the bytes in one piece: `data` or a single lent piece as they are, several pieces copied
    /// into `scratch`.
    [[nodiscard]] std::string_view contiguous(std::string& scratch) const;
    /// Appends the bytes to `out`.
    void append_to(std::string& out) const;
    std::string etag; ///< the tile's ETag value (of the uncompressed bytes), without quotes
    /// How long its sources took to make it, in milliseconds (Server-Timing of a cache hit).
    float made_ms = 0;
    /// The same tile gzip-compressed as its source stored it (an MBTiles archive, a function
    /// returning gzip), sent as is to clients that accept gzip; null when the source gave it plain.
    std::shared_ptr<tile_bytes const> as_gzip;
};

/// A tile or the reason there is none.
struct fetched_tile {
    std::shared_ptr<tile_bytes const> bytes; ///< set when error == none
    tile_errc error = tile_errc::none;
    std::string detail; ///< for the log only
};

/// What identifies a cache entry (martin-compat 9 with decision D8): the source, the tile, the
/// query string for sources that take one (else empty), and the content encoding of the bytes.
struct tile_key {
    std::string source;
    tile_coord coord;
    std::string query;
    tiles::encoding encoding = encoding::identity;

    bool operator==(tile_key const&) const = default;
};

/// A tile_key made of views, to look an entry up without building its strings (a cache hit
/// allocates nothing). The views must outlive the lookup only.
struct tile_key_view {
    std::string_view source;
    tile_coord coord;
    std::string_view query;
    tiles::encoding encoding = encoding::identity;

    tile_key_view(std::string_view source_id, tile_coord c, std::string_view query_string,
                  tiles::encoding content_encoding) noexcept
        : source(source_id), coord(c), query(query_string), encoding(content_encoding) {}
    // NOLINTNEXTLINE(google-explicit-constructor): a key is usable wherever its view is.
    tile_key_view(tile_key const& key) noexcept
        : source(key.source), coord(key.coord), query(key.query), encoding(key.encoding) {}

    bool operator==(tile_key_view const&) const = default;
};

/// Cache settings (`cache` in the config file, `-C/--cache-size`).
struct tile_cache_options {
    std::size_t max_bytes = 256'000'000;             ///< 0 disables the cache
    std::optional<std::chrono::milliseconds> expiry; ///< entries older than this are misses
    /// Entries not used for this long are misses (time to idle), unless the source sets its own.
    std::optional<std::chrono::milliseconds> idle_timeout;
    std::optional<int> minzoom; ///< zooms outside bypass the cache
    std::optional<int> maxzoom;
};

/// A byte-bounded, sharded, least-recently-used tile cache with single-flight: concurrent misses
/// for one key share one computation (one database query). Entries too big for a hashed shard
/// (each holds 1/16 of the cache) go to a shard of their own, which holds up to a quarter of it
/// and takes that room from the others. Errors are handed
/// to the requests that waited for them but never stored. Thread-safe; each shard has its own lock, so
/// threads rarely contend.
class tile_cache {
  public:
    explicit tile_cache(tile_cache_options options);
    ~tile_cache();
    tile_cache(tile_cache const&) = delete;
    tile_cache& operator=(tile_cache const&) = delete;

    /// The stored bytes, or null (absent, expired or idle too long: then dropped). `idle_timeout`
    /// replaces the cache's time to idle for this source when set.
    [[nodiscard]] std::shared_ptr<tile_bytes const>
    find(tile_key_view key, std::optional<std::chrono::milliseconds> idle_timeout = std::nullopt);

    /// The stored bytes, or the result of `compute`, which then runs once for all the callers
    /// that miss on `key` meanwhile. A successful result is stored.
    /// `hit` tells whether the bytes came from the cache.
    boost::asio::awaitable<fetched_tile>
    get_or_compute(tile_key key, std::function<boost::asio::awaitable<fetched_tile>()> compute,
                   bool* hit = nullptr, std::optional<std::chrono::milliseconds> idle_timeout = std::nullopt);

    /// True when tiles of zoom `z` go through the cache.
    [[nodiscard]] bool covers(unsigned z) const noexcept;

    /// Drops every entry of the source with id `source`, under any of its instances' cache
    /// names (its content changed). A computation under way meanwhile, which may have read the
    /// old content, is handed to its callers but not stored. \returns how many went.
    std::size_t drop_source(std::string_view source);

    /// Drops the entries of the source with id `source` (under any of its instances' cache names)
    /// whose tiles lie in `area`, in every encoding and for every query. A computation under way
    /// for a tile in the area is handed to its callers but not stored, and a request that comes
    /// after this call returns never waits for it: it makes the tile anew. \returns how many went.
    std::size_t drop(std::string_view source, tile_area const& area);

    /// Bytes held now (entries' data, ETags and keys, plus a fixed overhead per entry).
    [[nodiscard]] std::size_t size_bytes() const;
    /// Entries held now.
    [[nodiscard]] std::size_t entries() const;
    [[nodiscard]] std::size_t max_bytes() const noexcept { return m_options.max_bytes; }

  private:
    struct shard;
    struct flight;
    [[nodiscard]] shard& shard_for(tile_key_view key) const;
    /// find() in one shard.
    [[nodiscard]] std::shared_ptr<tile_bytes const>
    find_in(shard& s, tile_key_view key, std::optional<std::chrono::milliseconds> idle_timeout);
    /// Keeps m_large_entries and m_large_bytes up to date after a change to `s` (under its lock).
    void count_large(shard const& s) noexcept;
    /// Stores `bytes` unless a source was dropped since `drops` was read (checked under the
    /// shard's lock, which drop_source takes after counting).
    /// `hashed` is the key's shard; a tile too big for it goes to the shard for big ones.
    void store(shard& hashed, tile_key const& key, std::shared_ptr<tile_bytes const> bytes,
               std::uint64_t drops);
    /// store() into `s` (the shard chosen), the entry costing `cost`.
    void store_in(shard& s, tile_key const& key, std::shared_ptr<tile_bytes const> bytes, std::uint64_t drops,
                  std::size_t cost);
    /// The bytes `s` may hold now: a hashed shard less its share of the big entries.
    [[nodiscard]] std::size_t limit_of(shard const& s) const noexcept;
    /// Drops `s`'s least recently used entries until it holds `limit` bytes at most (under its
    /// lock).
    static void evict_to(shard& s, std::size_t limit) noexcept;
    /// True when a drop since `drops` (a value of m_drops) covered `key`, or when the drops kept
    /// do not reach back that far.
    [[nodiscard]] bool dropped_since(std::uint64_t drops, tile_key_view key) const;

    /// One drop, kept for a while so that computations begun before it can tell whether it
    /// concerns them.
    struct drop_record {
        std::uint64_t number;
        std::string source;
        tile_area area;
    };

    tile_cache_options m_options;
    std::unique_ptr<shard[]> m_shards;
    /// Entries of the shard for big entries: while none, a miss looks in one shard only.
    std::atomic<std::size_t> m_large_entries{0};
    std::atomic<std::size_t> m_large_bytes{0}; ///< and the bytes they hold
    std::atomic<std::uint64_t> m_drops{0};     ///< drops so far; written under m_log_mutex
    mutable std::mutex m_log_mutex;
    std::deque<drop_record> m_log; ///< the latest drops, oldest first
};

} // namespace kachel::tiles
