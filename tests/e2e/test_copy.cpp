// kachel-cp against the real cluster: the archives it writes are read back by tools that are not
// kachel (the sqlite3 command-line tool, the PMTiles reference reader from npm), and every tile
// is compared byte for byte with what the server answers for the same z/x/y.

#include "support/archive_fixtures.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <thread>

using namespace kachel;
using test::read_file;
using test::run_shell;
using test::write_file;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

/// Tiles by z/x/y (XYZ).
using tile_map = std::map<std::tuple<unsigned, unsigned, unsigned>, std::string>;

std::string from_hex(std::string_view hex) {
    std::string out;
    out.reserve(hex.size() / 2);
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
        out += static_cast<char>(std::stoi(std::string{hex.substr(i, 2)}, nullptr, 16));
    }
    return out;
}

/// MD5 in upper-case hex, by OpenSSL: the test's own reckoning of Martin's hashes.
std::string md5_upper(std::string const& bytes) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int size = 0;
    EVP_Digest(bytes.data(), bytes.size(), digest.data(), &size, EVP_md5(), nullptr);
    std::string out;
    for (unsigned int i = 0; i < size; ++i) {
        out += fmt::format("{:02X}", digest[i]);
    }
    return out;
}

/// A tile for every z/x/y, slowly (20 ms): for the interruption tests.
constexpr char const* slow_function_sql = R"sql(
CREATE FUNCTION cp_slow(z integer, x integer, y integer) RETURNS bytea LANGUAGE plpgsql STABLE AS $$
BEGIN
  PERFORM pg_sleep(0.02);
  RETURN (SELECT ST_AsMVT(t, 'slow') FROM (SELECT z AS zoom,
      ST_AsMVTGeom(ST_Centroid(ST_TileEnvelope(z, x, y)), ST_TileEnvelope(z, x, y)) AS geom) AS t);
END $$;
)sql";

