#include "tiles/tile_cache.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <list>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace kachel::tiles {

namespace asio = boost::asio;
using clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t shard_count = 16;
/// After the hashed shards, one for entries too big for them (a composite of megabytes): it
/// holds up to a quarter of the cache, and the room its entries take is taken from the hashed
/// shards (each gives a sixteenth of it), so the whole stays within the limit.
constexpr std::size_t large_shard = shard_count;
constexpr std::size_t all_shards = shard_count + 1;
/// Per-entry bookkeeping counted against the size limit (list and map nodes, the key, pointers).
constexpr std::size_t entry_overhead = 160;
/// Drops remembered for computations under way (a computation older than this many drops is
/// never stored: a rare loss of a cache entry, never a stale one).
constexpr std::size_t drops_kept = 1024;

/// splitmix64's finaliser: every input bit reaches every output bit (the shard is taken from
/// the low bits, the hash map bucket from others).
constexpr std::uint64_t scramble(std::uint64_t v) noexcept {
    v = (v ^ (v >> 30)) * 0xbf58476d1ce4e5b9ULL;
    v = (v ^ (v >> 27)) * 0x94d049bb133111ebULL;
    return v ^ (v >> 31);
}

/// Hash and equality of keys and key views alike, so that lookups need no tile_key.
struct key_hash {
    using is_transparent = void;
    std::size_t operator()(tile_key_view k) const noexcept {
        std::uint64_t h = std::hash<std::string_view>{}(k.source);
        h = scramble(h ^ std::hash<std::string_view>{}(k.query));
        h = scramble(h ^ ((std::uint64_t{k.coord.z} << 58) ^ (std::uint64_t{k.coord.x} << 29) ^ k.coord.y));
        return static_cast<std::size_t>(scramble(h ^ static_cast<std::uint64_t>(k.encoding)));
    }
};

struct key_equal {
    using is_transparent = void;
    bool operator()(tile_key_view a, tile_key_view b) const noexcept { return a == b; }
};

std::size_t cost_of(tile_key const& key, tile_bytes const& bytes) noexcept {
    return bytes.size() + bytes.etag.size() + (bytes.as_gzip ? bytes.as_gzip->size() : 0) +
           key.source.size() + key.query.size() + entry_overhead;
}

} // namespace

lent_bytes::lent_bytes(std::vector<std::string_view> pieces, std::shared_ptr<void const> keeper) noexcept
    : m_pieces(std::move(pieces)), m_keeper(std::move(keeper)) {
    for (auto const piece : m_pieces) {
        m_size += piece.size();
    }
}

std::string_view tile_bytes::contiguous(std::string& scratch) const {
    if (!lent) {
        return data;
    }
    if (lent->pieces().size() == 1) {
        return lent->pieces().front();
    }
    scratch.clear();
    append_to(scratch);
    return scratch;
}

void tile_bytes::append_to(std::string& out) const {
    if (!lent) {
        out += data;
        return;
    }
    out.reserve(out.size() + lent->size());
    for (auto const piece : lent->pieces()) {
        out += piece;
    }
}

/// One computation that callers missing on the same key wait for.
struct tile_cache::flight {
    std::uint64_t drops = 0; ///< m_drops when the computation began
    std::mutex mutex;
    bool done = false;
    bool abandoned = false; ///< the computing request went away before finishing
    fetched_tile result;
    std::vector<std::shared_ptr<asio::steady_timer>> waiters;
};

struct tile_cache::shard {
    struct entry {
        tile_key key;
        std::shared_ptr<tile_bytes const> bytes;
        clock::time_point stored;
        clock::time_point used; ///< last returned by find (or stored)
        std::size_t cost = 0;
    };
    mutable std::mutex mutex;
    std::list<entry> lru; ///< most recently used first
    std::unordered_map<tile_key, std::list<entry>::iterator, key_hash, key_equal> index;
    std::unordered_map<tile_key, std::shared_ptr<flight>, key_hash, key_equal> flights;
    std::size_t bytes = 0;
    std::size_t capacity = 0;
};

tile_cache::tile_cache(tile_cache_options options)
    : m_options(options), m_shards(std::make_unique<shard[]>(all_shards)) {
    for (std::size_t i = 0; i < shard_count; ++i) {
        m_shards[i].capacity = m_options.max_bytes / shard_count;
    }
    m_shards[large_shard].capacity = m_options.max_bytes / 4;
}

tile_cache::~tile_cache() = default;

tile_cache::shard& tile_cache::shard_for(tile_key_view key) const {
    return m_shards[key_hash{}(key) % shard_count];
}

