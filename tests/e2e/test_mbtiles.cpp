// MBTiles archives served beside PostGIS. The archives are written by the sqlite3 command-line
// tool in each of the schemas Martin knows, with tiles PostGIS made (ST_AsMVT) and gzip
// compressed: nothing of kachel writes them.

#include "support/archive_fixtures.hpp"
#include "tiles/content_encoding.hpp"
#include "tiles/etag.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>

using namespace kachel;
using test::read_file;
using test::run_shell;
using test::write_file;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

/// The schemas, each as the SQL that makes it from tiles z0.gz (0/0/0) and z1.gz (1/1/1 in XYZ,
/// TMS row 0). The metadata is the same in each.
constexpr char const* metadata_sql = R"sql(
CREATE TABLE metadata (name text, value text);
INSERT INTO metadata VALUES ('name', 'Cities'), ('format', 'pbf'), ('bounds', '-10,-20,30,40'),
  ('center', '5,6,1'), ('minzoom', '0'), ('maxzoom', '3'), ('scheme', 'tms'),
  ('generator', 'sqlite3 by hand'), ('attribution', 'test data'),
  ('json', '{"vector_layers": [{"id": "cities", "fields": {"name": "String"}}]}');
)sql";

struct schema_case {
    char const* name;
    char const* sql;
};

constexpr std::array schemas{
    schema_case{"flat", R"sql(
CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, tile_data blob);
CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);
INSERT INTO tiles VALUES (0, 0, 0, readfile('z0.gz')), (1, 1, 0, readfile('z1.gz'));
)sql"},
    schema_case{"hashed", R"sql(
CREATE TABLE tiles_with_hash (zoom_level integer NOT NULL, tile_column integer NOT NULL,
  tile_row integer NOT NULL, tile_data blob, tile_hash text,
  PRIMARY KEY (zoom_level, tile_column, tile_row));
INSERT INTO tiles_with_hash VALUES (0, 0, 0, readfile('z0.gz'), 'a'), (1, 1, 0, readfile('z1.gz'), 'b');
CREATE VIEW tiles AS SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles_with_hash;
)sql"},
    schema_case{"normalized", R"sql(
CREATE TABLE map (zoom_level integer, tile_column integer, tile_row integer, tile_id text);
CREATE UNIQUE INDEX map_index ON map (zoom_level, tile_column, tile_row);
CREATE TABLE images (tile_data blob, tile_id text PRIMARY KEY);
INSERT INTO images VALUES (readfile('z0.gz'), 'h0'), (readfile('z1.gz'), 'h1');
INSERT INTO map VALUES (0, 0, 0, 'h0'), (1, 1, 0, 'h1');
CREATE VIEW tiles AS SELECT map.zoom_level, map.tile_column, map.tile_row, images.tile_data
  FROM map JOIN images ON images.tile_id = map.tile_id;
)sql"},
    schema_case{"normalized_noview", R"sql(
CREATE TABLE map (zoom_level integer, tile_column integer, tile_row integer, tile_id text);
CREATE UNIQUE INDEX map_index ON map (zoom_level, tile_column, tile_row);
CREATE TABLE images (tile_data blob, tile_id text PRIMARY KEY);
INSERT INTO images VALUES (readfile('z0.gz'), 'h0'), (readfile('z1.gz'), 'h1');
INSERT INTO map VALUES (0, 0, 0, 'h0'), (1, 1, 0, 'h1');
)sql"},
    schema_case{"shallow", R"sql(
CREATE TABLE tiles_shallow (zoom_level integer, tile_column integer, tile_row integer, tile_data_id integer,
  PRIMARY KEY (zoom_level, tile_column, tile_row));
CREATE TABLE tiles_data (tile_data_id integer PRIMARY KEY, tile_data blob);
INSERT INTO tiles_data VALUES (1, readfile('z0.gz')), (2, readfile('z1.gz'));
INSERT INTO tiles_shallow VALUES (0, 0, 0, 1), (1, 1, 0, 2);
)sql"},
};