class copy : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        s_suite.prepare("copy");
        s_suite.db->query(std::string{slow_function_sql} + R"sql(
CREATE FUNCTION cp_stuck(z integer, x integer, y integer) RETURNS bytea LANGUAGE plpgsql STABLE AS $$
BEGIN
  PERFORM pg_sleep(60);
  RETURN NULL;
END $$;
)sql");
        s_suite.start({});
    }
    static void TearDownTestSuite() { s_suite.finish(); }
    void SetUp() override {
        ASSERT_NE(s_suite.port, 0) << "kachel did not start:\n" << s_suite.kachel->output();
    }

    /// Starts kachel-cp on the suite's database with `args`.
    static std::unique_ptr<test::child_process> start_cp(std::vector<std::string> const& args) {
        std::vector<std::string> all{KACHEL_CP_BINARY, test::tls_url(s_suite.db->name())};
        all.insert(all.end(), args.begin(), args.end());
        return std::make_unique<test::child_process>(
            all, std::map<std::string, std::optional<std::string>>{
                     {"PGSSLROOTCERT", test::cluster_env("KACHEL_PG_CA")}, {"DATABASE_URL", std::nullopt}});
    }

    /// Runs kachel-cp to its end; returns its exit code and output.
    static std::pair<int, std::string> cp(std::vector<std::string> const& args) {
        auto proc = start_cp(args);
        auto const code = proc->wait_exit(120s);
        return {code.value_or(-1), proc->output()};
    }

    /// Every tile of an MBTiles file, read by the sqlite3 tool (TMS rows turned into XYZ).
    static tile_map mbtiles_tiles(fs::path const& file) {
        auto const out = s_suite.dir / "rows.txt";
        run_shell("sqlite3 -separator ' ' '" + file.string() +
                  "' 'SELECT zoom_level, tile_column, tile_row, hex(tile_data) FROM tiles' > '" +
                  out.string() + "'");
        tile_map tiles;
        std::istringstream rows{read_file(out)};
        unsigned z = 0;
        unsigned x = 0;
        unsigned row = 0;
        std::string hex;
        while (rows >> z >> x >> row >> hex) {
            tiles[{z, x, (1U << z) - 1 - row}] = from_hex(hex);
        }
        return tiles;
    }

    /// One value of an SQL query on an MBTiles file, by the sqlite3 tool.
    static std::string sqlite_value(fs::path const& file, std::string const& sql) {
        auto const out = s_suite.dir / "value.txt";
        run_shell("sqlite3 '" + file.string() + "' \"" + sql + "\" > '" + out.string() + "'");
        auto text = read_file(out);
        while (!text.empty() && text.back() == '\n') {
            text.pop_back();
        }
        return text;
    }

    /// A PMTiles archive as the reference reader sees it.
    static nlohmann::json read_pmtiles(fs::path const& file) {
        auto const out = s_suite.dir / "pmtiles.json";
        run_shell(std::string{"cd '"} + KACHEL_ARCHIVE_TOOLS + "' && '" + KACHEL_NODE +
                  "' read_pmtiles.mjs '" + file.string() + "' > '" + out.string() + "'");
        return nlohmann::json::parse(read_file(out));
    }

    /// `tiles` hold exactly the server's non-empty answers for `path` at zooms 0..max_zoom, byte
    /// for byte as it sends them to a client accepting `accept`.
    static void expect_server_tiles(tile_map const& tiles, std::string const& path, unsigned max_zoom,
                                    std::string const& accept = "gzip") {
        std::size_t non_empty = 0;
        for (unsigned z = 0; z <= max_zoom; ++z) {
            for (unsigned x = 0; x < (1U << z); ++x) {
                for (unsigned y = 0; y < (1U << z); ++y) {
                    auto const r = s_suite.get(fmt::format("/{}/{}/{}/{}", path, z, x, y), accept);
                    auto const it = tiles.find({z, x, y});
                    if (r.status == 204) {
                        EXPECT_EQ(it, tiles.end())
                            << z << "/" << x << "/" << y << " is empty, yet in the file";
                        continue;
                    }
                    ASSERT_EQ(r.status, 200U) << z << "/" << x << "/" << y;
                    ++non_empty;
                    ASSERT_NE(it, tiles.end()) << z << "/" << x << "/" << y << " is missing";
                    EXPECT_EQ(it->second, r.body) << z << "/" << x << "/" << y;
                }
            }
        }
        EXPECT_EQ(tiles.size(), non_empty);
        EXPECT_GT(non_empty, 10U);
    }

    static inline test::archive_suite s_suite;
};

} // namespace