bool tile_cache::covers(unsigned z) const noexcept {
    auto const zoom = static_cast<int>(z);
    return m_options.max_bytes > 0 && (!m_options.minzoom || zoom >= *m_options.minzoom) &&
           (!m_options.maxzoom || zoom <= *m_options.maxzoom);
}

std::shared_ptr<tile_bytes const> tile_cache::find(tile_key_view key,
                                                   std::optional<std::chrono::milliseconds> idle_timeout) {
    if (auto bytes = find_in(shard_for(key), key, idle_timeout)) {
        return bytes;
    }
    if (m_large_entries.load(std::memory_order_relaxed) == 0) {
        return nullptr;
    }
    return find_in(m_shards[large_shard], key, idle_timeout);
}

std::shared_ptr<tile_bytes const> tile_cache::find_in(shard& s, tile_key_view key,
                                                      std::optional<std::chrono::milliseconds> idle_timeout) {
    std::lock_guard const lock{s.mutex};
    auto const it = s.index.find(key);
    if (it == s.index.end()) {
        return nullptr;
    }
    auto const now = clock::now();
    auto const idle = idle_timeout ? idle_timeout : m_options.idle_timeout;
    if ((m_options.expiry && now - it->second->stored > *m_options.expiry) ||
        (idle && now - it->second->used > *idle)) {
        s.bytes -= it->second->cost;
        s.lru.erase(it->second);
        s.index.erase(it);
        count_large(s);
        return nullptr;
    }
    it->second->used = now;
    s.lru.splice(s.lru.begin(), s.lru, it->second);
    return it->second->bytes;
}

void tile_cache::store(shard& hashed, tile_key const& key, std::shared_ptr<tile_bytes const> bytes,
                       std::uint64_t drops) {
    auto const cost = cost_of(key, *bytes);
    bool const large = cost > hashed.capacity;
    store_in(large ? m_shards[large_shard] : hashed, key, std::move(bytes), drops, cost);
    if (large) {
        // The hashed shards give up the room the big entry took, at once.
        for (std::size_t i = 0; i < shard_count; ++i) {
            auto& s = m_shards[i];
            std::lock_guard const lock{s.mutex};
            evict_to(s, limit_of(s));
        }
    }
}

std::size_t tile_cache::limit_of(shard const& s) const noexcept {
    if (&s == &m_shards[large_shard]) {
        return s.capacity;
    }
    // A hashed shard gives up its share of what the big entries hold (they are rarely any).
    return s.capacity - std::min(s.capacity, m_large_bytes.load(std::memory_order_relaxed) / shard_count);
}

void tile_cache::evict_to(shard& s, std::size_t limit) noexcept {
    while (!s.lru.empty() && s.bytes > limit) {
        auto& victim = s.lru.back();
        s.bytes -= victim.cost;
        s.index.erase(victim.key);
        s.lru.pop_back();
    }
}

void tile_cache::store_in(shard& s, tile_key const& key, std::shared_ptr<tile_bytes const> bytes,
                          std::uint64_t drops, std::size_t cost) {
    std::lock_guard const lock{s.mutex};
    if (cost > s.capacity) {
        return; // larger than a quarter of the cache: never stored
    }
    if (dropped_since(drops, key)) {
        return; // computed while the tile's content changed: perhaps from the old content
    }
    if (auto const it = s.index.find(key); it != s.index.end()) {
        s.bytes -= it->second->cost;
        s.lru.erase(it->second);
        s.index.erase(it);
        count_large(s);
    }
    auto const limit = limit_of(s);
    if (cost > limit) {
        return;
    }
    evict_to(s, limit - cost);
    auto const now = clock::now();
    s.lru.push_front(shard::entry{key, std::move(bytes), now, now, cost});
    s.index.emplace(key, s.lru.begin());
    s.bytes += cost;
    count_large(s);
}

void tile_cache::count_large(shard const& s) noexcept {
    if (&s == &m_shards[large_shard]) {
        m_large_entries.store(s.lru.size(), std::memory_order_relaxed);
        m_large_bytes.store(s.bytes, std::memory_order_relaxed);
    }
}

