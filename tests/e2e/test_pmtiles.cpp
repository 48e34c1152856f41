// PMTiles archives served beside PostGIS. The archives are written by
// tests/archives/write_pmtiles.mjs, which takes tile ids from the format authors' `pmtiles`
// package and reads every tile back through its reader before kachel sees the file; the tiles
// are made by PostGIS.

#include "support/archive_fixtures.hpp"
#include "tiles/content_encoding.hpp"
#include "tiles/etag.hpp"

#include <boost/asio/write.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

using namespace kachel;
using namespace std::chrono_literals;
using test::read_file;
using test::run_shell;
using test::write_file;
namespace fs = std::filesystem;

namespace {

class pmtiles : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        s_suite.prepare("pmtiles");
        s_dir = s_suite.dir;
        // 0/0/0, 1/1/1, and all of zoom 2: its east half one repeated "sea" tile (runs of the
        // same bytes), the rest a city each.
        auto const add = [](int z, int x, int y, std::string bytes) {
            auto const name = std::to_string(z) + "-" + std::to_string(x) + "-" + std::to_string(y);
            write_file(s_dir / name, bytes);
            run_shell("cd '" + s_dir.string() + "' && gzip -n -c " + name + " > " + name + ".gz");
            s_tiles[{z, x, y}] = std::move(bytes);
        };
        add(0, 0, 0, test::postgis_tile(*s_suite.db, "Lagos", 3.4, 6.5, 0, 0, 0));
        add(1, 1, 1, test::postgis_tile(*s_suite.db, "Perth", 115.9, -31.9, 1, 1, 1));
        auto const sea = test::postgis_tile(*s_suite.db, "sea", 45, 30, 2, 2, 1);
        constexpr std::array<double, 4> latitudes{75, 30, -30, -75}; // inside rows 0 to 3 of zoom 2
        for (int x = 0; x < 4; ++x) {
            for (int y = 0; y < 4; ++y) {
                double const lon = -180.0 + 90.0 * x + 45.0;
                auto const lat = latitudes[static_cast<std::size_t>(y)];
                add(2, x, y,
                    x >= 2 ? sea
                           : test::postgis_tile(*s_suite.db, "c" + std::to_string(x * 4 + y), lon, lat, 2, x,
                                                y));
            }
        }
        for (auto const& [zxy, bytes] : s_tiles) {
            ASSERT_FALSE(bytes.empty()) << "every tile holds a feature";
        }
        write_archive("gz", 2, 2, 3);
        write_archive("plain", 1, 1, 0);
        write_archive("br", 3, 3, 4);
        write_archive("zst", 4, 4, 3);
        write_file(s_dir / "broken.pmtiles", "this is not an archive\n");
        auto const whole = read_file(s_dir / "archives" / "gz.pmtiles");
        write_file(s_dir / "truncated.pmtiles", whole.substr(0, 200));
        s_suite.start({(s_dir / "archives").string()});
    }
    static void TearDownTestSuite() { s_suite.finish(); }
    void SetUp() override {
        ASSERT_NE(s_suite.port, 0) << "kachel did not start:\n" << s_suite.kachel->output();
    }

    /// archives/NAME.pmtiles with the tiles plain, gzipped, brotli- or zstd-compressed (tile
    /// compression 1, 2, 3, 4), directories likewise (`internal`), and leaf directories of `leaf_size`
    /// entries (0: none).
    static void write_archive(std::string const& name, int tile_compression, int internal, int leaf_size) {
        std::vector<test::tile_file> tiles;
        for (auto const& [zxy, bytes] : s_tiles) {
            auto const [z, x, y] = zxy;
            auto const file = std::to_string(z) + "-" + std::to_string(x) + "-" + std::to_string(y);
            // gzip tiles from gzip(1); brotli and zstd ones compressed by the writer.
            tiles.push_back({z, x, y, s_dir / (tile_compression == 2 ? file + ".gz" : file)});
        }
        test::write_pmtiles(s_dir / "archives" / (name + ".pmtiles"), tiles, tile_compression, internal,
                            leaf_size, name);
    }

    static test::http_reply get(std::string const& target, std::string const& accept_encoding = {}) {
        return s_suite.get(target, accept_encoding);
    }

    static inline test::archive_suite s_suite;
    static inline fs::path s_dir;
    static inline std::map<std::tuple<int, int, int>, std::string> s_tiles;
};

std::string path_of(std::string const& id, std::tuple<int, int, int> const& zxy) {
    auto const [z, x, y] = zxy;
    return "/" + id + "/" + std::to_string(z) + "/" + std::to_string(x) + "/" + std::to_string(y);
}

} // namespace

