#include "core/tile_coord.hpp"

#include <gtest/gtest.h>

using kachel::is_valid;
using kachel::tile_coord;

TEST(tile_coord, accepts_every_tile_of_a_zoom) {
    EXPECT_TRUE(is_valid({0, 0, 0}));
    EXPECT_TRUE(is_valid({1, 1, 1}));
    EXPECT_TRUE(is_valid({14, 16383, 16383}));
    EXPECT_TRUE(is_valid({30, (1U << 30) - 1, 0}));
}

TEST(tile_coord, rejects_x_or_y_past_the_edge) {
    EXPECT_FALSE(is_valid({0, 1, 0}));
    EXPECT_FALSE(is_valid({0, 0, 1}));
    EXPECT_FALSE(is_valid({3, 8, 0}));
    EXPECT_FALSE(is_valid({30, 1U << 30, 0}));
}

TEST(tile_coord, rejects_zoom_above_30) {
    EXPECT_FALSE(is_valid({31, 0, 0}));
    EXPECT_FALSE(is_valid({255, 0, 0}));
}