class mbtiles : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        s_suite.prepare("mbtiles");
        s_dir = s_suite.dir;
        // Two tiles made by PostGIS, one city each.
        s_z0 = test::postgis_tile(*s_suite.db, "Lagos", 3.4, 6.5, 0, 0, 0);
        s_z1 = test::postgis_tile(*s_suite.db, "Perth", 115.9, -31.9, 1, 1, 1);
        write_file(s_dir / "z0", s_z0);
        write_file(s_dir / "z1", s_z1);
        auto const dir = s_dir.string();
        run_shell("cd '" + dir + "' && gzip -n -c z0 > z0.gz && gzip -n -c z1 > z1.gz");
        s_z0_gz = read_file(s_dir / "z0.gz");
        for (auto const& schema : schemas) {
            write_file(s_dir / "make.sql", std::string{metadata_sql} + schema.sql);
            run_shell("cd '" + dir + "' && sqlite3 archives/" + schema.name + ".mbtiles < make.sql");
        }
        // A PostGIS table and a file share the name points: the file becomes points.1.
        run_shell("cd '" + dir + "' && cp archives/flat.mbtiles points.mbtiles");
        write_file(s_dir / "not-sqlite.mbtiles", "this is not a database\n");
        s_suite.start({(s_dir / "archives").string(), (s_dir / "points.mbtiles").string()});
    }
    static void TearDownTestSuite() { s_suite.finish(); }
    void SetUp() override {
        ASSERT_NE(s_suite.port, 0) << "kachel did not start:\n" << s_suite.kachel->output();
    }

    static test::http_reply get(std::string const& target, std::string const& accept_encoding = {}) {
        return s_suite.get(target, accept_encoding);
    }

    static inline test::archive_suite s_suite;
    static inline fs::path s_dir;
    static inline std::string s_z0;
    static inline std::string s_z1;
    static inline std::string s_z0_gz;
};

} // namespace

TEST_F(mbtiles, every_schema_serves_its_tiles_with_rows_flipped) {
    for (auto const& schema : schemas) {
        std::string const id = schema.name;
        SCOPED_TRACE(id);
        auto const z0 = get("/" + id + "/0/0/0");
        EXPECT_EQ(z0.status, 200U);
        EXPECT_EQ(z0.header("content-type"), "application/x-protobuf");
        EXPECT_EQ(z0.header("content-encoding"), "");
        EXPECT_EQ(z0.body, s_z0);
        // 1/1/1 in XYZ is TMS row 0; 1/1/0 (TMS row 1) is not in the file: an empty tile.
        EXPECT_EQ(get("/" + id + "/1/1/1").body, s_z1);
        EXPECT_EQ(get("/" + id + "/1/1/0").status, 204U);
    }
}

TEST_F(mbtiles, gzip_tiles_go_out_as_stored_to_clients_that_accept_gzip) {
    auto const gz = get("/flat/0/0/0", "gzip");
    EXPECT_EQ(gz.status, 200U);
    EXPECT_EQ(gz.header("content-encoding"), "gzip");
    EXPECT_EQ(gz.body, s_z0_gz) << "the stored bytes, not a new compression";
    auto const plain = get("/flat/0/0/0", "identity");
    EXPECT_EQ(plain.body, s_z0);
    EXPECT_EQ(plain.header("etag"), gz.header("etag")) << "one ETag for the content, whatever the encoding";
    EXPECT_FALSE(gz.header("etag").empty());
    auto const br = get("/flat/0/0/0", "br");
    EXPECT_EQ(br.header("content-encoding"), "br");
}

TEST_F(mbtiles, tilejson_follows_the_metadata_as_martin_does) {
    auto const doc = nlohmann::json::parse(get("/normalized").body);
    EXPECT_EQ(doc["name"], "Cities");
    EXPECT_EQ(doc["attribution"], "test data");
    EXPECT_EQ(doc["bounds"], nlohmann::json::array({-10.0, -20.0, 30.0, 40.0}));
    EXPECT_EQ(doc["center"], nlohmann::json::array({5.0, 6.0, 1.0}));
    EXPECT_EQ(doc["vector_layers"][0]["id"], "cities");
    EXPECT_EQ(doc["format"], "pbf");
    EXPECT_EQ(doc["generator"], "sqlite3 by hand");
    EXPECT_FALSE(doc.contains("scheme"));
    // The metadata says maxzoom 3; the tiles stop at 1.
    EXPECT_EQ(doc["minzoom"], 0);
    EXPECT_EQ(doc["maxzoom"], 1);
    EXPECT_EQ(get("/normalized/2/0/0").status, 404U);
    EXPECT_EQ(doc["tiles"][0],
              "http://localhost:" + std::to_string(s_suite.port) + "/normalized/{z}/{x}/{y}");
}