TEST_F(copy, mbtiles_in_each_schema_hold_the_servers_tiles_and_martins_hashes) {
    for (std::string const type : {"flat", "flat-with-hash", "normalized"}) {
        SCOPED_TRACE(type);
        auto const file = s_suite.dir / (type + ".mbtiles");
        auto const [code, output] =
            cp({"--source", "points", "--max-zoom", "3", "--mbtiles-type", type, "-o", file.string()});
        ASSERT_EQ(code, 0) << output;
        auto const tiles = mbtiles_tiles(file);
        expect_server_tiles(tiles, "points", 3);
        EXPECT_NE(output.find(fmt::format("{} tiles written", tiles.size())), std::string::npos) << output;
        if (type == "normalized") {
            EXPECT_NE(output.find("duplicates point at an image stored once"), std::string::npos) << output;
        }

        // agg_tiles_hash as Martin defines it, reckoned here from what sqlite3 reads.
        std::string all;
        std::map<std::tuple<unsigned, unsigned, unsigned>, std::string> by_tms;
        for (auto const& [zxy, bytes] : tiles) {
            auto const [z, x, y] = zxy;
            by_tms[{z, x, (1U << z) - 1 - y}] = bytes;
        }
        for (auto const& [zxr, bytes] : by_tms) {
            auto const [z, x, row] = zxr;
            all += fmt::format("{}{}{}", z, x, row) + bytes;
        }
        EXPECT_EQ(sqlite_value(file, "SELECT value FROM metadata WHERE name = 'agg_tiles_hash'"),
                  md5_upper(all));
        if (type != "flat") {
            // Each tile's hash is the MD5 of its bytes.
            auto const hashes =
                sqlite_value(file, "SELECT hex(tile_data) || ' ' || tile_hash FROM tiles_with_hash");
            std::istringstream lines{hashes};
            std::string hex;
            std::string hash;
            std::size_t n = 0;
            while (lines >> hex >> hash) {
                EXPECT_EQ(hash, md5_upper(from_hex(hex)));
                ++n;
            }
            EXPECT_EQ(n, tiles.size());
        }
        EXPECT_EQ(sqlite_value(file, "PRAGMA integrity_check"), "ok");
        EXPECT_EQ(sqlite_value(file, "SELECT value FROM metadata WHERE name = 'format'"), "pbf");
        EXPECT_EQ(sqlite_value(file, "SELECT value FROM metadata WHERE name = 'compression'"), "gzip");
        EXPECT_EQ(sqlite_value(file, "SELECT value FROM metadata WHERE name = 'minzoom'"), "0");
        EXPECT_EQ(sqlite_value(file, "SELECT value FROM metadata WHERE name = 'maxzoom'"), "3");
        EXPECT_EQ(sqlite_value(file, "SELECT value FROM metadata WHERE name = 'bounds'"), "-170,-80,170,80");
        auto const json =
            nlohmann::json::parse(sqlite_value(file, "SELECT value FROM metadata WHERE name = 'json'"));
        EXPECT_EQ(json.at("vector_layers").at(0).at("id"), "points");
        EXPECT_TRUE(sqlite_value(file, "SELECT value FROM metadata WHERE name = 'generator'")
                        .starts_with("kachel-cp"));
    }
    // The schemas are Martin's: normalized has map, images and the two views.
    EXPECT_EQ(
        sqlite_value(s_suite.dir / "normalized.mbtiles",
                     "SELECT group_concat(name, ',') FROM (SELECT name FROM sqlite_master WHERE type IN "
                     "('table', 'view') ORDER BY name)"),
        "images,map,metadata,tiles,tiles_with_hash");
}

TEST_F(copy, pmtiles_read_by_the_reference_reader_hold_the_servers_composite_tiles) {
    auto const file = s_suite.dir / "composite.pmtiles";
    auto const [code, output] = cp({"--source", "points,lines", "--max-zoom", "4", "-o", file.string(),
                                    "--set-meta", "attribution=test data"});
    ASSERT_EQ(code, 0) << output;
    auto const archive = read_pmtiles(file);
    tile_map stored;
    tile_map plain;
    for (auto const& t : archive.at("tiles")) {
        std::tuple const zxy{t.at("z").get<unsigned>(), t.at("x").get<unsigned>(), t.at("y").get<unsigned>()};
        stored[zxy] = from_hex(t.at("stored").get<std::string>());
        plain[zxy] = from_hex(t.at("plain").get<std::string>());
    }
    expect_server_tiles(stored, "points,lines", 4, "gzip");
    expect_server_tiles(plain, "points,lines", 4, "identity");
    auto const& h = archive.at("header");
    EXPECT_TRUE(h.at("clustered").get<bool>());
    EXPECT_EQ(h.at("tileType"), 1);
    EXPECT_EQ(h.at("tileCompression"), 2);
    EXPECT_EQ(h.at("internalCompression"), 2);
    EXPECT_EQ(h.at("minZoom"), 0);
    EXPECT_EQ(h.at("maxZoom"), 4);
    EXPECT_EQ(h.at("numAddressedTiles").get<std::size_t>(), stored.size());
    // Identical tiles are stored once; runs of them take one entry.
    EXPECT_LT(h.at("numTileContents").get<std::size_t>(), stored.size());
    EXPECT_LE(h.at("numTileEntries").get<std::size_t>(), stored.size());
    EXPECT_LT(h.at("rootDirectoryOffset").get<std::size_t>() + h.at("rootDirectoryLength").get<std::size_t>(),
              16384U);
    auto const& meta = archive.at("metadata");
    ASSERT_EQ(meta.at("vector_layers").size(), 2U);
    EXPECT_EQ(meta.at("vector_layers").at(0).at("id"), "points");
    EXPECT_EQ(meta.at("vector_layers").at(1).at("id"), "lines");
    EXPECT_EQ(meta.at("attribution"), "test data");
    EXPECT_NE(output.find("duplicates"), std::string::npos) << output;
    // No temporary file is left beside it.
    for (auto const& entry : fs::directory_iterator{s_suite.dir}) {
        EXPECT_EQ(entry.path().string().find(".tmp"), std::string::npos) << entry.path();
    }
}

