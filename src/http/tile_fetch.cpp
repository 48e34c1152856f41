#include "http/tile_fetch.hpp"

#include "core/metrics.hpp"
#include "tiles/blocking_read.hpp"
#include "tiles/etag.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <utility>

namespace kachel::http {

namespace asio = boost::asio;

bool tile_fetch::cached(tiles::tile_source const& source) const noexcept {
    return m_cache != nullptr && m_cache->covers(m_coord.z) && source.cache_policy().allows(m_coord.z);
}

tiles::tile_key_view tile_fetch::key_view(tiles::tile_source const& source, encoding e) const noexcept {
    return tiles::tile_key_view{source.cache_name(), m_coord,
                                source.accepts_query() ? m_raw_query : std::string_view{}, e};
}

tiles::tile_key tile_fetch::key(tiles::tile_source const& source, encoding e) const {
    auto const view = key_view(source, e);
    return tiles::tile_key{std::string{view.source}, m_coord, std::string{view.query}, view.encoding};
}

namespace {

using clock = std::chrono::steady_clock;

std::chrono::microseconds since(clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - start);
}

/// Warns of a tile above `tile_size_warning`: one line every 10 seconds at most, saying how many
/// more were seen meanwhile.
void warn_big_tile(std::string_view source, tile_coord c, std::size_t size, std::size_t limit) {
    static std::atomic<clock::rep> last{0};
    static std::atomic<std::uint64_t> quiet{0};
    auto const now = clock::now().time_since_epoch().count();
    auto previous = last.load(std::memory_order_relaxed);
    auto const gap = std::chrono::duration_cast<clock::duration>(std::chrono::seconds{10}).count();
    if ((previous != 0 && now - previous < gap) || !last.compare_exchange_strong(previous, now)) {
        quiet.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    auto const more = quiet.exchange(0, std::memory_order_relaxed);
    spdlog::warn("Tile {}/{}/{}/{} is {} bytes, more than tile_size_warning ({} bytes): give the source a "
                 "budget (order_by, max_feature_count, thin_points, simplify; docs/config.md){}",
                 source, c.z, c.x, c.y, size, limit,
                 more == 0 ? std::string{}
                           : fmt::format(" ({} more big tiles since the last warning)", more));
}

} // namespace

asio::awaitable<tiles::fetched_tile> tile_fetch::get(tiles::tile_source const* source) {
    auto compute = [source, this]() -> asio::awaitable<tiles::fetched_tile> {
        auto const start = clock::now();
        auto result = co_await source->async_get_tile(m_coord, m_query_json);
        auto const took = since(start);
        m_source_time += took;
        if (result.error != tiles::tile_errc::none) {
            co_return tiles::fetched_tile{nullptr, result.error, std::move(result.detail)};
        }
        // The tile as the source gave it: bytes of its own, or bytes it lends.
        auto bytes = std::make_shared<tiles::tile_bytes>();
        if (result.lent) {
            bytes->lent = std::move(result.lent);
        } else {
            bytes->data = std::move(result.data);
        }
        std::shared_ptr<tiles::tile_bytes> as_gzip;
        std::string scratch; // for bytes lent in pieces that must be read in one
        if (tiles::is_gzip(bytes->front())) {
            // Stored gzip-compressed (an MBTiles archive, a function as Martin 1.16 allows): kept
            // plain like every tile, so each client gets the encoding it accepts and the ETag is the
            // content's, and kept as stored too, for the clients that accept gzip.
            as_gzip = std::exchange(bytes, std::make_shared<tiles::tile_bytes>());
            std::string failure;
            try {
                bytes->data = decompress(as_gzip->contiguous(scratch), encoding::gzip);
            } catch (std::exception const& e) {
                failure = fmt::format("source {} returned broken gzip data: {}", source->id(), e.what());
            }
            if (!failure.empty()) {
                co_return tiles::fetched_tile{nullptr, tiles::tile_errc::internal, std::move(failure)};
            }
        }
        if (tiles::is_zlib(bytes->front())) {
            // Stored zlib-compressed (some MBTiles files): served plain, and encoded as each client
            // accepts. A tile that only looks like zlib goes out as it is.
            try {
                auto plain = std::make_shared<tiles::tile_bytes>();
                plain->data = decompress(bytes->contiguous(scratch), encoding::gzip);
                bytes = std::move(plain);
            } catch (std::exception const&) {
            }
        }
        if (result.etag) {
            bytes->etag = std::move(*result.etag);
        } else if (bytes->lent) {
            bytes->etag = tiles::etag_value(bytes->lent->pieces());
        } else {
            bytes->etag = tiles::etag_value(bytes->data);
        }
        if (as_gzip) {
            as_gzip->etag = bytes->etag;
            bytes->as_gzip = std::move(as_gzip);
        }
        bytes->made_ms = static_cast<float>(took.count()) / 1000.0F;
        global_metrics().observe_tile_size(source->id(), m_coord.z, bytes->size());
        if (m_size_warning != 0 && bytes->size() > m_size_warning) {
            warn_big_tile(source->id(), m_coord, bytes->size(), m_size_warning);
        }
        co_return tiles::fetched_tile{std::move(bytes), tiles::tile_errc::none, {}};
    };
    if (!cached(*source)) {
        co_return co_await compute();
    }
    bool hit = false;
    auto out = co_await m_cache->get_or_compute(key(*source, encoding::identity), compute, &hit,
                                                source->cache_policy().idle_timeout);
    (hit ? m_any_hit : m_any_miss) = true;
    global_metrics().count_cache_lookup(m_coord.z, hit);
    co_return out;
}

asio::awaitable<std::shared_ptr<tiles::tile_bytes const>>
tile_fetch::encoded(tiles::tile_source const& source, std::shared_ptr<tiles::tile_bytes const> plain,
                    encoding e) {
    if (e == encoding::gzip && plain->as_gzip) {
        co_return plain->as_gzip; // as the source stored it: no compression to do
    }
    std::optional<tiles::tile_key> k;
    if (cached(source)) {
        k = key(source, e);
    }
    co_return co_await encoded_under(std::move(k), source.cache_policy().idle_timeout, std::move(plain), e);
}

asio::awaitable<std::shared_ptr<tiles::tile_bytes const>>
tile_fetch::encoded_under(std::optional<tiles::tile_key> key,
                          std::optional<std::chrono::milliseconds> idle_timeout,
                          std::shared_ptr<tiles::tile_bytes const> plain, encoding e) {
    auto compress_plain = [plain, e]() -> asio::awaitable<tiles::fetched_tile> {
        auto bytes = std::make_shared<tiles::tile_bytes>();
        std::string scratch;
        bytes->data = compress(plain->contiguous(scratch), e);
        bytes->etag = plain->etag;
        bytes->made_ms = plain->made_ms;
        co_return tiles::fetched_tile{std::move(bytes), tiles::tile_errc::none, {}};
    };
    auto compute = [this, compress_plain,
                    big = plain->size() > offload_size]() -> asio::awaitable<tiles::fetched_tile> {
        auto const start = clock::now();
        tiles::fetched_tile out;
        if (big && static_cast<bool>(m_blocking)) {
            out = co_await asio::co_spawn(m_blocking, compress_plain, tiles::uncancellable());
        } else {
            out = co_await compress_plain();
        }
        m_encode_time += since(start);
        co_return out;
    };
    if (!key) {
        co_return (co_await compute()).bytes;
    }
    co_return (co_await m_cache->get_or_compute(std::move(*key), compute, nullptr, idle_timeout)).bytes;
}

bool tile_fetch::cached(std::span<tiles::tile_source const* const> sources) const noexcept {
    return std::all_of(sources.begin(), sources.end(), [this](auto const* s) { return cached(*s); });
}

std::string tile_fetch::composite_name(std::span<tiles::tile_source const* const> sources) {
    // Each name follows a separator, so that a composite of one source (the others out of their
    // zooms) is not that source's own tile.
    std::string out;
    for (auto const* source : sources) {
        out += tiles::composite_separator;
        out += source->cache_name();
    }
    return out;
}

tiles::tile_key_view tile_fetch::composite_key_view(std::string_view name,
                                                    std::span<tiles::tile_source const* const> sources,
                                                    encoding e) const noexcept {
    bool const with_query =
        std::any_of(sources.begin(), sources.end(), [](auto const* s) { return s->accepts_query(); });
    return tiles::tile_key_view{name, m_coord, with_query ? m_raw_query : std::string_view{}, e};
}

asio::awaitable<tiles::fetched_tile>
tile_fetch::get_composite(std::span<tiles::tile_source const* const> sources, std::string const& name) {
    auto compute = [this, sources]() -> asio::awaitable<tiles::fetched_tile> {
        auto results = co_await get_all(sources);
        auto bytes = std::make_shared<tiles::tile_bytes>();
        std::string const* single_etag = nullptr;
        std::size_t non_empty = 0;
        std::size_t size = 0;
        for (auto& result : results) {
            if (result.error != tiles::tile_errc::none) {
                co_return std::move(result);
            }
            size += result.bytes->size();
        }
        bytes->data.reserve(size);
        for (auto const& result : results) {
            bytes->etag += result.bytes->etag;
            bytes->made_ms += result.bytes->made_ms;
            if (!result.bytes->empty()) {
                ++non_empty;
                single_etag = &result.bytes->etag;
                result.bytes->append_to(bytes->data);
            }
        }
        if (non_empty == 1) {
            bytes->etag = *single_etag;
        }
        co_return tiles::fetched_tile{std::move(bytes), tiles::tile_errc::none, {}};
    };
    if (!cached(sources)) {
        co_return co_await compute();
    }
    auto const view = composite_key_view(name, sources, encoding::identity);
    // (A named key: GCC 12 mishandles a temporary built inside a co_await expression.)
    tiles::tile_key k{name, m_coord, std::string{view.query}, view.encoding};
    bool hit = false;
    auto out = co_await m_cache->get_or_compute(std::move(k), compute, &hit);
    if (hit) {
        m_any_hit = true;
        global_metrics().count_cache_lookup(m_coord.z, true);
    }
    co_return out;
}

asio::awaitable<std::shared_ptr<tiles::tile_bytes const>>
tile_fetch::encoded_composite(std::span<tiles::tile_source const* const> sources, std::string const& name,
                              std::shared_ptr<tiles::tile_bytes const> plain, encoding e) {
    std::optional<tiles::tile_key> k;
    if (cached(sources)) {
        auto const view = composite_key_view(name, sources, e);
        k = tiles::tile_key{name, m_coord, std::string{view.query}, e};
    }
    co_return co_await encoded_under(std::move(k), std::nullopt, std::move(plain), e);
}

asio::awaitable<std::vector<tiles::fetched_tile>>
tile_fetch::get_all(std::span<tiles::tile_source const* const> sources) {
    std::vector<tiles::fetched_tile> results;
    if (sources.size() == 1) {
        results.push_back(co_await get(sources.front()));
        co_return results;
    }
    auto const executor = co_await asio::this_coro::executor;
    using operation = decltype(asio::co_spawn(executor, get(sources.front()), asio::deferred));
    std::vector<operation> operations;
    operations.reserve(sources.size());
    for (auto const* source : sources) {
        operations.push_back(asio::co_spawn(executor, get(source), asio::deferred));
    }
    auto [order, exceptions, values] =
        co_await asio::experimental::make_parallel_group(std::move(operations))
            .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
    for (std::size_t i = 0; i < values.size(); ++i) {
        if (exceptions[i]) {
            std::rethrow_exception(exceptions[i]); // get() does not throw; a bug if it did
        }
        results.push_back(std::move(values[i]));
    }
    co_return results;
}

} // namespace kachel::http
