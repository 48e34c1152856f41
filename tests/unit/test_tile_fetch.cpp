// Tile fetching (http/tile_fetch): through the cache or straight from the source, one computation
// for concurrent misses, composites in URL order. The source is a fake that counts its calls and
// answers after a short wait, so that requests overlap.

#include "http/tile_fetch.hpp"
#include "support/run.hpp"
#include "tiles/content_encoding.hpp"
#include "tiles/etag.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <vector>

using namespace kachel;
namespace asio = boost::asio;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

class fake_source final : public tiles::tile_source {
  public:
    fake_source(std::string id, std::string bytes, bool cacheable = true,
                std::chrono::milliseconds delay = std::chrono::milliseconds{20})
        : m_id(std::move(id)), m_bytes(std::move(bytes)), m_cacheable(cacheable), m_delay(delay) {}

    [[nodiscard]] std::string const& id() const noexcept override { return m_id; }
    [[nodiscard]] nlohmann::json const& tilejson() const noexcept override { return m_tilejson; }
    [[nodiscard]] std::string_view content_type() const noexcept override { return "application/x-protobuf"; }
    [[nodiscard]] tiles::cache_gate cache_policy() const noexcept override {
        return tiles::cache_gate{!m_cacheable, {}, {}, {}};
    }
    asio::awaitable<tiles::tile_result> async_get_tile(tile_coord coord, std::string const&) const override {
        ++calls;
        asio::steady_timer wait{co_await asio::this_coro::executor, m_delay};
        co_await wait.async_wait(asio::use_awaitable);
        if (coord.z == 9) {
            co_return tiles::tile_result::failed(tiles::tile_errc::unavailable, "no connection");
        }
        tiles::tile_result out;
        out.data = m_bytes + std::to_string(coord.z);
        co_return out;
    }

    mutable std::atomic<int> calls{0};

  private:
    std::string m_id;
    std::string m_bytes;
    bool m_cacheable;
    std::chrono::milliseconds m_delay;
    nlohmann::json m_tilejson = nlohmann::json::object();
};

std::string const no_query = "{}";

} // namespace

TEST(tile_fetch, concurrent_misses_share_one_computation_and_then_hit) {
    asio::io_context ioc;
    tiles::tile_cache cache{tiles::tile_cache_options{}};
    fake_source source{"a", "A"};
    http::tile_fetch first{tile_coord{3, 1, 1}, no_query, {}, &cache};
    http::tile_fetch second{tile_coord{3, 1, 1}, no_query, {}, &cache};
    auto const [one, two] =
        test::run(ioc, [&]() -> asio::awaitable<std::pair<tiles::fetched_tile, tiles::fetched_tile>> {
            auto both = co_await (first.get(&source) && second.get(&source));
            co_return std::pair{std::get<0>(both), std::get<1>(both)};
        }());
    EXPECT_EQ(source.calls, 1);
    ASSERT_TRUE(one.bytes && two.bytes);
    EXPECT_EQ(one.bytes, two.bytes); // the same shared bytes, not a copy
    EXPECT_EQ(one.bytes->data, "A3");
    EXPECT_FALSE(one.bytes->etag.empty());
    EXPECT_EQ(first.cache_status(), "miss");
    EXPECT_EQ(second.cache_status(), "miss"); // it waited for the other's query

    http::tile_fetch third{tile_coord{3, 1, 1}, no_query, {}, &cache};
    auto const again = test::run(ioc, third.get(&source));
    EXPECT_EQ(source.calls, 1);
    EXPECT_EQ(again.bytes, one.bytes);
    EXPECT_EQ(third.cache_status(), "hit");
}

TEST(tile_fetch, a_source_that_refuses_the_cache_is_asked_every_time) {
    asio::io_context ioc;
    tiles::tile_cache cache{tiles::tile_cache_options{}};
    fake_source source{"live", "L", false};
    for (int i = 0; i < 3; ++i) {
        http::tile_fetch fetch{tile_coord{2, 0, 0}, no_query, {}, &cache};
        EXPECT_EQ(test::run(ioc, fetch.get(&source)).bytes->data, "L2");
        EXPECT_EQ(fetch.cache_status(), "-");
    }
    EXPECT_EQ(source.calls, 3);
    EXPECT_EQ(cache.entries(), 0U);
}