TEST_F(copy, a_large_pmtiles_gets_leaf_directories_that_the_reference_reader_follows) {
    // 21,845 tiles (zooms 0 to 7) of random sizes, in an MBTiles file the sqlite3 tool writes:
    // too many entries for a root directory in 16 KiB.
    auto const source = s_suite.dir / "many.mbtiles";
    write_file(s_suite.dir / "many.sql", R"sql(
CREATE TABLE metadata (name text, value text);
INSERT INTO metadata VALUES ('name', 'many'), ('format', 'pbf'), ('minzoom', '0'), ('maxzoom', '7');
CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row integer, tile_data blob);
WITH RECURSIVE z(z) AS (SELECT 0 UNION ALL SELECT z + 1 FROM z WHERE z < 7),
  n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 16383)
INSERT INTO tiles SELECT z, i % (1 << z), i / (1 << z), x'1a' || randomblob(20 + abs(random() % 300))
  FROM z, n WHERE i < (1 << (2 * z));
CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);
)sql");
    run_shell("sqlite3 '" + source.string() + "' < '" + (s_suite.dir / "many.sql").string() + "'");
    auto const file = s_suite.dir / "many.pmtiles";
    test::child_process proc{
        {KACHEL_CP_BINARY, source.string(), "--encoding", "identity", "-o", file.string()},
        {{"DATABASE_URL", std::nullopt}}};
    ASSERT_EQ(proc.wait_exit(120s), 0) << proc.output();
    auto const archive = read_pmtiles(file);
    auto const& h = archive.at("header");
    EXPECT_GT(h.at("leafDirectoryLength").get<std::size_t>(), 0U);
    EXPECT_LE(h.at("rootDirectoryOffset").get<std::size_t>() + h.at("rootDirectoryLength").get<std::size_t>(),
              16384U);
    EXPECT_EQ(h.at("tileCompression"), 1);
    auto const expected = mbtiles_tiles(source);
    ASSERT_EQ(archive.at("tiles").size(), expected.size());
    EXPECT_EQ(expected.size(), 21845U);
    for (auto const& t : archive.at("tiles")) {
        std::tuple const zxy{t.at("z").get<unsigned>(), t.at("x").get<unsigned>(), t.at("y").get<unsigned>()};
        ASSERT_EQ(from_hex(t.at("plain").get<std::string>()), expected.at(zxy));
    }
}

TEST_F(copy, overlapping_boxes_are_copied_once_and_the_query_reaches_functions) {
    auto const file = s_suite.dir / "boxes.mbtiles";
    // Two boxes that share a corner area; at zoom 3 the first covers columns 4-5 and rows 2-3,
    // the second columns 5-6 and rows 3-4: 4 + 4 - 1 tiles.
    auto const [code, output] =
        cp({"--source", "fn_query_echo", "-z", "3", "--bbox", "1,1,89,60", "--bbox", "46,-40,134,40",
            "--url-query", "token=abc&n=1", "--mbtiles-type", "flat", "-o", file.string()});
    ASSERT_EQ(code, 0) << output;
    auto const tiles = mbtiles_tiles(file);
    std::set<std::pair<unsigned, unsigned>> got;
    for (auto const& [zxy, bytes] : tiles) {
        got.emplace(std::get<1>(zxy), std::get<2>(zxy));
        // The function saw the query as the server passes it.
        auto const r = s_suite.get(
            fmt::format("/fn_query_echo/3/{}/{}?token=abc&n=1", std::get<1>(zxy), std::get<2>(zxy)), "gzip");
        EXPECT_EQ(bytes, r.body);
    }
    std::set<std::pair<unsigned, unsigned>> const expected{{4, 2}, {5, 2}, {4, 3}, {5, 3},
                                                           {6, 3}, {5, 4}, {6, 4}};
    EXPECT_EQ(got, expected);
    EXPECT_NE(output.find("7 tiles written"), std::string::npos) << output;
}