TEST_F(pmtiles, every_tile_comes_back_through_root_and_leaf_directories_and_runs) {
    for (auto const* id : {"gz", "plain", "br", "zst"}) {
        for (auto const& [zxy, bytes] : s_tiles) {
            auto const path = path_of(id, zxy);
            auto const r = get(path, "identity");
            EXPECT_EQ(r.status, 200U) << path;
            EXPECT_EQ(r.header("content-type"), "application/x-protobuf") << path;
            EXPECT_EQ(r.body, bytes) << path;
        }
        // Tiles the archive does not hold: empty.
        EXPECT_EQ(get(std::string{"/"} + id + "/1/0/0").status, 204U) << id;
        EXPECT_EQ(get(std::string{"/"} + id + "/1/1/0").status, 204U) << id;
    }
}

TEST_F(pmtiles, gzip_tiles_go_out_as_stored) {
    auto const r = get("/gz/1/1/1", "gzip");
    EXPECT_EQ(r.header("content-encoding"), "gzip");
    EXPECT_EQ(r.body, read_file(s_dir / "1-1-1.gz"));
    EXPECT_EQ(r.header("etag"), get("/plain/1/1/1", "gzip").header("etag"))
        << "the same content, the same ETag";
}

TEST_F(pmtiles, tilejson_from_the_metadata_and_the_header) {
    auto const doc = nlohmann::json::parse(get("/gz").body);
    EXPECT_EQ(doc["name"], "Cities gz");
    EXPECT_EQ(doc["attribution"], "test data");
    EXPECT_EQ(doc["vector_layers"][0]["id"], "cities");
    EXPECT_EQ(doc["minzoom"], 0);
    EXPECT_EQ(doc["maxzoom"], 2);
    EXPECT_EQ(doc["bounds"], nlohmann::json::array({-170.5, -60.25, 170.5, 75.125}));
    EXPECT_EQ(doc["center"], nlohmann::json::array({3.4, 6.5, 1}));
    EXPECT_EQ(get("/gz/3/0/0").status, 404U) << "beyond the archive's zooms";
    auto const catalog = nlohmann::json::parse(get("/catalog").body)["tiles"];
    EXPECT_TRUE(catalog.contains("gz"));
    EXPECT_TRUE(catalog.contains("plain"));
    auto const both = get("/points,gz/0/0/0");
    EXPECT_EQ(both.status, 200U);
    EXPECT_NE(both.body.find("cities"), std::string::npos);
    EXPECT_NE(both.body.find("points"), std::string::npos);
}

TEST_F(pmtiles, the_config_file_names_sources_and_damaged_files_stop_startup) {
    auto const config = s_dir / "kachel.yaml";
    // Without a directory cache, the leaf directories are read for each tile.
    write_file(config, "pmtiles:\n  directory_cache: disable\n  sources:\n    base: " +
                           (s_dir / "archives" / "gz.pmtiles").string() + "\n");
    test::child_process k{{KACHEL_BINARY, "-l", "127.0.0.1:0", "-c", config.string()},
                          {{"DATABASE_URL", std::nullopt}}};
    auto const port = test::ready_port(k);
    ASSERT_NE(port, 0) << k.output();
    for (auto const& [zxy, bytes] : s_tiles) {
        EXPECT_EQ(test::http_get(port, path_of("base", zxy)).body, bytes);
    }

    for (auto const& [file, message] :
         {std::pair{"broken.pmtiles", "(source broken): it does not start with a PMTiles header"},
          std::pair{"truncated.pmtiles", "lies beyond the end of the file"}}) {
        test::child_process bad{{KACHEL_BINARY, "-l", "127.0.0.1:0", (s_dir / file).string()},
                                {{"DATABASE_URL", std::nullopt}}};
        EXPECT_EQ(bad.wait_exit(30s), 1) << file;
        EXPECT_NE(bad.output().find(message), std::string::npos) << bad.output();
    }
}

TEST_F(pmtiles, a_file_nothing_can_write_is_mapped_and_serves_the_same_bytes_and_etags) {
    // kachel maps these (its tiles lent from the mapping, ETags hashed once): what goes out must
    // be what the archives served by pread give, encoding by encoding, and on a second round
    // (the remembered ETags) too.
    auto const read_only = s_dir / "read-only";
    test::copy_read_only({s_dir / "archives" / "gz.pmtiles", s_dir / "archives" / "plain.pmtiles",
                          s_dir / "archives" / "br.pmtiles", s_dir / "archives" / "zst.pmtiles"},
                         read_only);
    test::archive_server mapped{{"-C", "0", read_only.string()}}; // no tile cache: every tile read
    ASSERT_NE(mapped.port, 0) << mapped.kachel->output();
    for (int round = 0; round < 2; ++round) {
        for (auto const* id : {"gz", "plain", "br", "zst"}) {
            for (auto const& [zxy, bytes] : s_tiles) {
                auto const path = path_of(id, zxy);
                test::expect_same_answers(s_suite, mapped, path);
                EXPECT_EQ(mapped.get(path, "identity").body, bytes) << path;
            }
            EXPECT_EQ(mapped.get(std::string{"/"} + id + "/1/0/0", "identity").status, 204U) << id;
        }
    }
    // An If-None-Match with the remembered ETag: 304.
    auto const etag = mapped.get("/plain/0/0/0", "identity").header("etag");
    auto const again = test::http_request(mapped.port, "/plain/0/0/0", boost::beast::http::verb::get,
                                          {{"If-None-Match", etag}});
    EXPECT_EQ(again.status, 304U);
}