TEST(tile_fetch, errors_are_handed_over_but_never_stored) {
    asio::io_context ioc;
    tiles::tile_cache cache{tiles::tile_cache_options{}};
    fake_source source{"a", "A"};
    for (int i = 0; i < 2; ++i) {
        http::tile_fetch fetch{tile_coord{9, 0, 0}, no_query, {}, &cache};
        auto const result = test::run(ioc, fetch.get(&source));
        EXPECT_EQ(result.error, tiles::tile_errc::unavailable);
        EXPECT_EQ(result.detail, "no connection");
        EXPECT_FALSE(result.bytes);
    }
    EXPECT_EQ(source.calls, 2);
}

TEST(tile_fetch, a_tile_read_while_its_source_is_dropped_is_handed_over_but_not_stored) {
    // The source's content changes while the tile is being read: the answer may be the old
    // content's, so it is not cached; the next request reads again, and then it is cached.
    asio::io_context ioc;
    tiles::tile_cache cache{tiles::tile_cache_options{}};
    fake_source source{"a", "A", true, std::chrono::milliseconds{50}};
    http::tile_fetch during{tile_coord{2, 0, 0}, no_query, {}, &cache};
    auto const result = test::run(ioc, [&]() -> asio::awaitable<tiles::fetched_tile> {
        auto drop = [&]() -> asio::awaitable<void> {
            asio::steady_timer wait{co_await asio::this_coro::executor, std::chrono::milliseconds{10}};
            co_await wait.async_wait(asio::use_awaitable);
            cache.drop_source("a");
        };
        auto both = co_await (during.get(&source) && drop());
        co_return both;
    }());
    ASSERT_TRUE(result.bytes);
    EXPECT_EQ(result.bytes->data, "A2");
    EXPECT_EQ(cache.entries(), 0U) << "read across a drop: not stored";
    for (int i = 0; i < 2; ++i) {
        http::tile_fetch after{tile_coord{2, 0, 0}, no_query, {}, &cache};
        EXPECT_EQ(test::run(ioc, after.get(&source)).bytes->data, "A2");
    }
    EXPECT_EQ(source.calls, 2) << "read again once, then from the cache";
    EXPECT_EQ(cache.entries(), 1U);
}

TEST(tile_fetch, a_composite_fetches_its_constituents_at_once_in_url_order) {
    asio::io_context ioc;
    auto const slow = std::chrono::milliseconds{100};
    fake_source a{"a", "A", true, slow};
    fake_source b{"b", "B", true, slow};
    fake_source c{"c", "C", true, slow};
    std::array<tiles::tile_source const*, 3> const sources{&c, &a, &b};
    http::tile_fetch fetch{tile_coord{4, 2, 2}, no_query, {}, nullptr};
    auto const started = std::chrono::steady_clock::now();
    auto const results = test::run(ioc, fetch.get_all(sources));
    auto const took = std::chrono::steady_clock::now() - started;
    ASSERT_EQ(results.size(), 3U);
    EXPECT_EQ(results[0].bytes->data, "C4");
    EXPECT_EQ(results[1].bytes->data, "A4");
    EXPECT_EQ(results[2].bytes->data, "B4");
    // Three 100 ms fetches side by side, not one after the other (which takes 300 ms).
    EXPECT_LT(took, std::chrono::milliseconds{250});
}

TEST(tile_fetch, an_encoding_is_made_once_per_cache_entry) {
    asio::io_context ioc;
    tiles::tile_cache cache{tiles::tile_cache_options{}};
    fake_source source{"a", std::string(4000, 'x')};
    http::tile_fetch fetch{tile_coord{5, 3, 3}, no_query, {}, &cache};
    auto const plain = test::run(ioc, fetch.get(&source)).bytes;
    auto const gzip = test::run(ioc, fetch.encoded(source, plain, http::encoding::gzip));
    auto const again = test::run(ioc, fetch.encoded(source, plain, http::encoding::gzip));
    EXPECT_EQ(gzip, again); // the stored variant
    EXPECT_LT(gzip->data.size(), plain->data.size());
    EXPECT_EQ(gzip->etag, plain->etag); // one ETag for every encoding of a tile
    EXPECT_EQ(http::decompress(gzip->data, http::encoding::gzip), plain->data);
    EXPECT_EQ(cache.entries(), 2U);
}