TEST_F(copy, bad_input_stops_with_the_cause_before_any_work) {
    auto const out = (s_suite.dir / "bad.mbtiles").string();
    struct bad_case {
        std::vector<std::string> args;
        std::string says;
    };
    std::vector<bad_case> const cases{
        {{"--source", "nosuch", "-z", "1", "-o", out}, "there is no source nosuch"},
        {{"--source", "points", "-z", "1", "--bbox", "10,10,5,20", "-o", out}, "is empty"},
        {{"--source", "points", "-z", "1", "--bbox", "10,abc,5,20", "-o", out}, "is not a box"},
        {{"--source", "points", "--min-zoom", "5", "--max-zoom", "2", "-o", out},
         "--min-zoom 5 is above --max-zoom 2"},
        {{"--source", "points", "-z", "1", "-o", "/nonexistent-dir/x.mbtiles"}, "does not exist"},
        {{"--source", "points", "-z", "1", "-o", (s_suite.dir / "x.tiles").string()}, "--output-format"},
        {{"-z", "1", "-o", out}, "say which to copy with --source"},
        {{"--source", "points", "-o", out}, "--max-zoom"},
    };
    for (auto const& c : cases) {
        SCOPED_TRACE(c.says);
        auto const [code, output] = cp(c.args);
        EXPECT_EQ(code, 1) << output;
        EXPECT_NE(output.find(c.says), std::string::npos) << output;
        EXPECT_FALSE(fs::exists(out)) << "nothing written";
    }
    // An existing output needs --on-duplicate; a PMTiles one is only ever replaced whole.
    auto const existing = s_suite.dir / "existing.mbtiles";
    ASSERT_EQ(cp({"--source", "points", "-z", "0", "-o", existing.string()}).first, 0);
    auto const before = read_file(existing);
    auto const [code, output] = cp({"--source", "points", "-z", "1", "-o", existing.string()});
    EXPECT_EQ(code, 1);
    EXPECT_NE(output.find("--on-duplicate"), std::string::npos) << output;
    EXPECT_EQ(read_file(existing), before) << "the file is untouched";
    auto const pm = s_suite.dir / "existing.pmtiles";
    write_file(pm, "not empty");
    auto const [pm_code, pm_output] =
        cp({"--source", "points", "-z", "0", "--on-duplicate", "ignore", "-o", pm.string()});
    EXPECT_EQ(pm_code, 1);
    EXPECT_NE(pm_output.find("--on-duplicate override"), std::string::npos) << pm_output;
    EXPECT_EQ(read_file(pm), "not empty");
    // abort stops at the first tile already there.
    auto const [abort_code, abort_output] =
        cp({"--source", "points", "-z", "0", "--on-duplicate", "abort", "-o", existing.string()});
    EXPECT_EQ(abort_code, 1);
    EXPECT_NE(abort_output.find("is already in"), std::string::npos) << abort_output;
}

