// Archives followed on disk without a restart: added, replaced, half-written and deleted files,
// in a watched directory and as a named source. The archives are written by
// tests/archives/write_pmtiles.mjs (checked by the reference reader); the tiles by PostGIS.

#include "support/archive_fixtures.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <thread>

using namespace kachel;
using namespace std::chrono_literals;
using test::read_file;
using test::run_shell;
using test::write_file;
namespace fs = std::filesystem;

namespace {

/// Polls `done` every 50 ms for up to 10 s.
bool eventually(std::function<bool()> const& done) {
    for (int i = 0; i < 200; ++i) {
        if (done()) {
            return true;
        }
        std::this_thread::sleep_for(50ms);
    }
    return done();
}

class archive_reload : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        s_suite.prepare("archive-reload");
        s_dir = s_suite.dir;
        // Zooms 0 and 1, a city per tile; version B holds each tile's x-mirror.
        for (int z = 0; z <= 1; ++z) {
            for (int x = 0; x < (1 << z); ++x) {
                for (int y = 0; y < (1 << z); ++y) {
                    auto const name = std::to_string(z) + "-" + std::to_string(x) + "-" + std::to_string(y);
                    double const lon = -180.0 + (360.0 / (1 << z)) * (x + 0.5);
                    double const lat = z == 0 ? 10.0 : (y == 0 ? 40.0 : -40.0);
                    auto bytes = test::postgis_tile(*s_suite.db, "c" + name, lon, lat, z, x, y);
                    write_file(s_dir / name, bytes);
                    s_tiles[{z, x, y}] = std::move(bytes);
                }
            }
        }
        std::vector<test::tile_file> a;
        std::vector<test::tile_file> b;
        for (auto const& [zxy, bytes] : s_tiles) {
            auto const [z, x, y] = zxy;
            auto const file = [&](int tx) {
                return s_dir / (std::to_string(z) + "-" + std::to_string(tx) + "-" + std::to_string(y));
            };
            a.push_back({z, x, y, file(x)});
            b.push_back({z, x, y, file((1 << z) - 1 - x)});
        }
        test::write_pmtiles(s_dir / "a.pmtiles", a, 1, 2, 0, "A");
        test::write_pmtiles(s_dir / "b.pmtiles", b, 1, 1, 0, "B");
    }
    static void TearDownTestSuite() { s_suite.finish(); }

    /// The tile of version A at z/x/y, and of version B.
    static std::string const& tile_a(int z, int x, int y) { return s_tiles.at({z, x, y}); }
    static std::string const& tile_b(int z, int x, int y) { return s_tiles.at({z, (1 << z) - 1 - x, y}); }

    /// Puts `from` at `to` the safe way: a copy beside it, then a rename over it.
    static void publish(fs::path const& from, fs::path const& to) {
        auto const temporary = to.parent_path() / ("." + to.filename().string() + ".part");
        fs::copy_file(from, temporary, fs::copy_options::overwrite_existing);
        fs::rename(temporary, to);
    }

    static inline test::archive_suite s_suite;
    static inline fs::path s_dir;
    static inline std::map<std::tuple<int, int, int>, std::string> s_tiles;
};

} // namespace