TEST_F(mbtiles, archives_share_the_catalog_and_composites_with_postgis) {
    auto const catalog = nlohmann::json::parse(get("/catalog").body)["tiles"];
    for (auto const* id :
         {"flat", "hashed", "normalized", "normalized_noview", "shallow", "points", "points.1"}) {
        EXPECT_TRUE(catalog.contains(id)) << id << " in " << catalog.dump();
    }
    EXPECT_EQ(catalog["flat"]["content_type"], "application/x-protobuf");
    EXPECT_FALSE(catalog.contains("not-sqlite")) << "not in the directory kachel was given";
    // A composite of a PostGIS table and an archive: both layers.
    auto const both = get("/points,flat/0/0/0");
    EXPECT_EQ(both.status, 200U);
    EXPECT_NE(both.body.find("cities"), std::string::npos);
    EXPECT_NE(both.body.find("points"), std::string::npos);
}

TEST_F(mbtiles, the_config_file_names_sources_and_bad_files_stop_startup) {
    auto const config = s_dir / "kachel.yaml";
    write_file(config,
               "mbtiles:\n  sources:\n    base: " + (s_dir / "archives" / "shallow.mbtiles").string() +
                   "\n    other:\n      path: " + (s_dir / "points.mbtiles").string() + "\n");
    test::child_process k{{KACHEL_BINARY, "-l", "127.0.0.1:0", "-c", config.string()},
                          {{"DATABASE_URL", std::nullopt}}};
    auto const port = test::ready_port(k);
    ASSERT_NE(port, 0) << k.output();
    auto const catalog = nlohmann::json::parse(test::http_get(port, "/catalog").body)["tiles"];
    EXPECT_TRUE(catalog.contains("base"));
    EXPECT_TRUE(catalog.contains("other"));
    EXPECT_EQ(test::http_get(port, "/base/1/1/1").body, s_z1);

    test::child_process bad{{KACHEL_BINARY, "-l", "127.0.0.1:0", (s_dir / "not-sqlite.mbtiles").string()},
                            {{"DATABASE_URL", std::nullopt}}};
    EXPECT_EQ(bad.wait_exit(30s), 1);
    EXPECT_NE(bad.output().find("not-sqlite.mbtiles (source not-sqlite): file is not a database"),
              std::string::npos)
        << bad.output();
    test::child_process missing{{KACHEL_BINARY, "-l", "127.0.0.1:0", (s_dir / "nowhere.mbtiles").string()},
                                {{"DATABASE_URL", std::nullopt}}};
    EXPECT_EQ(missing.wait_exit(30s), 1);
    EXPECT_NE(missing.output().find("nowhere.mbtiles does not exist"), std::string::npos) << missing.output();
    test::child_process remote{{KACHEL_BINARY, "-l", "127.0.0.1:0", "s3://bucket/world.pmtiles"},
                               {{"DATABASE_URL", std::nullopt}}};
    EXPECT_EQ(remote.wait_exit(30s), 1);
    EXPECT_NE(
        remote.output().find("s3://bucket/world.pmtiles: archives in object stores (s3://, gs://, az://) are "
                             "not served by kachel"),
        std::string::npos)
        << remote.output();
}