TEST_F(copy, ctrl_c_cancels_the_statements_and_a_second_run_finishes_the_file) {
    // Stuck statements: Ctrl+C ends them within a second.
    {
        auto const file = s_suite.dir / "stuck.mbtiles";
        auto proc = start_cp({"--source", "cp_stuck", "-z", "2", "-o", file.string()});
        ASSERT_TRUE(proc->wait_for_output("Copying", 30s)) << proc->output();
        std::this_thread::sleep_for(500ms);
        auto const signalled = std::chrono::steady_clock::now();
        proc->signal(SIGINT);
        auto const code = proc->wait_exit(10s);
        auto const took = std::chrono::steady_clock::now() - signalled;
        EXPECT_EQ(code, 130) << proc->output();
        EXPECT_LT(took, 2s) << proc->output();
        auto const running = s_suite.db->query("SELECT count(*) FROM pg_stat_activity WHERE query LIKE "
                                               "'%cp_stuck%' AND state = 'active' AND pid <> "
                                               "pg_backend_pid()");
        EXPECT_EQ(running.at(0), "0") << "statements left running";
    }
    // A slow copy interrupted halfway keeps a consistent file; --on-duplicate ignore completes it
    // without making the tiles it has again, and the result equals an uninterrupted copy.
    auto const file = s_suite.dir / "resumed.mbtiles";
    auto proc =
        start_cp({"--source", "cp_slow", "--max-zoom", "4", "--concurrency", "4", "-o", file.string()});
    ASSERT_TRUE(proc->wait_for_output("Copying 341 tiles", 30s)) << proc->output();
    std::this_thread::sleep_for(1s);
    proc->signal(SIGINT);
    ASSERT_EQ(proc->wait_exit(10s), 130) << proc->output();
    EXPECT_NE(proc->output().find("--on-duplicate ignore"), std::string::npos) << proc->output();
    EXPECT_EQ(sqlite_value(file, "PRAGMA integrity_check"), "ok");
    auto const partial = std::stoul(sqlite_value(file, "SELECT count(*) FROM tiles"));
    EXPECT_GT(partial, 0U);
    EXPECT_LT(partial, 341U);
    EXPECT_EQ(sqlite_value(file, "SELECT count(*) FROM metadata WHERE name = 'agg_tiles_hash'"), "0")
        << "an unfinished file has no agg_tiles_hash";
    auto const [code, output] =
        cp({"--source", "cp_slow", "--max-zoom", "4", "--on-duplicate", "ignore", "-o", file.string()});
    ASSERT_EQ(code, 0) << output;
    EXPECT_NE(output.find(fmt::format("{} tiles written", 341 - partial)), std::string::npos) << output;
    EXPECT_NE(output.find(fmt::format("{} already in the file", partial)), std::string::npos) << output;
    auto const whole = s_suite.dir / "whole.mbtiles";
    ASSERT_EQ(cp({"--source", "cp_slow", "--max-zoom", "4", "-o", whole.string()}).first, 0);
    EXPECT_EQ(mbtiles_tiles(file), mbtiles_tiles(whole));
    auto const hash = sqlite_value(whole, "SELECT value FROM metadata WHERE name = 'agg_tiles_hash'");
    EXPECT_EQ(hash.size(), 32U);
    EXPECT_EQ(sqlite_value(file, "SELECT value FROM metadata WHERE name = 'agg_tiles_hash'"), hash);
}

TEST_F(copy, a_database_that_goes_away_is_waited_for_then_the_copy_stops_resumable) {
    // A database of its own, so that the suite's server is not disturbed.
    test::tempdb db;
    db.query(slow_function_sql);
    test::admin_connection admin{"postgres"};
    auto const go_away = [&] {
        admin.query("ALTER DATABASE \"" + db.name() + "\" WITH ALLOW_CONNECTIONS false");
        admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + db.name() +
                    "'");
    };
    auto const come_back = [&] {
        admin.query("ALTER DATABASE \"" + db.name() + "\" WITH ALLOW_CONNECTIONS true");
    };
    auto const start = [&](std::vector<std::string> args) {
        args.insert(args.begin(), {KACHEL_CP_BINARY, test::tls_url(db.name()), "--source", "cp_slow",
                                   "--max-zoom", "4", "--concurrency", "4"});
        return std::make_unique<test::child_process>(
            args, std::map<std::string, std::optional<std::string>>{
                      {"PGSSLROOTCERT", test::cluster_env("KACHEL_PG_CA")}, {"DATABASE_URL", std::nullopt}});
    };

    // Away for 2 s: the copy waits, then finishes whole.
    auto const file = s_suite.dir / "away.mbtiles";
    auto proc = start({"-o", file.string()});
    ASSERT_TRUE(proc->wait_for_output("Copying 341 tiles", 30s)) << proc->output();
    std::this_thread::sleep_for(500ms);
    go_away();
    std::this_thread::sleep_for(2s);
    come_back();
    ASSERT_EQ(proc->wait_exit(60s), 0) << proc->output();
    EXPECT_NE(proc->output().find("trying again"), std::string::npos) << proc->output();
    EXPECT_EQ(sqlite_value(file, "SELECT count(*) FROM tiles"), "341");
    EXPECT_EQ(sqlite_value(file, "SELECT count(*) FROM metadata WHERE name = 'agg_tiles_hash'"), "1");

    // Away for longer than --retry-timeout: the copy stops with the cause, and the file can be
    // completed once the database is back.
    auto const second = s_suite.dir / "away-for-good.mbtiles";
    proc = start({"--retry-timeout", "2", "-o", second.string()});
    ASSERT_TRUE(proc->wait_for_output("Copying 341 tiles", 30s)) << proc->output();
    std::this_thread::sleep_for(500ms);
    go_away();
    auto const code = proc->wait_exit(60s);
    come_back();
    EXPECT_EQ(code, 1) << proc->output();
    EXPECT_NE(proc->output().find("failed for 2 s"), std::string::npos) << proc->output();
    EXPECT_NE(proc->output().find("--on-duplicate ignore"), std::string::npos) << proc->output();
    EXPECT_EQ(sqlite_value(second, "PRAGMA integrity_check"), "ok");
    proc = start({"--on-duplicate", "ignore", "-o", second.string()});
    ASSERT_EQ(proc->wait_exit(60s), 0) << proc->output();
    EXPECT_EQ(mbtiles_tiles(second), mbtiles_tiles(file));
}