namespace {

/// A source that lends its tile (as a mapped archive does): the bytes stay in a buffer the
/// source shares, held by the result's keeper.
class lending_source final : public tiles::tile_source {
  public:
    /// Lends `bytes` in one piece, or cut at `cuts` (ascending offsets) into several.
    explicit lending_source(std::string bytes, std::vector<std::size_t> cuts = {})
        : m_bytes(std::make_shared<std::string const>(std::move(bytes))), m_cuts(std::move(cuts)) {}

    [[nodiscard]] std::string const& id() const noexcept override { return m_id; }
    [[nodiscard]] nlohmann::json const& tilejson() const noexcept override { return m_tilejson; }
    [[nodiscard]] std::string_view content_type() const noexcept override { return "application/x-protobuf"; }
    asio::awaitable<tiles::tile_result> async_get_tile(tile_coord, std::string const&) const override {
        tiles::tile_result out;
        std::vector<std::string_view> pieces;
        std::size_t from = 0;
        for (auto const cut : m_cuts) {
            pieces.push_back(std::string_view{*m_bytes}.substr(from, cut - from));
            from = cut;
        }
        pieces.push_back(std::string_view{*m_bytes}.substr(from));
        out.lent = tiles::lent_bytes{std::move(pieces), m_bytes};
        co_return out;
    }

    [[nodiscard]] std::weak_ptr<std::string const> buffer() const { return m_bytes; }

  private:
    std::string m_id = "lent";
    std::shared_ptr<std::string const> m_bytes;
    std::vector<std::size_t> m_cuts;
    nlohmann::json m_tilejson = nlohmann::json::object();
};

} // namespace

TEST(tile_fetch, lent_bytes_are_served_where_they_are_and_kept_alive_while_held) {
    asio::io_context ioc;
    std::weak_ptr<std::string const> buffer;
    tiles::fetched_tile fetched;
    {
        lending_source source{"plain tile"};
        buffer = source.buffer();
        http::tile_fetch fetch{tile_coord{1, 0, 0}, no_query, {}, nullptr};
        fetched = test::run(ioc, fetch.get(&source));
    }
    ASSERT_TRUE(fetched.bytes);
    EXPECT_FALSE(buffer.expired()) << "the source is gone; the tile holds its bytes";
    std::string scratch;
    EXPECT_EQ(fetched.bytes->contiguous(scratch), "plain tile");
    EXPECT_EQ(fetched.bytes->front().data(), buffer.lock()->data()) << "not copied";
    EXPECT_EQ(fetched.bytes->etag, tiles::etag_value("plain tile"));
    fetched = {};
    EXPECT_TRUE(buffer.expired());
}

TEST(tile_fetch, lent_gzip_bytes_are_kept_as_stored_beside_the_plain_tile) {
    asio::io_context ioc;
    auto const gz = tiles::compress("a gzip-stored tile", tiles::encoding::gzip);
    lending_source source{gz};
    http::tile_fetch fetch{tile_coord{1, 0, 0}, no_query, {}, nullptr};
    auto const fetched = test::run(ioc, fetch.get(&source));
    ASSERT_TRUE(fetched.bytes && fetched.bytes->as_gzip);
    std::string scratch;
    EXPECT_EQ(fetched.bytes->contiguous(scratch), "a gzip-stored tile");
    EXPECT_EQ(fetched.bytes->as_gzip->contiguous(scratch), gz);
    EXPECT_EQ(fetched.bytes->etag, tiles::etag_value("a gzip-stored tile"));
    EXPECT_EQ(fetched.bytes->as_gzip->etag, fetched.bytes->etag);
}