TEST_F(mbtiles, a_file_nothing_can_write_is_read_immutable_with_the_same_bytes_and_etags) {
    // Opened immutable, its tiles sent from the file's pages (or read as blobs into buffers of
    // their own), ETags of plain tiles hashed once, on the event loop once their pages are in
    // memory: what goes out must be what the writable files give, encoding by encoding, in every
    // schema, and on a second round (pages in memory, the remembered ETags) too; and a tile over
    // many overflow pages as sqlite3 reads it.
    auto const dir = s_dir.string();
    write_file(s_dir / "plain.sql", std::string{metadata_sql} + R"sql(
CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, tile_data blob);
CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);
INSERT INTO tiles VALUES (0, 0, 0, readfile('z0')), (1, 1, 0, readfile('z1')),
  (2, 0, 0, CAST(x'1a' || randomblob(3000000) AS BLOB));
)sql");
    run_shell("cd '" + dir + "' && sqlite3 plain.mbtiles < plain.sql && sqlite3 plain.mbtiles " +
              "\"SELECT writefile('big', tile_data) FROM tiles WHERE zoom_level = 2\"");
    auto const big = read_file(s_dir / "big");
    ASSERT_EQ(big.size(), 3'000'001U);
    std::vector<fs::path> files{s_dir / "plain.mbtiles"};
    for (auto const& schema : schemas) {
        files.push_back(s_dir / "archives" / (std::string{schema.name} + ".mbtiles"));
    }
    test::copy_read_only(files, s_dir / "read-only");
    test::archive_server immutable{{"-C", "0", (s_dir / "read-only").string()}};
    ASSERT_NE(immutable.port, 0) << immutable.kachel->output();
    EXPECT_NE(immutable.kachel->output().find(
                  "read as immutable: nothing can write it; tiles sent from its pages) as source 'flat'"),
              std::string::npos)
        << immutable.kachel->output();
    for (auto const& file : files) { // the first round's pages from the disk, through the pool
        test::evict_from_page_cache(s_dir / "read-only" / file.filename());
    }
    for (int round = 0; round < 2; ++round) {
        for (auto const& schema : schemas) {
            for (auto const* tile : {"/0/0/0", "/1/1/1"}) {
                test::expect_same_answers(s_suite, immutable, std::string{"/"} + schema.name + tile);
            }
            EXPECT_EQ(immutable.get(std::string{"/"} + schema.name + "/1/1/0", "identity").status, 204U);
        }
        auto const plain = immutable.get("/plain/0/0/0", "identity");
        EXPECT_EQ(plain.body, s_z0);
        EXPECT_EQ(plain.header("etag"), get("/flat/0/0/0", "identity").header("etag"))
            << "the same content, the same ETag";
        EXPECT_EQ(immutable.get("/plain/1/1/1", "gzip").header("content-encoding"), "gzip");
        auto const spread = immutable.get("/plain/2/0/3", "identity");
        EXPECT_EQ(spread.status, 200U);
        EXPECT_TRUE(spread.body == big) << "a tile over overflow pages: " << spread.body.size() << " bytes";
        EXPECT_EQ(spread.header("etag"), "\"" + tiles::etag_value(big) + "\"");
        auto const spread_gz = immutable.get("/plain/2/0/3", "gzip");
        EXPECT_EQ(spread_gz.header("content-encoding"), "gzip");
        EXPECT_TRUE(tiles::decompress(spread_gz.body, tiles::encoding::gzip) == big);
    }
}

TEST_F(mbtiles, zlib_tiles_are_served_plain_and_encoded_as_the_client_accepts) {
    // Some MBTiles files store tiles zlib-compressed (written here by Node's zlib).
    auto const dir = s_dir.string();
    run_shell("cd '" + dir +
              "' && node -e \"const fs = require('fs'), zlib = require('zlib'); "
              "fs.writeFileSync('z0.zz', zlib.deflateSync(fs.readFileSync('z0')))\"");
    ASSERT_EQ(static_cast<unsigned char>(read_file(s_dir / "z0.zz").at(0)), 0x78U) << "a zlib stream";
    write_file(s_dir / "zlib.sql", std::string{metadata_sql} + R"sql(
CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, tile_data blob);
INSERT INTO tiles VALUES (0, 0, 0, readfile('z0.zz'));
)sql");
    fs::create_directories(s_dir / "zlib");
    run_shell("cd '" + dir + "' && sqlite3 zlib/zlib.mbtiles < zlib.sql");
    test::archive_server server{{"-C", "0", (s_dir / "zlib").string()}};
    ASSERT_NE(server.port, 0) << server.kachel->output();
    auto const plain = server.get("/zlib/0/0/0", "identity");
    EXPECT_EQ(plain.status, 200U);
    EXPECT_EQ(plain.header("content-encoding"), "");
    EXPECT_EQ(plain.body, s_z0);
    EXPECT_EQ(plain.header("etag"), get("/flat/0/0/0", "identity").header("etag")) << "the content's ETag";
    auto const gz = server.get("/zlib/0/0/0", "gzip");
    EXPECT_EQ(gz.header("content-encoding"), "gzip");
    EXPECT_EQ(tiles::decompress(gz.body, tiles::encoding::gzip), s_z0);
    EXPECT_EQ(nlohmann::json::parse(server.get("/zlib", "identity").body)["name"], "Cities");
}
