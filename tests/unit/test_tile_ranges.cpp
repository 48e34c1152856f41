// The tiles kachel-cp copies: boxes to tile ranges, the Hilbert order of PMTiles, and the walk
// over several boxes that gives each tile once, in tile-id order.

#include "core/error.hpp"
#include "tiles/tile_ranges.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <tuple>

using namespace kachel;
using tiles::lonlat_box;

namespace {

/// Every tile of the walk, in the order it gives them.
std::vector<tile_coord> walk_all(std::vector<lonlat_box> const& boxes, std::vector<std::uint32_t> zooms) {
    tiles::tile_walk walk{boxes, std::move(zooms)};
    std::vector<tile_coord> out;
    while (auto const t = walk.next()) {
        out.push_back(*t);
    }
    return out;
}

} // namespace

TEST(tile_ranges, hilbert_position_undoes_hilbert_index_and_children_follow_their_parent) {
    for (std::uint32_t z = 0; z <= 6; ++z) {
        std::set<std::uint64_t> seen;
        for (std::uint32_t x = 0; x < (1U << z); ++x) {
            for (std::uint32_t y = 0; y < (1U << z); ++y) {
                auto const d = tiles::hilbert_index(z, x, y);
                EXPECT_LT(d, std::uint64_t{1} << (2 * z));
                seen.insert(d);
                EXPECT_EQ(tiles::hilbert_position(z, d), std::pair(x, y));
                EXPECT_EQ(tiles::tile_of_id(tiles::tile_id({z, x, y})), (tile_coord{z, x, y}));
                if (z > 0) {
                    // The tiles 4i .. 4i+3 of a zoom are the children of tile i of the zoom above:
                    // what lets the walk skip whole squares.
                    EXPECT_EQ(tiles::hilbert_position(z - 1, d / 4), std::pair(x / 2, y / 2));
                }
            }
        }
        EXPECT_EQ(seen.size(), std::size_t{1} << (2 * z)) << "every index once";
    }
    // PMTiles' published ids (the specification's examples).
    EXPECT_EQ(tiles::tile_id({0, 0, 0}), 0U);
    EXPECT_EQ(tiles::tile_id({1, 0, 0}), 1U);
    EXPECT_EQ(tiles::tile_id({1, 0, 1}), 2U);
    EXPECT_EQ(tiles::tile_id({1, 1, 1}), 3U);
    EXPECT_EQ(tiles::tile_id({1, 1, 0}), 4U);
    EXPECT_EQ(tiles::tile_id({2, 0, 0}), 5U);
}

TEST(tile_ranges, a_box_covers_the_tiles_it_reaches_inside) {
    lonlat_box const world;
    auto const r = tiles::rect_of(world, 3);
    EXPECT_EQ(std::tuple(r.min_x, r.min_y, r.max_x, r.max_y), std::tuple(0U, 0U, 7U, 7U));
    // The north-east quarter at zoom 1; its edges on tile edges take no tile beyond them.
    auto const q = tiles::rect_of(lonlat_box{0, 0, 180, 85.0511287798066}, 1);
    EXPECT_EQ(std::tuple(q.min_x, q.min_y, q.max_x, q.max_y), std::tuple(1U, 0U, 1U, 0U));
    // A box inside one tile gets that tile.
    auto const small = tiles::rect_of(lonlat_box{2.35, 48.85, 2.36, 48.86}, 10);
    EXPECT_EQ(small.count(), 1U);
    EXPECT_EQ(std::tuple(small.min_x, small.min_y), std::tuple(518U, 352U));
}

TEST(tile_ranges, a_rect_of_tiles_covers_the_area_from_edge_to_edge) {
    auto const world = tiles::box_of(tiles::rect_of(lonlat_box{}, 3));
    EXPECT_DOUBLE_EQ(world.west, -180);
    EXPECT_DOUBLE_EQ(world.east, 180);
    EXPECT_NEAR(world.north, 85.0511287798066, 1e-9);
    EXPECT_NEAR(world.south, -85.0511287798066, 1e-9);
    // Tile 1/1/0 is the north-east quarter; its rect comes back from its area.
    auto const quarter = tiles::box_of(tiles::tile_rect{1, 1, 0, 1, 0});
    EXPECT_DOUBLE_EQ(quarter.west, 0);
    EXPECT_NEAR(quarter.south, 0, 1e-9);
    auto const again = tiles::rect_of(quarter, 1);
    EXPECT_EQ(std::tuple(again.min_x, again.min_y, again.max_x, again.max_y), std::tuple(1U, 0U, 1U, 0U));
}

TEST(tile_ranges, boxes_are_parsed_and_bad_ones_named) {
    auto const b = tiles::parse_box(" -10.5, 35,5 ,44", "--bbox");
    EXPECT_EQ(std::tuple(b.west, b.south, b.east, b.north), std::tuple(-10.5, 35.0, 5.0, 44.0));
    for (auto const* bad :
         {"1,2,3", "1,2,3,4,5", "a,2,3,4", "", "5,0,1,10", "0,10,10,5", "-181,0,0,1", "0,0,1,91"}) {
        SCOPED_TRACE(bad);
        EXPECT_THROW((void)tiles::parse_box(bad, "--bbox"), config_error);
    }
}

