#include "http/router.hpp"

#include <gtest/gtest.h>

#include <string>

using kachel::http::parse_route;
using kind = kachel::http::route::kind;

namespace {

std::vector<std::string> ids(kachel::http::route const& r) {
    return {r.source_ids.begin(), r.source_ids.end()};
}

} // namespace

TEST(router, fixed_routes) {
    EXPECT_EQ(parse_route("/").type, kind::root);
    EXPECT_EQ(parse_route("/health").type, kind::health);
    EXPECT_EQ(parse_route("/catalog").type, kind::catalog);
    EXPECT_EQ(parse_route("/catalog?x=1").type, kind::catalog);
    EXPECT_EQ(parse_route("/_/ready").type, kind::ready);
    EXPECT_EQ(parse_route("/_/metrics").type, kind::metrics);
    EXPECT_EQ(parse_route("/_/changes").type, kind::changes);
    EXPECT_EQ(parse_route("/tiles/_/changes", "/tiles").type, kind::changes);
    EXPECT_EQ(parse_route("/_/changes/x").type, kind::not_found);
}

TEST(router, trailing_slash_is_not_stripped) {
    EXPECT_EQ(parse_route("/catalog/").type, kind::not_found);
}

TEST(router, repeated_slashes_are_merged) {
    auto const r = parse_route("//points///1//0/0");
    ASSERT_EQ(r.type, kind::tile);
    EXPECT_EQ(ids(r), std::vector<std::string>{"points"});
    EXPECT_EQ(r.coord, (kachel::tile_coord{1, 0, 0}));
}

TEST(router, tilejson_keeps_path_and_query) {
    auto const r = parse_route("/points?token=abc");
    ASSERT_EQ(r.type, kind::tilejson);
    EXPECT_EQ(r.path, "/points");
    EXPECT_EQ(r.query, "token=abc");
}

