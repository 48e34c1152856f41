// MBTiles metadata as TileJSON, and tile formats recognised from their bytes.

#include "mbtiles/mbtiles_source.hpp"
#include "tiles/tile_format.hpp"

#include <gtest/gtest.h>

using namespace kachel;

TEST(archive_metadata, rows_become_tilejson_and_bad_values_are_left_out) {
    std::vector<std::pair<std::string, std::string>> const rows{
        {"name", "n"},     {"bounds", "1,2,3"},   {"center", "1, 2"},  {"minzoom", "2.5"},   {"maxzoom", "7"},
        {"scheme", "xyz"}, {"type", "baselayer"}, {"json", "{broken"}, {"description", "d"},
    };
    auto const doc = mbtiles::metadata_tilejson(rows, std::nullopt, "f.mbtiles");
    EXPECT_EQ(doc["tilejson"], "3.0.0");
    EXPECT_EQ(doc["name"], "n");
    EXPECT_FALSE(doc.contains("bounds")) << "three numbers are no bounds";
    EXPECT_EQ(doc["center"], nlohmann::json::array({1.0, 2.0}));
    EXPECT_FALSE(doc.contains("minzoom")) << "2.5 is no zoom";
    EXPECT_EQ(doc["maxzoom"], 7);
    EXPECT_FALSE(doc.contains("scheme"));
    EXPECT_EQ(doc["type"], "baselayer");
    EXPECT_FALSE(doc.contains("vector_layers"));
    // The zooms that hold tiles win.
    auto const with_tiles = mbtiles::metadata_tilejson(rows, std::pair{3, 5}, "f.mbtiles");
    EXPECT_EQ(with_tiles["minzoom"], 3);
    EXPECT_EQ(with_tiles["maxzoom"], 5);
}

TEST(archive_metadata, tile_formats_from_their_first_bytes_and_names) {
    using namespace std::string_literals;
    EXPECT_EQ(tiles::detect_tile_type("\x89PNG\r\n\x1a\n...."s), "image/png");
    EXPECT_EQ(tiles::detect_tile_type("\xff\xd8\xff\xe0"s), "image/jpeg");
    EXPECT_EQ(tiles::detect_tile_type("RIFF\x10\0\0\0WEBPVP8 "s), "image/webp");
    EXPECT_EQ(tiles::detect_tile_type("\0\0\0\x1c"
                                      "ftypavif"s),
              "image/avif");
    EXPECT_EQ(tiles::detect_tile_type("GIF89a"s), "image/gif");
    EXPECT_EQ(tiles::detect_tile_type("{\"a\":1}"), "application/json");
    EXPECT_EQ(tiles::detect_tile_type("\x1a\x05"s), tiles::mvt_type);
    EXPECT_EQ(tiles::format_tile_type("pbf"), tiles::mvt_type);
    EXPECT_EQ(tiles::format_tile_type("jpg"), "image/jpeg");
    EXPECT_EQ(tiles::format_tile_type("tiff"), std::nullopt);
}