TEST(tile_ranges, the_walk_gives_each_tile_of_overlapping_boxes_once_in_tile_id_order) {
    std::vector<lonlat_box> const boxes{{-20, -10, 40, 30}, {10, 0, 100, 50}, {-5, -5, 5, 5}};
    std::vector<std::uint32_t> const zooms{5, 0, 3, 8, 3};
    auto const tiles_walked = walk_all(boxes, zooms);
    // What the boxes cover, tile by tile.
    std::set<std::uint64_t> expected;
    for (auto const z : {0U, 3U, 5U, 8U}) {
        for (std::uint32_t x = 0; x < (1U << z); ++x) {
            for (std::uint32_t y = 0; y < (1U << z); ++y) {
                bool const inside = std::any_of(boxes.begin(), boxes.end(), [&](lonlat_box const& b) {
                    auto const r = tiles::rect_of(b, z);
                    return r.min_x <= x && x <= r.max_x && r.min_y <= y && y <= r.max_y;
                });
                if (inside) {
                    expected.insert(tiles::tile_id({z, x, y}));
                }
            }
        }
    }
    std::vector<std::uint64_t> ids;
    for (auto const& t : tiles_walked) {
        ids.push_back(tiles::tile_id(t));
    }
    EXPECT_TRUE(std::is_sorted(ids.begin(), ids.end()));
    EXPECT_EQ(std::set<std::uint64_t>(ids.begin(), ids.end()).size(), ids.size()) << "no tile twice";
    EXPECT_EQ(std::set<std::uint64_t>(ids.begin(), ids.end()), expected);
    tiles::tile_walk const walk{boxes, zooms};
    EXPECT_EQ(walk.count(), expected.size());
    EXPECT_EQ(walk.count_at(0), 1U);
    EXPECT_EQ(walk.count_at(1), 0U);
}

TEST(tile_ranges, the_walk_counts_a_deep_zoom_without_visiting_it) {
    tiles::tile_walk const walk{{lonlat_box{}}, {20}};
    EXPECT_EQ(walk.count(), std::uint64_t{1} << 40);
    tiles::tile_walk deep{{lonlat_box{2.2, 48.8, 2.5, 48.9}}, {16}};
    auto const r = tiles::rect_of(lonlat_box{2.2, 48.8, 2.5, 48.9}, 16);
    EXPECT_EQ(deep.count(), r.count());
    std::uint64_t n = 0;
    while (deep.next()) {
        ++n;
    }
    EXPECT_EQ(n, r.count());
}

TEST(tile_ranges, an_area_holds_the_tiles_its_boxes_reach_with_their_margin) {
    // A point in Paris: z6 tile 32/22. The tile touching it on no side is out, unless the margin
    // (a source's buffer / extent) reaches it.
    tiles::lonlat_box const paris{2.35, 48.85, 2.35, 48.85};
    auto const home = tiles::rect_of(paris, 6);
    ASSERT_EQ(home.min_x, 32U);
    ASSERT_EQ(home.min_y, 22U);
    tiles::tile_area const exact{{paris}, 0};
    EXPECT_TRUE(exact.contains(tile_coord{6, 32, 22}));
    EXPECT_FALSE(exact.contains(tile_coord{6, 31, 22}));
    EXPECT_FALSE(exact.contains(tile_coord{6, 32, 23}));
    EXPECT_TRUE(exact.contains(tile_coord{0, 0, 0}));
    EXPECT_TRUE(exact.contains(tile_coord{14, 8298, 5637}));
    EXPECT_FALSE(exact.contains(tile_coord{14, 8298, 5639}));
    EXPECT_FALSE(exact.whole());
    // 2.35° E lies 0.418 of a tile into column 32 at z6: a margin of half a tile reaches 31, not 30.
    tiles::tile_area const wide{{paris}, 0.5};
    EXPECT_TRUE(wide.contains(tile_coord{6, 31, 22}));
    EXPECT_FALSE(wide.contains(tile_coord{6, 30, 22}));
    // Zooms outside the range are never in the area.
    tiles::tile_area const deep{{paris}, 0, 10, 12};
    EXPECT_FALSE(deep.contains(tile_coord{6, 32, 22}));
    EXPECT_TRUE(deep.contains(tile_coord{10, 518, 352}));
    EXPECT_FALSE(deep.contains(tile_coord{13, 4149, 2818}));
    // No boxes: everything.
    tiles::tile_area const all;
    EXPECT_TRUE(all.whole());
    EXPECT_TRUE(all.contains(tile_coord{20, 1, 1}));
    EXPECT_FALSE(tiles::tile_area({}, 0, 3, 3).contains(tile_coord{4, 0, 0}));
    // Several boxes: the union.
    tiles::tile_area const two{{paris, tiles::lonlat_box{139.7, 35.7, 139.7, 35.7}}, 0};
    EXPECT_TRUE(two.contains(tile_coord{6, 32, 22}));
    EXPECT_TRUE(two.contains(tile_coord{6, 56, 25}));
    EXPECT_FALSE(two.contains(tile_coord{6, 40, 24}));
}