TEST_F(archive_reload, archives_appear_change_and_go_without_a_restart) {
    auto const watched = s_dir / "watched";
    auto const named = s_dir / "named";
    fs::create_directories(watched);
    fs::create_directories(named);
    fs::copy_file(s_dir / "a.pmtiles", watched / "first.pmtiles");
    fs::copy_file(s_dir / "a.pmtiles", named / "solo.pmtiles");
    auto const config = s_dir / "kachel.yaml";
    write_file(config, "mbtiles: " + watched.string() + "\npmtiles:\n  paths: [" + watched.string() +
                           "]\n  sources:\n    solo: " + (named / "solo.pmtiles").string() + "\n");
    test::child_process k{{KACHEL_BINARY, "-l", "127.0.0.1:0", "-c", config.string()},
                          {{"DATABASE_URL", std::nullopt}}};
    auto const port = test::ready_port(k);
    ASSERT_NE(port, 0) << k.output();
    auto const get = [port](std::string const& path) { return test::http_get(port, path); };
    auto const listed = [&](std::string const& id) {
        return nlohmann::json::parse(get("/catalog").body)["tiles"].contains(id);
    };
    EXPECT_EQ(get("/first/1/0/0").body, tile_a(1, 0, 0)) << "now in the tile cache";

    // A new archive renamed into the directory is published.
    publish(s_dir / "b.pmtiles", watched / "second.pmtiles");
    ASSERT_TRUE(eventually([&] { return listed("second"); })) << k.output();
    EXPECT_EQ(get("/second/1/1/0").body, tile_b(1, 1, 0));

    // A replaced archive is served from its new content, cached tiles included.
    publish(s_dir / "b.pmtiles", watched / "first.pmtiles");
    EXPECT_TRUE(eventually([&] { return get("/first/1/0/0").body == tile_b(1, 0, 0); })) << k.output();
    EXPECT_EQ(get("/first/1/1/1").body, tile_b(1, 1, 1));

    // A file still being written is not read, even when another change reloads the directory;
    // once closed, it is published whole.
    auto const whole = read_file(s_dir / "a.pmtiles");
    auto* half = std::fopen((watched / "third.pmtiles").c_str(), "wb");
    ASSERT_NE(half, nullptr);
    std::fwrite(whole.data(), 1, whole.size() / 2, half);
    std::fflush(half);
    publish(s_dir / "a.pmtiles", watched / "fourth.pmtiles");
    ASSERT_TRUE(eventually([&] { return listed("fourth"); })) << k.output();
    EXPECT_FALSE(listed("third"));
    EXPECT_EQ(k.output().find("third.pmtiles"), std::string::npos) << "not even tried: " << k.output();
    std::fwrite(whole.data() + whole.size() / 2, 1, whole.size() - whole.size() / 2, half);
    std::fclose(half);
    ASSERT_TRUE(eventually([&] { return listed("third"); })) << k.output();
    EXPECT_EQ(get("/third/1/0/1").body, tile_a(1, 0, 1));

    // A deleted archive answers 404 and leaves the catalog.
    fs::remove(watched / "second.pmtiles");
    EXPECT_TRUE(eventually([&] { return get("/second/1/1/0").status == 404U; })) << k.output();
    EXPECT_FALSE(listed("second"));

    // An MBTiles file that sqlite3 writes in place is published once sqlite3 closes it.
    run_shell(
        "cd '" + s_dir.string() + "' && sqlite3 '" + (watched / "written.mbtiles").string() +
        "' \"CREATE TABLE metadata (name text, value text); INSERT INTO metadata VALUES ('format', "
        "'pbf'); CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, tile_data "
        "blob); INSERT INTO tiles VALUES (1, 0, 0, readfile('1-0-1'));\"");
    ASSERT_TRUE(eventually([&] { return listed("written"); })) << k.output();
    EXPECT_EQ(get("/written/1/0/1").body, tile_a(1, 0, 1)) << "TMS row 0 is XYZ row 1";

    // A named source's file is followed too.
    EXPECT_EQ(get("/solo/0/0/0").body, tile_a(0, 0, 0));
    EXPECT_EQ(get("/solo/1/0/0").body, tile_a(1, 0, 0));
    publish(s_dir / "b.pmtiles", named / "solo.pmtiles");
    EXPECT_TRUE(eventually([&] { return get("/solo/1/0/0").body == tile_b(1, 0, 0); })) << k.output();
    EXPECT_TRUE(listed("first"));
    EXPECT_NE(k.output().find("Archives changed (added: [second]"), std::string::npos) << k.output();
}