TEST_F(pmtiles, tiles_whose_pages_left_memory_are_read_on_the_pool) {
    // Pages not in the page cache are not read on an event loop: such tiles take the blocking
    // pool's way, and come back the same.
    test::archive_server uncached{{"-C", "0", (s_dir / "archives").string()}};
    ASSERT_NE(uncached.port, 0) << uncached.kachel->output();
    for (auto const* id : {"plain", "gz"}) {
        test::evict_from_page_cache(s_dir / "archives" / (std::string{id} + ".pmtiles"));
        for (auto const& [zxy, bytes] : s_tiles) {
            EXPECT_EQ(uncached.get(path_of(id, zxy), "identity").body, bytes)
                << id << " " << path_of(id, zxy);
        }
    }
}

TEST_F(pmtiles, a_large_tile_of_a_mapped_file_is_sent_whole_from_its_pages) {
    // A tile lent from the mapping, larger than the socket takes at once: it goes out in several
    // writes from the mapped pages, and what arrives must be the tile, every time.
    std::string big(3'000'001, '\0');
    std::mt19937 random{5};
    for (auto& c : big) {
        c = static_cast<char>(random());
    }
    big[0] = '\x1a'; // an MVT field tag, not gzip's magic
    write_file(s_dir / "big-tile", big);
    test::write_pmtiles(s_dir / "big.pmtiles", {{3, 1, 2, s_dir / "big-tile"}}, 1, 1, 0, "big");
    test::copy_read_only({s_dir / "big.pmtiles"}, s_dir / "big");
    test::archive_server mapped{{"-C", "0", (s_dir / "big").string()}};
    ASSERT_NE(mapped.port, 0) << mapped.kachel->output();
    for (int round = 0; round < 3; ++round) {
        auto const plain = mapped.get("/big/3/1/2", "identity");
        EXPECT_EQ(plain.status, 200U);
        EXPECT_TRUE(plain.body == big) << "round " << round << ": " << plain.body.size() << " bytes";
        EXPECT_EQ(plain.header("etag"), "\"" + tiles::etag_value(big) + "\"");
    }
    auto const gz = mapped.get("/big/3/1/2", "gzip");
    EXPECT_EQ(gz.header("content-encoding"), "gzip");
    EXPECT_TRUE(tiles::decompress(gz.body, tiles::encoding::gzip) == big);

    namespace asio = boost::asio;
    asio::io_context ioc;
    auto const request = [&](asio::ip::tcp::socket& socket) {
        socket.open(asio::ip::tcp::v4());
        socket.set_option(asio::socket_base::receive_buffer_size{4096});
        socket.connect({asio::ip::make_address("127.0.0.1"), mapped.port});
        asio::write(socket, asio::buffer(std::string_view{
                                "GET /big/3/1/2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"}));
    };
    // A client that reads slowly: the server waits for the socket many times, and nothing is lost.
    asio::ip::tcp::socket slow{ioc};
    request(slow);
    std::string received;
    std::array<char, 16 * 1024> chunk{};
    boost::system::error_code ec;
    for (int reads = 0; !ec; ++reads) {
        received.append(chunk.data(), slow.read_some(asio::buffer(chunk), ec));
        if (reads % 16 == 0) {
            std::this_thread::sleep_for(1ms);
        }
    }
    EXPECT_EQ(ec, asio::error::eof);
    auto const header_end = received.find("\r\n\r\n");
    ASSERT_NE(header_end, std::string::npos);
    EXPECT_TRUE(received.compare(header_end + 4, std::string::npos, big) == 0)
        << "received " << received.size() - header_end - 4 << " of " << big.size() << " bytes";
    // A client that leaves mid-tile (a reset): its connection ends, the server goes on.
    for (int i = 0; i < 3; ++i) {
        asio::ip::tcp::socket gone{ioc};
        request(gone);
        (void)gone.read_some(asio::buffer(chunk), ec);
        gone.set_option(asio::socket_base::linger{true, 0});
        gone.close();
    }
    std::this_thread::sleep_for(200ms);
    EXPECT_TRUE(mapped.get("/big/3/1/2", "identity").body == big) << mapped.kachel->output();
}