TEST_F(copy, inspect_prints_the_summary_and_finds_what_is_wrong) {
    auto const inspect = [](fs::path const& file) {
        test::child_process proc{{KACHEL_CP_BINARY, "--inspect", file.string()}, {}};
        auto const code = proc.wait_exit(60s);
        return std::pair{code.value_or(-1), proc.output()};
    };
    auto const mb = s_suite.dir / "inspected.mbtiles";
    auto const pm = s_suite.dir / "inspected.pmtiles";
    for (auto const& file : {mb, pm}) {
        ASSERT_EQ(cp({"--source", "points", "--max-zoom", "2", "--mbtiles-type", "flat-with-hash", "-o",
                      file.string()})
                      .first,
                  0);
        auto const [code, output] = inspect(file);
        EXPECT_EQ(code, 0) << output;
        EXPECT_NE(output.find("\nvalid\n"), std::string::npos) << output;
        // Tiles per zoom: zoom 2 has its 16 tiles, area and sizes.
        EXPECT_NE(output.find("   2         16"), std::string::npos) << output;
        EXPECT_NE(output.find("vector_layers"), std::string::npos) << output;
    }
    EXPECT_NE(inspect(mb).second.find("per-tile hashes: 21 checked"), std::string::npos)
        << inspect(mb).second;
    EXPECT_NE(inspect(mb).second.find("matches the tiles"), std::string::npos);
    EXPECT_NE(inspect(pm).second.find("tiles addressed 21, entries"), std::string::npos)
        << inspect(pm).second;

    // A tile changed behind the hashes' back.
    run_shell(
        "sqlite3 '" + mb.string() +
        "' \"UPDATE tiles_with_hash SET tile_data = x'1a00' WHERE zoom_level = 1 AND tile_column = 0 AND "
        "tile_row = 0\"");
    auto const [code, output] = inspect(mb);
    EXPECT_EQ(code, 1) << output;
    EXPECT_NE(output.find("NOT VALID: 2 problem(s)"), std::string::npos) << output;
    EXPECT_NE(output.find("tile (z/column/TMS row) 1/0/0: its hash is"), std::string::npos) << output;
    EXPECT_NE(output.find("agg_tiles_hash is"), std::string::npos) << output;

    // A PMTiles archive cut short, and one with a directory that does not inflate.
    auto bytes = read_file(pm);
    write_file(s_suite.dir / "cut.pmtiles", bytes.substr(0, bytes.size() - 10));
    auto const cut = inspect(s_suite.dir / "cut.pmtiles");
    EXPECT_EQ(cut.first, 1);
    EXPECT_NE(cut.second.find("the tile data"), std::string::npos) << cut.second;
    EXPECT_NE(cut.second.find("reaches past the end of the file"), std::string::npos) << cut.second;
    bytes[127 + 12] = static_cast<char>(bytes[127 + 12] ^ 0x55);
    write_file(s_suite.dir / "damaged.pmtiles", bytes);
    auto const damaged = inspect(s_suite.dir / "damaged.pmtiles");
    EXPECT_EQ(damaged.first, 1) << damaged.second;
    EXPECT_NE(damaged.second.find("root directory: cannot be read"), std::string::npos) << damaged.second;

    // Archives written by other tools: the reference writer (with leaf directories) and sqlite3.
    auto const tile = test::postgis_tile(*s_suite.db, "Lagos", 3.4, 6.5, 0, 0, 0);
    write_file(s_suite.dir / "t0", tile);
    auto const reference = s_suite.dir / "reference.pmtiles";
    test::write_pmtiles(reference,
                        {{0, 0, 0, s_suite.dir / "t0"},
                         {1, 0, 0, s_suite.dir / "t0"},
                         {1, 1, 1, s_suite.dir / "t0"},
                         {2, 2, 1, s_suite.dir / "t0"}},
                        1, 2, 2, "reference");
    auto const ref = inspect(reference);
    EXPECT_EQ(ref.first, 0) << ref.second;
    EXPECT_NE(ref.second.find("tiles addressed 4"), std::string::npos) << ref.second;
    write_file(s_suite.dir / "plain.sql",
               "CREATE TABLE tiles (zoom_level integer, tile_column integer, tile_row "
               "integer, tile_data blob); INSERT INTO tiles VALUES (0, 0, 0, x'1a02');");
    run_shell("sqlite3 '" + (s_suite.dir / "plain.mbtiles").string() + "' < '" +
              (s_suite.dir / "plain.sql").string() + "'");
    auto const plain = inspect(s_suite.dir / "plain.mbtiles");
    EXPECT_EQ(plain.first, 1) << plain.second;
    EXPECT_NE(plain.second.find("it has no metadata table"), std::string::npos) << plain.second;
    EXPECT_NE(plain.second.find("agg_tiles_hash: none stored"), std::string::npos) << plain.second;
    auto const not_archive = inspect(s_suite.dir / "plain.sql");
    EXPECT_EQ(not_archive.first, 1);
    EXPECT_NE(not_archive.second.find("neither an MBTiles"), std::string::npos) << not_archive.second;
}