TEST(tile_fetch, bytes_lent_in_pieces_are_one_tile_with_the_etag_of_the_whole) {
    asio::io_context ioc;
    std::string whole(10'000, 'x');
    for (std::size_t i = 0; i < whole.size(); ++i) {
        whole[i] = static_cast<char>('a' + i * 7 % 26);
    }
    lending_source source{whole, {1'000, 1'000, 5'092, 9'999}}; // an empty piece too
    http::tile_fetch fetch{tile_coord{1, 0, 0}, no_query, {}, nullptr};
    auto const fetched = test::run(ioc, fetch.get(&source));
    ASSERT_TRUE(fetched.bytes && fetched.bytes->lent);
    EXPECT_EQ(fetched.bytes->lent->pieces().size(), 5U) << "lent as they are, not joined";
    EXPECT_EQ(fetched.bytes->size(), whole.size());
    std::string scratch;
    EXPECT_EQ(fetched.bytes->contiguous(scratch), whole);
    std::string appended = "<";
    fetched.bytes->append_to(appended);
    EXPECT_EQ(appended, "<" + whole);
    EXPECT_EQ(fetched.bytes->etag, tiles::etag_value(whole));
}

TEST(tile_fetch, gzip_bytes_lent_in_pieces_are_inflated_whole) {
    asio::io_context ioc;
    std::string plain;
    for (int i = 0; i < 3'000; ++i) {
        plain += std::to_string(i * 7919 % 1'000);
    }
    auto const gz = tiles::compress(plain, tiles::encoding::gzip);
    ASSERT_GT(gz.size(), 100U);
    lending_source source{gz, {20, gz.size() / 2}};
    http::tile_fetch fetch{tile_coord{1, 0, 0}, no_query, {}, nullptr};
    auto const fetched = test::run(ioc, fetch.get(&source));
    ASSERT_TRUE(fetched.bytes && fetched.bytes->as_gzip);
    std::string scratch;
    EXPECT_EQ(fetched.bytes->contiguous(scratch), plain);
    EXPECT_EQ(fetched.bytes->as_gzip->size(), gz.size());
    EXPECT_EQ(fetched.bytes->etag, tiles::etag_value(plain));
}

TEST(etag_memo, hashes_once_per_key) {
    tiles::etag_memo memo;
    auto const pieces = [](std::string_view bytes) { return std::array{bytes}; };
    EXPECT_EQ(memo.get(7, pieces("bytes")), tiles::etag_value("bytes"));
    // The key stands for the bytes: the same key is not hashed again.
    EXPECT_EQ(memo.get(7, pieces("other")), tiles::etag_value("bytes"));
    EXPECT_EQ(memo.get(8, pieces("other")), tiles::etag_value("other"));
}

TEST(etag, of_pieces_is_the_etag_of_their_bytes_in_one) {
    std::string whole(300'000, '\0');
    for (std::size_t i = 0; i < whole.size(); ++i) {
        whole[i] = static_cast<char>(i * 2'654'435'761U >> 13U);
    }
    std::string_view const all{whole};
    // Cuts inside and across XXH3's blocks and stripes (64 bytes, 1 KiB), and empty pieces.
    std::vector<std::string_view> const pieces{
        all.substr(0, 1),      all.substr(1, 0),           all.substr(1, 4'091), all.substr(4'092, 4'092),
        all.substr(8'184, 63), all.substr(8'247, 200'000), all.substr(208'247)};
    EXPECT_EQ(tiles::etag_value(pieces), tiles::etag_value(whole));
    EXPECT_EQ(tiles::etag_value(std::vector<std::string_view>{}), tiles::etag_value(std::string_view{}));
    EXPECT_EQ(tiles::etag_value(std::vector<std::string_view>{"", ""}), std::string(22, 'A'));
}

TEST(tile_fetch, an_area_drop_takes_the_tiles_inside_in_every_encoding_and_no_other) {
    asio::io_context ioc;
    tiles::tile_cache cache{tiles::tile_cache_options{}};
    fake_source a{"a", std::string(100, 'a'), true, std::chrono::milliseconds{1}};
    fake_source b{"b", "B", true, std::chrono::milliseconds{1}};
    auto const fill = [&](tile_coord c, fake_source const& s) {
        http::tile_fetch fetch{c, no_query, {}, &cache};
        auto const plain = test::run(ioc, fetch.get(&s)).bytes;
        (void)test::run(ioc, fetch.encoded(s, plain, http::encoding::gzip));
    };
    // Paris at z6 is 32/22; Tokyo 56/25.
    for (auto const c : {tile_coord{6, 32, 22}, tile_coord{6, 56, 25}, tile_coord{0, 0, 0}}) {
        fill(c, a);
        fill(c, b);
    }
    ASSERT_EQ(cache.entries(), 12U);
    tiles::tile_area const paris{{tiles::lonlat_box{2.35, 48.85, 2.35, 48.85}}, 0};
    EXPECT_EQ(cache.drop("a", paris), 4U); // a's z6 Paris tile and a's z0 tile, both encodings
    EXPECT_EQ(cache.entries(), 8U);
    EXPECT_FALSE(cache.find(tiles::tile_key_view{"a", tile_coord{6, 32, 22}, {}, http::encoding::gzip}));
    EXPECT_TRUE(cache.find(tiles::tile_key_view{"a", tile_coord{6, 56, 25}, {}, http::encoding::gzip}));
    EXPECT_TRUE(cache.find(tiles::tile_key_view{"b", tile_coord{6, 32, 22}, {}, http::encoding::identity}));
}

TEST(tile_fetch, a_drop_elsewhere_lets_a_tile_under_way_be_stored) {
    // Only a drop that covers the tile being made keeps it out of the cache.
    asio::io_context ioc;
    tiles::tile_cache cache{tiles::tile_cache_options{}};
    fake_source source{"a", "A", true, std::chrono::milliseconds{50}};
    tiles::tile_area const tokyo{{tiles::lonlat_box{139.7, 35.7, 139.7, 35.7}}, 0};
    http::tile_fetch during{tile_coord{6, 32, 22}, no_query, {}, &cache};
    (void)test::run(ioc, [&]() -> asio::awaitable<tiles::fetched_tile> {
        auto drop = [&]() -> asio::awaitable<void> {
            asio::steady_timer wait{co_await asio::this_coro::executor, std::chrono::milliseconds{10}};
            co_await wait.async_wait(asio::use_awaitable);
            cache.drop("a", tokyo);
            cache.drop("b", tiles::tile_area{});
        };
        auto both = co_await (during.get(&source) && drop());
        co_return both;
    }());
    EXPECT_EQ(cache.entries(), 1U);
}

TEST(tile_fetch, a_request_after_a_drop_does_not_wait_for_a_tile_begun_before_it) {
    // The first request reads the old content; the drop comes while it reads; a request after the
    // drop reads anew rather than take the first one's answer.
    asio::io_context ioc;
    tiles::tile_cache cache{tiles::tile_cache_options{}};
    fake_source source{"a", "A", true, std::chrono::milliseconds{60}};
    auto const results =
        test::run(ioc, [&]() -> asio::awaitable<std::pair<tiles::fetched_tile, tiles::fetched_tile>> {
            http::tile_fetch first{tile_coord{6, 32, 22}, no_query, {}, &cache};
            http::tile_fetch second{tile_coord{6, 32, 22}, no_query, {}, &cache};
            auto later = [&]() -> asio::awaitable<tiles::fetched_tile> {
                asio::steady_timer wait{co_await asio::this_coro::executor, std::chrono::milliseconds{20}};
                co_await wait.async_wait(asio::use_awaitable);
                cache.drop("a", tiles::tile_area{{tiles::lonlat_box{2.35, 48.85, 2.35, 48.85}}, 0});
                co_return co_await second.get(&source);
            };
            auto [a, b] = co_await (first.get(&source) && later());
            co_return std::pair{std::move(a), std::move(b)};
        }());
    EXPECT_EQ(source.calls, 2);
    ASSERT_TRUE(results.second.bytes);
    EXPECT_EQ(cache.entries(), 1U) << "the second answer, begun after the drop, is stored";
}
