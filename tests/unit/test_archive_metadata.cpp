// MBTiles metadata as TileJSON, and tile formats recognised from their bytes.

#include "core/error.hpp"
#include "mbtiles/mbtiles_source.hpp"
#include "pmtiles/pmtiles_source.hpp"
#include "remote/http_client.hpp"
#include "tiles/archive_paths.hpp"
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

TEST(archive_metadata, pmtiles_ids_follow_the_hilbert_curve_zoom_by_zoom) {
    EXPECT_EQ(pmtiles::tile_id({0, 0, 0}), 0U);
    EXPECT_EQ(pmtiles::tile_id({1, 0, 0}), 1U);
    EXPECT_EQ(pmtiles::tile_id({1, 0, 1}), 2U);
    EXPECT_EQ(pmtiles::tile_id({1, 1, 1}), 3U);
    EXPECT_EQ(pmtiles::tile_id({1, 1, 0}), 4U);
    EXPECT_EQ(pmtiles::tile_id({2, 0, 0}), 5U);
    EXPECT_EQ(pmtiles::tile_id({3, 7, 0}), 21U + 63U);
}

TEST(archive_metadata, pmtiles_directories_decode_runs_and_leaves) {
    // Three entries: ids 5, 6 (run of 2), 9 (a leaf); lengths 10, 20, 30; offsets 0, then
    // "right after", then 100.
    std::string const bytes{"\x03\x05\x01\x03\x01\x02\x00\x0a\x14\x1e\x01\x00\x65", 13};
    auto const entries = pmtiles::parse_directory(bytes);
    ASSERT_EQ(entries.size(), 3U);
    EXPECT_EQ(entries[1].tile_id, 6U);
    EXPECT_EQ(entries[1].offset, 10U);
    EXPECT_EQ(entries[2].offset, 100U);
    EXPECT_EQ(pmtiles::find_entry(entries, 7)->tile_id, 6U) << "inside the run";
    EXPECT_EQ(pmtiles::find_entry(entries, 8), nullptr) << "after the run";
    EXPECT_EQ(pmtiles::find_entry(entries, 4), nullptr);
    EXPECT_EQ(pmtiles::find_entry(entries, 1000)->run_length, 0U) << "the leaf covers what follows";
    EXPECT_THROW((void)pmtiles::parse_directory(bytes.substr(0, 8)), source_error);
}

TEST(archive_metadata, archive_urls_split_into_origin_and_target_and_hide_their_query) {
    auto const u = remote::parse_url("https://tiles.example.org/a/world.pmtiles?sig=abc#x");
    EXPECT_TRUE(u.tls);
    EXPECT_EQ(u.host, "tiles.example.org");
    EXPECT_EQ(u.port, "443");
    EXPECT_EQ(u.target, "/a/world.pmtiles?sig=abc");
    EXPECT_EQ(u.origin(), "https://tiles.example.org:443");
    EXPECT_EQ(u.shown(), "https://tiles.example.org:443/a/world.pmtiles?...");
    auto const v6 = remote::parse_url("http://[::1]:8080");
    EXPECT_FALSE(v6.tls);
    EXPECT_EQ(v6.host, "::1");
    EXPECT_EQ(v6.port, "8080");
    EXPECT_EQ(v6.target, "/");
    EXPECT_EQ(tiles::file_stem("https://h/a/world.v2.pmtiles?x=1.2"), "world.v2");
    for (auto const* bad : {"ftp://h/a", "https:///a", "https://h:12x/a", "https://user:pw@h/a"}) {
        EXPECT_THROW((void)remote::parse_url(bad), config_error) << bad;
    }
    try {
        (void)remote::parse_url("https://user:pw@h/a");
    } catch (config_error const& e) {
        EXPECT_EQ(std::string{e.what()}.find("pw"), std::string::npos) << "the password is never shown";
    }
}