TEST(router, tile_with_composite_ids) {
    auto const r = parse_route("/a,b,c/3/4/5");
    ASSERT_EQ(r.type, kind::tile);
    EXPECT_EQ(ids(r), (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_EQ(r.coord, (kachel::tile_coord{3, 4, 5}));
}

TEST(router, source_ids_are_percent_decoded) {
    auto const r = parse_route("/odd%20name/0/0/0");
    ASSERT_EQ(r.type, kind::tile);
    EXPECT_EQ(r.source_ids.front(), "odd name");
}

TEST(router, views_point_into_the_target_unless_the_path_was_rewritten) {
    // The common case allocates nothing: the path, ids and query are views into the target.
    std::string const target = "/points,lines/3/4/5?a=1";
    auto const plain = parse_route(target);
    ASSERT_EQ(plain.type, kind::tile);
    EXPECT_EQ(plain.own_path, nullptr);
    EXPECT_EQ(plain.own_ids, nullptr);
    EXPECT_EQ(plain.path.data(), target.data());
    EXPECT_EQ(plain.source_ids.at(1).data(), target.data() + 8);
    EXPECT_EQ(plain.query.data(), target.data() + target.find('?') + 1);

    // Merged slashes and decoded ids live in the route's own storage, which moves with it.
    auto rewritten = parse_route("//odd%20name//3/4/5");
    ASSERT_NE(rewritten.own_path, nullptr);
    ASSERT_NE(rewritten.own_ids, nullptr);
    auto const moved = std::move(rewritten);
    EXPECT_EQ(moved.path, "/odd%20name/3/4/5");
    EXPECT_EQ(ids(moved), std::vector<std::string>{"odd name"});
}

TEST(router, bad_escapes_and_nul_are_bad_requests) {
    EXPECT_EQ(parse_route("/a%2/0/0/0").type, kind::bad_request);
    EXPECT_EQ(parse_route("/a%zz").type, kind::bad_request);
    EXPECT_EQ(parse_route("/a%00b").type, kind::bad_request);
    using namespace std::string_view_literals;
    EXPECT_EQ(parse_route("/a\0b/0/0/0"sv).type, kind::bad_request); // found by fuzz_router
    EXPECT_EQ(parse_route("/a\x01b"sv).type, kind::bad_request);
    EXPECT_EQ(parse_route("/a\x7f"sv).type, kind::bad_request);
}

TEST(router, out_of_range_coordinates_are_bad_requests) {
    EXPECT_EQ(parse_route("/p/31/0/0").type, kind::bad_request);
    EXPECT_EQ(parse_route("/p/0/1/0").type, kind::bad_request);
    EXPECT_EQ(parse_route("/p/2/0/4").type, kind::bad_request);
    EXPECT_EQ(parse_route("/p/1/0/99999999999999999999999").type, kind::bad_request);
    EXPECT_EQ(parse_route("/p/30/1073741823/1073741823").type, kind::tile);
}

TEST(router, non_numeric_coordinates_do_not_match) {
    EXPECT_EQ(parse_route("/p/a/0/0").type, kind::not_found);
    EXPECT_EQ(parse_route("/p/-1/0/0").type, kind::not_found);
    EXPECT_EQ(parse_route("/p/1/+0/0").type, kind::not_found);
    EXPECT_EQ(parse_route("/p/1/0").type, kind::not_found);
    EXPECT_EQ(parse_route("/p/1/0/0/0").type, kind::not_found);
}

TEST(router, paths_longer_than_any_route_are_not_found) {
    // Five segments are the most any route has (legacy /tiles/...); longer paths never match,
    // however many segments they have, and the legacy forms do not match a longer path's prefix.
    EXPECT_EQ(parse_route("/p/1/0/0/0/0").type, kind::not_found);
    EXPECT_EQ(parse_route("/tiles/p/1/0/0/extra").type, kind::not_found);
    EXPECT_EQ(parse_route("/tiles/p/1/0/0/a/b/c/d/e/f/g").type, kind::not_found);
    EXPECT_EQ(parse_route("/_/ui/app.js/more").type, kind::not_found);
    EXPECT_EQ(parse_route(std::string(2000, '/') + "p/1/0/0/" + std::string(300, 'x')).type, kind::not_found);
    auto const r = parse_route("/tiles/p/1/0/0");
    EXPECT_EQ(r.type, kind::redirect);
    EXPECT_EQ(r.location, "/p/1/0/0");
}

TEST(router, empty_id_in_a_list_is_not_found) {
    EXPECT_EQ(parse_route("/a,,b/0/0/0").type, kind::not_found);
}

TEST(router, more_than_128_ids_is_a_bad_request) {
    std::string ids = "s0";
    for (int i = 1; i < 129; ++i) {
        ids += ",s" + std::to_string(i);
    }
    auto const r = parse_route("/" + ids + "/0/0/0");
    ASSERT_EQ(r.type, kind::bad_request);
    EXPECT_EQ(r.message, "Requested 129 source ids, but at most 128 are allowed per request");

    std::string ok = "s0";
    for (int i = 1; i < 128; ++i) {
        ok += ",s" + std::to_string(i);
    }
    EXPECT_EQ(parse_route("/" + ok + "/0/0/0").type, kind::tile);
}

TEST(router, legacy_urls_redirect_with_query) {
    auto const ext = parse_route("/nosuch/1/0/0.pbf?k=v");
    ASSERT_EQ(ext.type, kind::redirect);
    EXPECT_EQ(ext.location, "/nosuch/1/0/0?k=v");
    auto const prefixed = parse_route("/tiles/a,b/2/1/3");
    ASSERT_EQ(prefixed.type, kind::redirect);
    EXPECT_EQ(prefixed.location, "/a,b/2/1/3");
}

TEST(router, path_must_be_absolute) {
    EXPECT_EQ(parse_route("points").type, kind::bad_request);
}

TEST(router, route_prefix_mounts_every_route_but_health_stays_at_the_root) {
    EXPECT_EQ(parse_route("/tiles/catalog", "/tiles").type, kind::catalog);
    EXPECT_EQ(parse_route("/catalog", "/tiles").type, kind::not_found);
    EXPECT_EQ(parse_route("/health", "/tiles").type, kind::health);
    EXPECT_EQ(parse_route("/tiles/health", "/tiles").type, kind::health);
    EXPECT_EQ(parse_route("/tilesx/catalog", "/tiles").type, kind::not_found);
    auto const tile = parse_route("/tiles/points/1/0/0", "/tiles");
    ASSERT_EQ(tile.type, kind::tile);
    EXPECT_EQ(tile.path, "/points/1/0/0");
    EXPECT_EQ(parse_route("/tiles/", "/tiles").type, kind::root);
    auto const bare = parse_route("/tiles?x=1", "/tiles");
    ASSERT_EQ(bare.type, kind::redirect);
    EXPECT_EQ(bare.location, "/tiles/?x=1");
    auto const legacy = parse_route("/tiles/points/1/0/0.pbf?a=1", "/tiles");
    ASSERT_EQ(legacy.type, kind::redirect);
    EXPECT_EQ(legacy.location, "/tiles/points/1/0/0?a=1");
}

TEST(router, prefixes_are_normalised) {
    using kachel::http::normalize_prefix;
    EXPECT_EQ(normalize_prefix("/"), "");
    EXPECT_EQ(normalize_prefix("/a//b/"), "/a/b");
    EXPECT_EQ(normalize_prefix("a"), std::nullopt);
    EXPECT_EQ(normalize_prefix(""), std::nullopt);
    EXPECT_EQ(normalize_prefix("/a?b"), std::nullopt);
}

TEST(router, the_purge_route_names_its_sources_and_keeps_its_query) {
    auto const r = parse_route("/cache/a,b%20c?bbox=1,2,3,4&minzoom=3");
    EXPECT_EQ(r.type, kind::purge);
    ASSERT_EQ(r.source_ids.size(), 2U);
    EXPECT_EQ(r.source_ids[0], "a");
    EXPECT_EQ(r.source_ids[1], "b c");
    EXPECT_EQ(r.query, "bbox=1,2,3,4&minzoom=3");
    // A source named cache keeps its own routes.
    EXPECT_EQ(parse_route("/cache").type, kind::tilejson);
    EXPECT_EQ(parse_route("/cache/1/1/1").type, kind::tile);
    EXPECT_EQ(parse_route("/cache/").type, kind::not_found);
    EXPECT_EQ(parse_route("/tiles/cache/a").type, kind::not_found);
    auto const prefixed = parse_route("/t/cache/a", "/t");
    EXPECT_EQ(prefixed.type, kind::purge);
}