asio::awaitable<fetched_tile>
tile_cache::get_or_compute(tile_key key, std::function<asio::awaitable<fetched_tile>()> compute, bool* hit,
                           std::optional<std::chrono::milliseconds> idle_timeout) {
    if (hit != nullptr) {
        *hit = false;
    }
    if (auto bytes = find(key, idle_timeout)) {
        if (hit != nullptr) {
            *hit = true;
        }
        co_return fetched_tile{std::move(bytes), tile_errc::none, {}};
    }
    auto& s = shard_for(key);
    std::shared_ptr<flight> f;
    bool leader = false;
    {
        std::lock_guard const lock{s.mutex};
        auto const it = s.flights.find(key);
        // A computation begun before a drop that covers the tile may read the old content: a
        // request that comes after the drop makes the tile anew rather than wait for it.
        if (it != s.flights.end() && !dropped_since(it->second->drops, key)) {
            f = it->second;
        } else {
            f = std::make_shared<flight>();
            f->drops = m_drops.load();
            s.flights.insert_or_assign(key, f);
            leader = true;
        }
    }

    if (!leader) {
        auto timer = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor,
                                                          clock::time_point::max());
        bool wait = false;
        {
            std::lock_guard const lock{f->mutex};
            if (!f->done) {
                f->waiters.push_back(timer);
                wait = true;
            }
        }
        if (wait) {
            std::ignore = co_await timer->async_wait(asio::as_tuple(asio::use_awaitable));
        }
        {
            std::lock_guard const lock{f->mutex};
            if (f->done && !f->abandoned) {
                co_return f->result;
            }
        }
        // The request computing it went away (or this wait was cancelled): compute alone.
        co_return co_await compute();
    }

    // The leader: whatever happens to this coroutine, the waiters are released.
    struct finisher {
        finisher(tile_cache::shard& shard_ref, tile_key const& k, std::shared_ptr<flight> fl)
            : s(shard_ref), key(k), f(std::move(fl)) {}
        tile_cache::shard& s;
        tile_key const& key;
        std::shared_ptr<flight> f;
        bool finished = false;

        void finish(fetched_tile const* result) {
            finished = true;
            {
                std::lock_guard const lock{s.mutex};
                if (auto const it = s.flights.find(key); it != s.flights.end() && it->second == f) {
                    s.flights.erase(it); // unless a later computation took the key over
                }
            }
            std::vector<std::shared_ptr<asio::steady_timer>> waiters;
            {
                std::lock_guard const lock{f->mutex};
                f->done = true;
                if (result != nullptr) {
                    f->result = *result;
                } else {
                    f->abandoned = true;
                }
                waiters.swap(f->waiters);
            }
            for (auto& t : waiters) {
                asio::post(t->get_executor(), [t] { t->cancel(); });
            }
        }
        finisher(finisher const&) = delete;
        finisher& operator=(finisher const&) = delete;
        ~finisher() {
            if (!finished) {
                finish(nullptr);
            }
        }
    } done{s, key, f};

    auto result = co_await compute();
    if (result.error == tile_errc::none && result.bytes) {
        store(s, key, result.bytes, f->drops);
    }
    done.finish(&result);
    co_return result;
}

std::size_t tile_cache::drop_source(std::string_view source) {
    return drop(source, tile_area{});
}

std::size_t tile_cache::drop(std::string_view source, tile_area const& area) {
    {
        // Recorded before any shard is locked: a computation that read the old content, and
        // finishes while the shards are searched, stores nothing.
        std::lock_guard const lock{m_log_mutex};
        auto const number = m_drops.load() + 1;
        m_log.push_back(drop_record{number, std::string{source}, area});
        if (m_log.size() > drops_kept) {
            m_log.pop_front();
        }
        m_drops.store(number);
    }
    std::size_t dropped = 0;
    for (std::size_t i = 0; i < all_shards; ++i) {
        auto& s = m_shards[i];
        std::lock_guard const lock{s.mutex};
        for (auto it = s.lru.begin(); it != s.lru.end();) {
            if (is_cache_name_of(it->key.source, source) && area.contains(it->key.coord)) {
                s.bytes -= it->cost;
                s.index.erase(it->key);
                it = s.lru.erase(it);
                ++dropped;
            } else {
                ++it;
            }
        }
        count_large(s);
    }
    return dropped;
}

bool tile_cache::dropped_since(std::uint64_t drops, tile_key_view key) const {
    if (m_drops.load() == drops) {
        return false; // the common case: no drop at all meanwhile
    }
    std::lock_guard const lock{m_log_mutex};
    if (m_log.empty() || m_log.front().number > drops + 1) {
        return true; // the drops since then are no longer all known
    }
    return std::any_of(m_log.begin(), m_log.end(), [&](drop_record const& r) {
        return r.number > drops && is_cache_name_of(key.source, r.source) && r.area.contains(key.coord);
    });
}

std::size_t tile_cache::size_bytes() const {
    std::size_t total = 0;
    for (std::size_t i = 0; i < all_shards; ++i) {
        std::lock_guard const lock{m_shards[i].mutex};
        total += m_shards[i].bytes;
    }
    return total;
}

std::size_t tile_cache::entries() const {
    std::size_t total = 0;
    for (std::size_t i = 0; i < all_shards; ++i) {
        std::lock_guard const lock{m_shards[i].mutex};
        total += m_shards[i].lru.size();
    }
    return total;
}

} // namespace kachel::tiles