TEST_F(copy, progress_goes_to_a_log_as_plain_lines_and_an_interrupted_pmtiles_leaves_no_file) {
    auto const dir = s_suite.dir / "interrupted";
    fs::create_directories(dir);
    auto const file = dir / "slow.pmtiles";
    // One tile at a time of 20 ms each: 341 tiles take about 7 s, past the first progress line.
    auto proc =
        start_cp({"--source", "cp_slow", "--max-zoom", "4", "--concurrency", "1", "-o", file.string()});
    ASSERT_TRUE(proc->wait_for_output("tiles/s, ", 30s)) << proc->output();
    auto const output = proc->output();
    auto const line_start = output.rfind('\n', output.find("tiles/s, ")) + 1;
    auto const line = output.substr(line_start, output.find('\n', line_start) - line_start);
    // "<done>/341 tiles (<share>%), <rate> tiles/s, <bytes> written, ETA <time>, zoom <z>"
    EXPECT_NE(line.find("/341 tiles ("), std::string::npos) << line;
    EXPECT_NE(line.find(" written, ETA "), std::string::npos) << line;
    EXPECT_NE(line.find(", zoom "), std::string::npos) << line;
    EXPECT_EQ(line.find('\r'), std::string::npos) << "no terminal bar in a log";
    proc->signal(SIGTERM);
    EXPECT_EQ(proc->wait_exit(10s), 130) << proc->output();
    EXPECT_NE(proc->output().find("no PMTiles archive was written"), std::string::npos) << proc->output();
    EXPECT_TRUE(fs::is_empty(dir)) << "neither the archive nor its temporary files are left";
}
