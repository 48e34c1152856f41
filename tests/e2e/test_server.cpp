// Starts the kachel binary against a fixture database over sslmode=verify-full and checks what
// a map client sees.

#include "core/tile_coord.hpp"
#include "http/compression.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/tempdb.hpp"
#include "tiles/etag.hpp"
#include "tiles/mvt_decoder.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

using namespace kachel;
using namespace std::chrono_literals;
using namespace std::string_literals;
namespace bhttp = boost::beast::http;

namespace {

constexpr char const* ready_line = "kachel is now active. See http://";

/// Starts kachel on a free loopback port; returns the port (0 if it did not become ready).
unsigned short wait_ready(test::child_process& proc) {
    if (!proc.wait_for_output(ready_line, 60s)) {
        return 0;
    }
    std::smatch m;
    auto const out = proc.output();
    if (!std::regex_search(out, m,
                           std::regex{"kachel is now active\\. See http://127\\.0\\.0\\.1:(\\d+)/catalog"})) {
        return 0;
    }
    return static_cast<unsigned short>(std::stoi(m[1]));
}

class server : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        s_db = std::make_unique<test::tempdb>();
        s_kachel = std::make_unique<test::child_process>(
            std::vector<std::string>{KACHEL_BINARY, "-l", "127.0.0.1:0", "-W", "2", "-p", "4",
                                     test::tls_url(s_db->name())},
            std::map<std::string, std::optional<std::string>>{
                {"PGSSLROOTCERT", test::cluster_env("KACHEL_PG_CA")}, {"DATABASE_URL", std::nullopt}});
        s_port = wait_ready(*s_kachel);
    }
    static void TearDownTestSuite() {
        s_kachel.reset();
        s_db.reset();
    }
    void SetUp() override { ASSERT_NE(s_port, 0) << "kachel did not start:\n" << s_kachel->output(); }

    /// gid -> name of the features PostgreSQL puts in tile z/x/y (the same clipping rule as the tile).
    static std::map<std::string, std::string> expected_features(std::string const& table,
                                                                std::string const& name_col, tile_coord c) {
        auto const env = "ST_TileEnvelope(" + std::to_string(c.z) + "," + std::to_string(c.x) + "," +
                         std::to_string(c.y) + ")";
        auto const rows = s_db->query("SELECT gid || '|' || " + name_col + " FROM " + table +
                                      " WHERE ST_AsMVTGeom(ST_Transform(geom, 3857), " + env +
                                      ", 4096, 64, true) IS NOT NULL");
        std::map<std::string, std::string> out;
        for (auto const& row : rows) {
            auto const bar = row.find('|');
            out[row.substr(0, bar)] = row.substr(bar + 1);
        }
        return out;
    }

    static std::unique_ptr<test::tempdb> s_db;
    static std::unique_ptr<test::child_process> s_kachel;
    static unsigned short s_port;
};

std::unique_ptr<test::tempdb> server::s_db;
std::unique_ptr<test::child_process> server::s_kachel;
unsigned short server::s_port = 0;

} // namespace

TEST_F(server, health) {
    auto const r = test::http_get(s_port, "/health");
    EXPECT_EQ(r.status, 200U);
    EXPECT_EQ(r.body, "OK");
    EXPECT_EQ(r.header("cache-control"), "no-cache");
}

TEST_F(server, catalog_lists_every_table_source) {
    auto const r = test::http_get(s_port, "/catalog");
    ASSERT_EQ(r.status, 200U);
    EXPECT_EQ(r.header("content-type"), "application/json");
    auto const doc = nlohmann::json::parse(r.body);
    EXPECT_EQ(doc["tiles"]["points"], (nlohmann::json{{"content_type", "application/x-protobuf"},
                                                      {"description", "public.points.geom"}}));
    for (char const* id : {"lines", "polygons", "geog_places", "points_view", "polygons_mat", "two_geoms.1",
                           "shared_name.1", "catalog.1", "MixedCase"}) {
        EXPECT_TRUE(doc["tiles"].contains(id)) << id;
    }
}

TEST_F(server, tilejson_of_a_table) {
    auto const r = test::http_get(s_port, "/points?token=abc");
    ASSERT_EQ(r.status, 200U);
    auto const doc = nlohmann::json::parse(r.body);
    EXPECT_EQ(doc["tilejson"], "3.0.0");
    EXPECT_EQ(doc["name"], "points");
    EXPECT_EQ(doc["tiles"], nlohmann::json::array({"http://localhost:" + std::to_string(s_port) +
                                                   "/points/{z}/{x}/{y}?token=abc"}));
    EXPECT_EQ(doc["vector_layers"], nlohmann::json::parse(R"([{"id": "points", "fields":
        {"flag": "bool", "gid": "int4", "kind": "int4", "name": "text", "score": "float8"}}])"));
    EXPECT_EQ(doc["bounds"], nlohmann::json::array({-170.0, -80.0, 170.0, 80.0}));
}

TEST_F(server, tiles_hold_exactly_the_features_postgis_selects) {
    struct probe {
        std::string source;
        std::string table;
        std::string name_col;
        tile_coord coord;
    };
    std::vector<probe> const probes{
        {"points", "points", "name", {0, 0, 0}},      {"points", "points", "name", {2, 1, 1}},
        {"points", "points", "name", {5, 16, 14}},    {"polygons", "polygons", "label", {0, 0, 0}},
        {"polygons", "polygons", "label", {3, 2, 3}}, {"lines", "lines", "name", {1, 0, 0}},
        {"lines", "lines", "name", {4, 7, 6}},
    };
    for (auto const& p : probes) {
        auto const target = "/" + p.source + "/" + std::to_string(p.coord.z) + "/" +
                            std::to_string(p.coord.x) + "/" + std::to_string(p.coord.y);
        auto const expected = expected_features(p.table, p.name_col, p.coord);
        ASSERT_FALSE(expected.empty()) << target << ": pick a tile with features";
        auto const r = test::http_get(s_port, target);
        ASSERT_EQ(r.status, 200U) << target << ": " << r.body;
        EXPECT_EQ(r.header("content-type"), "application/x-protobuf");
        EXPECT_EQ(r.header("content-length"), std::to_string(r.body.size()));
        auto const layers = tiles::decode_mvt(r.body);
        ASSERT_EQ(layers.size(), 1U) << target;
        EXPECT_EQ(layers[0].name, p.source);
        EXPECT_EQ(layers[0].extent, 4096U);
        std::map<std::string, std::string> got;
        for (auto const& f : layers[0].features) {
            EXPECT_GT(f.geometry_commands, 0U);
            got[f.tags.at("gid")] = f.tags.at(p.name_col);
        }
        EXPECT_EQ(got, expected) << target;
    }
}

TEST_F(server, attribute_values_keep_their_types) {
    auto const r = test::http_get(s_port, "/points/0/0/0");
    ASSERT_EQ(r.status, 200U);
    auto const layers = tiles::decode_mvt(r.body);
    ASSERT_EQ(layers.size(), 1U);
    std::size_t checked = 0;
    for (auto const& f : layers[0].features) {
        auto const gid = f.tags.at("gid");
        auto const row =
            s_db->query("SELECT concat_ws('|', name, kind, score, CASE WHEN flag THEN 'true' ELSE "
                        "'false' END) FROM points WHERE gid = " +
                        gid);
        ASSERT_EQ(row.size(), 1U);
        EXPECT_EQ(f.tags.at("name") + "|" + f.tags.at("kind") + "|" + f.tags.at("score") + "|" +
                      f.tags.at("flag"),
                  row[0]);
        ++checked;
    }
    EXPECT_EQ(checked, 162U);
}

TEST_F(server, head_has_headers_without_body) {
    auto const get = test::http_get(s_port, "/points/0/0/0");
    auto const head = test::http_request(s_port, "/points/0/0/0", bhttp::verb::head);
    EXPECT_EQ(head.status, 200U);
    EXPECT_EQ(head.header("content-length"), std::to_string(get.body.size()));
    EXPECT_TRUE(head.body.empty());
}

TEST_F(server, empty_tile_is_204_without_body) {
    auto const r = test::http_get(s_port, "/points/10/0/0");
    EXPECT_EQ(r.status, 204U);
    EXPECT_TRUE(r.body.empty());
    EXPECT_EQ(r.header("content-type"), "");
    EXPECT_EQ(test::http_get(s_port, "/empty_table/0/0/0").status, 204U);
}

TEST_F(server, unknown_source_is_404) {
    auto const r = test::http_get(s_port, "/nosuch/0/0/0");
    EXPECT_EQ(r.status, 404U);
    EXPECT_EQ(r.body, "Source nosuch does not exist");
    EXPECT_EQ(test::http_get(s_port, "/nosuch").status, 404U);
    EXPECT_EQ(test::http_get(s_port, "/points/a/0/0").status, 404U);
}

TEST_F(server, out_of_range_tiles_are_400_without_a_query) {
    for (char const* target : {"/points/31/0/0", "/points/0/1/0", "/points/3/0/8", "/nosuch/31/0/0"}) {
        auto const r = test::http_get(s_port, target);
        EXPECT_EQ(r.status, 400U) << target;
        EXPECT_NE(r.body.find("zoom must be 0 to 30"), std::string::npos) << r.body;
    }
}

TEST_F(server, composite_tile_concatenates_layers) {
    auto const r = test::http_get(s_port, "/points,polygons/0/0/0");
    ASSERT_EQ(r.status, 200U);
    auto const layers = tiles::decode_mvt(r.body);
    ASSERT_EQ(layers.size(), 2U);
    EXPECT_EQ(layers[0].name, "points");
    EXPECT_EQ(layers[1].name, "polygons");
}

TEST_F(server, legacy_extension_redirects) {
    auto const r = test::http_get(s_port, "/points/0/0/0.pbf");
    EXPECT_EQ(r.status, 301U);
    EXPECT_EQ(r.header("location"), "/points/0/0/0");
}

TEST_F(server, other_methods_are_refused) {
    auto const r = test::http_request(s_port, "/points/0/0/0", bhttp::verb::delete_);
    EXPECT_EQ(r.status, 405U);
    EXPECT_EQ(r.header("allow"), "GET, HEAD");
}

TEST_F(server, database_connections_use_tls_and_name_kachel) {
    ASSERT_EQ(test::http_get(s_port, "/points/0/0/0").status, 200U);
    test::admin_connection admin{"postgres"};
    auto const rows = admin.query("SELECT a.application_name || ' ' || s.ssl::text || ' ' || s.version "
                                  "FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) "
                                  "WHERE a.datname = '" +
                                  s_db->name() +
                                  "' AND a.application_name LIKE 'kachel%' "
                                  "ORDER BY 1");
    ASSERT_FALSE(rows.empty());
    for (auto const& row : rows) {
        EXPECT_NE(row.find(" true TLSv1.3"), std::string::npos) << row;
        EXPECT_EQ(row.rfind("kachel/C", 0), 0U) << row;
    }
    EXPECT_LE(rows.size(), 4U); // -p 4
}

TEST_F(server, no_password_in_the_log_or_the_catalog) {
    auto const password = test::cluster_env("KACHEL_PG_PASSWORD");
    EXPECT_EQ(s_kachel->output().find(password), std::string::npos);
    EXPECT_EQ(test::http_get(s_port, "/catalog").body.find(password), std::string::npos);
    EXPECT_EQ(test::http_get(s_port, "/points").body.find(password), std::string::npos);
}

TEST(startup, untrusted_server_certificate_refuses_to_start) {
    test::tempdb db;
    test::child_process kachel{{KACHEL_BINARY, "-l", "127.0.0.1:0", test::tls_url(db.name())},
                               {{"PGSSLROOTCERT", test::cluster_env("KACHEL_PG_DIR") + "/ssl/other-ca.crt"},
                                {"DATABASE_URL", std::nullopt}}};
    auto const code = kachel.wait_exit(30s);
    ASSERT_TRUE(code.has_value()) << "kachel kept running with an untrusted certificate:\n"
                                  << kachel.output();
    EXPECT_EQ(*code, 1);
    auto const out = kachel.output();
    EXPECT_NE(out.find("SSL error: certificate verify failed"), std::string::npos) << out;
    EXPECT_NE(out.find("(from PGSSLROOTCERT)"), std::string::npos) << out;
    EXPECT_EQ(out.find(ready_line), std::string::npos) << out;
    EXPECT_EQ(out.find(test::cluster_env("KACHEL_PG_PASSWORD")), std::string::npos) << out;
}

TEST_F(server, startup_log_shows_the_session_settings_of_tile_connections) {
    auto const out = s_kachel->output();
    EXPECT_NE(
        out.find("Session settings of the tile connections to localhost:" +
                 test::cluster_env("KACHEL_PG_PORT") + "/" + s_db->name() +
                 ": plan_cache_mode=force_custom_plan (kachel default), max_parallel_workers_per_gather=0 "
                 "(kachel default), jit=off (kachel default), statement_timeout=31s (kachel: the longest "
                 "source timeout + 1 s)"),
        std::string::npos)
        << out;
}

TEST(startup, check_connection_shows_each_session_setting_with_its_origin) {
    test::tempdb db;
    auto const config =
        std::filesystem::temp_directory_path() / ("kachel-session-" + std::to_string(::getpid()) + ".yaml");
    std::ofstream{config} << "postgres:\n  connection_string: " << test::tls_url(db.name()) << "\n"
                          << "  session_settings:\n    max_parallel_workers_per_gather: 1\n";
    test::child_process kachel{{KACHEL_BINARY, "--check-connection", "-c", config.string()},
                               {{"PGSSLROOTCERT", test::cluster_env("KACHEL_PG_CA")},
                                {"PGOPTIONS", "-c jit=on -c max_parallel_workers_per_gather=4"},
                                {"DATABASE_URL", std::nullopt}}};
    auto const code = kachel.wait_exit(30s);
    std::filesystem::remove(config);
    ASSERT_TRUE(code.has_value()) << kachel.output();
    EXPECT_EQ(*code, 0) << kachel.output();
    EXPECT_NE(kachel.output().find("  session settings: plan_cache_mode=force_custom_plan (kachel default), "
                                   "max_parallel_workers_per_gather=1 "
                                   "(postgres.session_settings.max_parallel_workers_per_gather in " +
                                   config.string() + "), jit=on (connection options)\n"),
              std::string::npos)
        << kachel.output();
}

TEST(startup, no_connection_is_a_clear_error) {
    test::child_process kachel{{KACHEL_BINARY, "-l", "127.0.0.1:0"}, {{"DATABASE_URL", std::nullopt}}};
    auto const code = kachel.wait_exit(30s);
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 1);
    EXPECT_NE(kachel.output().find("No tile sources found"), std::string::npos) << kachel.output();
}

TEST(startup, two_databases_are_published_with_unique_ids) {
    test::tempdb first;
    test::tempdb second;
    test::child_process kachel{
        {KACHEL_BINARY, "-l", "127.0.0.1:0", "-p", "2", test::tls_url(first.name()),
         test::tls_url(second.name())},
        {{"PGSSLROOTCERT", test::cluster_env("KACHEL_PG_CA")}, {"DATABASE_URL", std::nullopt}}};
    auto const port = wait_ready(kachel);
    ASSERT_NE(port, 0) << kachel.output();
    auto const doc = nlohmann::json::parse(test::http_get(port, "/catalog").body);
    EXPECT_TRUE(doc["tiles"].contains("points"));
    EXPECT_TRUE(doc["tiles"].contains("points.1")) << doc.dump();
    // Each answers from its own database.
    auto const one = test::http_get(port, "/points/0/0/0");
    auto const two = test::http_get(port, "/points.1/0/0/0");
    EXPECT_EQ(one.status, 200U);
    EXPECT_EQ(two.status, 200U);
    EXPECT_EQ(tiles::decode_mvt(two.body).at(0).name, "points.1");
}

TEST_F(server, web_ui_at_the_root_for_local_clients) {
    auto const page = test::http_get(s_port, "/");
    EXPECT_EQ(page.status, 200U);
    EXPECT_EQ(page.header("content-type"), "text/html; charset=utf-8");
    EXPECT_NE(page.body.find("<script type=\"module\" src=\"_/ui/app.js\">"), std::string::npos);
    auto const script = test::http_get(s_port, "/_/ui/maplibre-gl.mjs");
    EXPECT_EQ(script.status, 200U);
    EXPECT_EQ(script.header("content-type"), "text/javascript; charset=utf-8");
    EXPECT_EQ(test::http_get(s_port, "/_/ui/missing.js").status, 404U);
}

TEST(startup, web_ui_can_be_disabled) {
    test::tempdb db;
    test::child_process kachel{
        {KACHEL_BINARY, "-l", "127.0.0.1:0", "-u", "disable", test::tls_url(db.name())},
        {{"PGSSLROOTCERT", test::cluster_env("KACHEL_PG_CA")}, {"DATABASE_URL", std::nullopt}}};
    auto const port = wait_ready(kachel);
    ASSERT_NE(port, 0) << kachel.output();
    auto const root = test::http_get(port, "/");
    EXPECT_EQ(root.status, 200U);
    EXPECT_EQ(root.header("content-type"), "text/plain; charset=utf-8");
    EXPECT_NE(root.body.find("kachel server is running"), std::string::npos);
    EXPECT_EQ(test::http_get(port, "/_/ui/app.js").status, 404U);
}

// ---- HTTP behaviour: encodings, ETags, CORS, Accept, metrics, readiness, access log ----

namespace {

std::string decoded(test::http_reply const& r) {
    auto const ce = r.header("content-encoding");
    if (ce.empty()) {
        return r.body;
    }
    return http::decompress(r.body, *http::parse_encoding(ce == "br" ? "br" : ce));
}

} // namespace

TEST_F(server, every_negotiated_encoding_decodes_to_the_identity_tile) {
    auto const plain = test::http_get(s_port, "/polygons/0/0/0");
    ASSERT_EQ(plain.status, 200U);
    EXPECT_EQ(plain.header("content-encoding"), "");
    struct probe {
        char const* accept_encoding;
        char const* expected;
    };
    for (auto const& p : std::vector<probe>{{"gzip", "gzip"},
                                            {"br", "br"},
                                            {"zstd", "zstd"},
                                            {"br, gzip", "gzip"},
                                            {"gzip;q=0.5, br;q=0.9", "br"},
                                            {"zstd, gzip;q=0.5", "zstd"},
                                            {"identity", ""},
                                            {"deflate", ""}}) {
        auto const r = test::http_request(s_port, "/polygons/0/0/0", bhttp::verb::get,
                                          {{"Accept-Encoding", p.accept_encoding}});
        ASSERT_EQ(r.status, 200U) << p.accept_encoding;
        EXPECT_EQ(r.header("content-encoding"), p.expected) << p.accept_encoding;
        EXPECT_NE(r.header("vary").find("Accept-Encoding"), std::string::npos) << p.accept_encoding;
        EXPECT_EQ(r.header("etag"), plain.header("etag")) << p.accept_encoding;
        EXPECT_EQ(decoded(r), plain.body) << p.accept_encoding;
    }
    auto const refused = test::http_request(s_port, "/polygons/0/0/0", bhttp::verb::get,
                                            {{"Accept-Encoding", "identity;q=0, gzip;q=0"}});
    EXPECT_EQ(refused.status, 406U);
    EXPECT_EQ(refused.body, "No supported encoding found");
}

TEST_F(server, catalog_and_tilejson_are_compressed_and_tagged_too) {
    for (char const* target : {"/catalog", "/points"}) {
        auto const plain = test::http_get(s_port, target);
        auto const gz = test::http_request(s_port, target, bhttp::verb::get, {{"Accept-Encoding", "gzip"}});
        EXPECT_EQ(gz.header("content-encoding"), "gzip") << target;
        EXPECT_EQ(decoded(gz), plain.body) << target;
        ASSERT_FALSE(plain.header("etag").empty()) << target;
        auto const again =
            test::http_request(s_port, target, bhttp::verb::get, {{"If-None-Match", plain.header("etag")}});
        EXPECT_EQ(again.status, 304U) << target;
        EXPECT_TRUE(again.body.empty());
    }
}

TEST_F(server, etag_and_if_none_match) {
    auto const r = test::http_get(s_port, "/points/0/0/0");
    auto const etag = r.header("etag");
    ASSERT_EQ(etag.size(), 24U) << etag; // "22 characters"
    EXPECT_EQ(etag, "\"" + tiles::etag_value(r.body) + "\"");
    auto const not_modified =
        test::http_request(s_port, "/points/0/0/0", bhttp::verb::get, {{"If-None-Match", etag}});
    EXPECT_EQ(not_modified.status, 304U);
    EXPECT_TRUE(not_modified.body.empty());
    EXPECT_EQ(not_modified.header("etag"), etag);
    EXPECT_EQ(test::http_request(s_port, "/points/0/0/0", bhttp::verb::get, {{"If-None-Match", "*"}}).status,
              304U);
    EXPECT_EQ(test::http_request(s_port, "/points/0/0/0", bhttp::verb::get, {{"If-None-Match", "\"other\""}})
                  .status,
              200U);
    EXPECT_EQ(test::http_request(s_port, "/points/0/0/0", bhttp::verb::get, {{"If-None-Match", "W/" + etag}})
                  .status,
              200U); // weak tags never match strongly
}

TEST_F(server, composite_etags_follow_martin) {
    auto const points = test::http_get(s_port, "/points/0/0/0");
    auto const polygons = test::http_get(s_port, "/polygons/0/0/0");
    auto strip = [](std::string s) { return s.substr(1, s.size() - 2); };
    auto const both = test::http_get(s_port, "/points,polygons/0/0/0");
    EXPECT_EQ(both.header("etag"),
              "\"" + strip(points.header("etag")) + strip(polygons.header("etag")) + "\"");
    // One non-empty constituent: its own ETag, unchanged.
    auto const one = test::http_get(s_port, "/points,empty_table/0/0/0");
    EXPECT_EQ(one.header("etag"), points.header("etag"));
}

TEST_F(server, accept_header_selects_formats) {
    auto const mvt = test::http_request(s_port, "/points/0/0/0", bhttp::verb::get,
                                        {{"Accept", "application/vnd.mapbox-vector-tile"}});
    EXPECT_EQ(mvt.status, 200U);
    auto const html =
        test::http_request(s_port, "/points/0/0/0", bhttp::verb::get, {{"Accept", "text/html"}});
    EXPECT_EQ(html.status, 406U);
    EXPECT_EQ(html.body, "Accept header does not contain any supported tile format");
    auto const png = test::http_request(s_port, "/points/0/0/0", bhttp::verb::get, {{"Accept", "image/png"}});
    EXPECT_EQ(png.status, 406U);
    EXPECT_EQ(png.body, "Source produces application/x-protobuf, which does not match the Accept header");
    EXPECT_EQ(test::http_request(s_port, "/nosuch/0/0/0", bhttp::verb::get, {{"Accept", "text/html"}}).status,
              406U);
}

TEST_F(server, cors_by_default_for_any_origin) {
    auto const r =
        test::http_request(s_port, "/points/0/0/0", bhttp::verb::get, {{"Origin", "https://maps.example"}});
    EXPECT_EQ(r.header("access-control-allow-origin"), "https://maps.example");
    EXPECT_NE(r.header("vary").find("Origin"), std::string::npos);
    auto const plain = test::http_get(s_port, "/points/0/0/0");
    EXPECT_EQ(plain.header("access-control-allow-origin"), "");
    auto const pre =
        test::http_request(s_port, "/points/0/0/0", bhttp::verb::options,
                           {{"Origin", "https://maps.example"}, {"Access-Control-Request-Method", "GET"}});
    EXPECT_EQ(pre.status, 200U);
    EXPECT_EQ(pre.header("access-control-allow-origin"), "https://maps.example");
    EXPECT_EQ(pre.header("access-control-allow-methods"), "GET, HEAD");
}

TEST_F(server, readiness_and_liveness) {
    auto const ready = test::http_get(s_port, "/_/ready");
    EXPECT_EQ(ready.status, 200U);
    EXPECT_EQ(ready.body, "OK");
    EXPECT_EQ(ready.header("cache-control"), "no-cache");
}

/// The value of one series in a Prometheus text exposition, 0 when absent.
double series_value(std::string const& text, std::string const& series) {
    auto const pos = text.find(series + " ");
    if (pos == std::string::npos || (pos > 0 && text[pos - 1] != '\n')) {
        return 0;
    }
    return std::stod(text.substr(pos + series.size() + 1));
}

TEST_F(server, metrics_count_a_known_sequence_and_pass_promtool) {
    std::string const tiles_ok =
        R"(kachel_http_requests_total{endpoint="/{source_ids}/{z}/{x}/{y}",method="GET",status="200"})";
    std::string const tiles_404 =
        R"(kachel_http_requests_total{endpoint="/{source_ids}/{z}/{x}/{y}",method="GET",status="404"})";
    std::string const catalog =
        R"(kachel_http_requests_total{endpoint="/catalog",method="GET",status="200"})";
    std::string const queries = R"(kachel_postgres_query_duration_seconds_count{source="points"})";
    auto const before = test::http_get(s_port, "/_/metrics").body;
    ASSERT_EQ(test::http_get(s_port, "/points/0/0/0").status, 200U);
    ASSERT_EQ(test::http_get(s_port, "/points/1/0/0").status, 200U);
    ASSERT_EQ(test::http_get(s_port, "/nosuch/0/0/0").status, 404U);
    ASSERT_EQ(test::http_get(s_port, "/catalog").status, 200U);
    auto const r = test::http_get(s_port, "/_/metrics");
    ASSERT_EQ(r.status, 200U);
    EXPECT_EQ(r.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    auto const& m = r.body;
    EXPECT_EQ(series_value(m, tiles_ok) - series_value(before, tiles_ok), 2) << m;
    EXPECT_EQ(series_value(m, tiles_404) - series_value(before, tiles_404), 1) << m;
    EXPECT_EQ(series_value(m, catalog) - series_value(before, catalog), 1) << m;
    // Tiles an earlier test asked for come from the cache: a query per miss, a lookup per tile.
    auto const lookups = [](std::string const& text, char const* result) {
        double sum = 0;
        for (char const* zoom : {"0", "1"}) {
            sum += series_value(
                text, fmt::format(R"(kachel_tile_cache_requests_total{{cache="tile",result="{}",zoom="{}"}})",
                                  result, zoom));
        }
        return sum;
    };
    auto const misses = lookups(m, "miss") - lookups(before, "miss");
    EXPECT_EQ(misses + lookups(m, "hit") - lookups(before, "hit"), 2) << m;
    EXPECT_EQ(series_value(m, queries) - series_value(before, queries), misses) << m;
    EXPECT_NE(m.find("kachel_postgres_pool_size{connection=\"localhost:"), std::string::npos) << m;
    EXPECT_NE(m.find("kachel_postgres_pool_in_use{connection=\"localhost:"), std::string::npos) << m;
    EXPECT_NE(m.find("kachel_postgres_connection_attempts_total{connection=\"localhost:"), std::string::npos)
        << m;
    EXPECT_NE(m.find("kachel_postgres_certificate_expiry_seconds{connection=\"localhost:"), std::string::npos)
        << m;
    EXPECT_EQ(m.find("endpoint=\"/_/metrics\""), std::string::npos) << m;
    // promtool (Debian's prometheus package) validates the exposition format.
    auto const path =
        std::filesystem::temp_directory_path() / ("kachel-metrics-" + std::to_string(::getpid()));
    std::ofstream{path} << m;
    auto const rc = std::system(
        ("promtool check metrics < " + path.string() + " > " + path.string() + ".out 2>&1").c_str());
    std::ifstream out{path.string() + ".out"};
    std::string const report{std::istreambuf_iterator<char>{out}, std::istreambuf_iterator<char>{}};
    EXPECT_EQ(rc, 0) << report;
    std::filesystem::remove(path);
    std::filesystem::remove(path.string() + ".out");
}

TEST_F(server, access_log_redacts_sensitive_query_values) {
    ASSERT_EQ(test::http_get(s_port, "/points?token=very-secret-1&x=2").status, 200U);
    ASSERT_TRUE(s_kachel->wait_for_output("\"GET /points?token=***&x=2\" 200", 5s)) << s_kachel->output();
    EXPECT_EQ(s_kachel->output().find("very-secret-1"), std::string::npos);
}

TEST(startup, http_settings_from_the_config_file) {
    test::tempdb db;
    auto const config =
        std::filesystem::temp_directory_path() / ("kachel-http-" + std::to_string(::getpid()) + ".yaml");
    std::ofstream{config} << "postgres:\n  connection_string: " << test::tls_url(db.name()) << "\n"
                          << "cors:\n  origin: [https://allowed.example]\n  max_age: 600\n"
                          << "cache_control: public, max-age=60\n"
                          << "preferred_encoding: br\n"
                          << "access_log: false\n"
                          << "observability:\n  metrics:\n    add_labels:\n      env: e2e\n";
    test::child_process kachel{
        {KACHEL_BINARY, "-l", "127.0.0.1:0", "-c", config.string()},
        {{"PGSSLROOTCERT", test::cluster_env("KACHEL_PG_CA")}, {"DATABASE_URL", std::nullopt}}};
    auto const port = wait_ready(kachel);
    std::filesystem::remove(config);
    ASSERT_NE(port, 0) << kachel.output();
    auto const tie =
        test::http_request(port, "/points/0/0/0", bhttp::verb::get,
                           {{"Accept-Encoding", "gzip, br"}, {"Origin", "https://allowed.example"}});
    EXPECT_EQ(tie.header("content-encoding"), "br");
    EXPECT_EQ(tie.header("cache-control"), "public, max-age=60");
    EXPECT_EQ(tie.header("access-control-allow-origin"), "https://allowed.example");
    auto const other =
        test::http_request(port, "/points/0/0/0", bhttp::verb::get, {{"Origin", "https://evil.example"}});
    EXPECT_EQ(other.header("access-control-allow-origin"), "");
    auto const pre =
        test::http_request(port, "/points/0/0/0", bhttp::verb::options,
                           {{"Origin", "https://allowed.example"}, {"Access-Control-Request-Method", "GET"}});
    EXPECT_EQ(pre.header("access-control-max-age"), "600");
    EXPECT_EQ(test::http_get(port, "/health").header("cache-control"),
              "no-cache"); // a route's own value wins
    EXPECT_NE(test::http_get(port, "/_/metrics").body.find("env=\"e2e\""), std::string::npos);
    EXPECT_EQ(kachel.output().find("\"GET /points/0/0/0\""), std::string::npos); // access log off
}

// ---- hostile input ----

TEST_F(server, oversized_headers_and_targets_are_refused) {
    auto const big_header = test::raw_exchange(
        s_port, "GET /points/0/0/0 HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n");
    EXPECT_EQ(big_header.rfind("HTTP/1.1 431 Request Header Fields Too Large", 0), 0U)
        << big_header.substr(0, 200);
    auto const long_target =
        test::raw_exchange(s_port, "GET /" + std::string(20000, 'p') + " HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(long_target.rfind("HTTP/1.1 414 URI Too Long", 0), 0U) << long_target.substr(0, 200);
    auto const medium_target =
        test::raw_exchange(s_port, "GET /" + std::string(9000, 'p') + " HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(medium_target.rfind("HTTP/1.1 414 URI Too Long", 0), 0U) << medium_target.substr(0, 200);
}

TEST_F(server, responses_are_framed_exactly_on_a_kept_alive_connection) {
    // Two requests in one write: the first answer must end exactly where its Content-Length says,
    // so that the second starts right after it.
    auto const both =
        test::raw_exchange(s_port, "GET /points/0/0/0 HTTP/1.1\r\nHost: x\r\n\r\n"
                                   "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    ASSERT_EQ(both.rfind("HTTP/1.1 200 OK\r\n", 0), 0U) << both.substr(0, 200);
    auto const header_end = both.find("\r\n\r\n");
    ASSERT_NE(header_end, std::string::npos);
    std::smatch length;
    auto const header = both.substr(0, header_end);
    ASSERT_TRUE(std::regex_search(header, length, std::regex{"\r\nContent-Length: ([0-9]+)"})) << header;
    auto const second = header_end + 4 + std::stoul(length[1]);
    ASSERT_LT(second, both.size());
    EXPECT_EQ(both.compare(second, 17, "HTTP/1.1 200 OK\r\n"), 0) << both.substr(second, 100);
    EXPECT_EQ(both.substr(both.size() - 2), "OK") << "the health body ends the stream";

    // An HTTP/1.0 client gets an HTTP/1.0 answer.
    auto const old = test::raw_exchange(s_port, "GET /health HTTP/1.0\r\n\r\n");
    EXPECT_EQ(old.rfind("HTTP/1.0 200 OK\r\n", 0), 0U) << old.substr(0, 200);
}

TEST_F(server, a_large_answer_reaches_a_slow_reader_whole) {
    // The answer does not fit the client's small receive window: the server's first write sends
    // part of it and the rest must follow while the client reads slowly.
    namespace asio = boost::asio;
    auto const expected = test::http_get(s_port, "/_/ui/maplibre-gl.mjs");
    ASSERT_EQ(expected.status, 200U);
    ASSERT_GT(expected.body.size(), 256U * 1024);
    asio::io_context ioc;
    asio::ip::tcp::socket socket{ioc};
    socket.open(asio::ip::tcp::v4());
    socket.set_option(asio::socket_base::receive_buffer_size{4096});
    socket.connect({asio::ip::make_address("127.0.0.1"), s_port});
    asio::write(socket, asio::buffer(std::string_view{
                            "GET /_/ui/maplibre-gl.mjs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"}));
    std::this_thread::sleep_for(300ms);
    std::string received;
    std::array<char, 1024> chunk{};
    boost::system::error_code ec;
    for (int reads = 0; !ec; ++reads) {
        received.append(chunk.data(), socket.read_some(asio::buffer(chunk), ec));
        if (reads % 64 == 0) {
            std::this_thread::sleep_for(1ms);
        }
    }
    EXPECT_EQ(ec, asio::error::eof);
    auto const header_end = received.find("\r\n\r\n");
    ASSERT_NE(header_end, std::string::npos);
    EXPECT_EQ(received.rfind("HTTP/1.1 200 OK\r\n", 0), 0U) << received.substr(0, 200);
    EXPECT_NE(received.find("\r\nContent-Length: " + std::to_string(expected.body.size()) + "\r\n"),
              std::string::npos)
        << received.substr(0, header_end);
    EXPECT_TRUE(received.compare(header_end + 4, std::string::npos, expected.body) == 0)
        << "received " << received.size() - header_end - 4 << " of " << expected.body.size() << " bytes";
}

TEST_F(server, a_get_with_a_body_is_refused) {
    auto const r =
        test::raw_exchange(s_port, "GET /points/0/0/0 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    EXPECT_EQ(r.rfind("HTTP/1.1 400 Bad Request", 0), 0U) << r.substr(0, 200);
    EXPECT_NE(r.find("must not have a body"), std::string::npos);
}

TEST_F(server, hostile_paths_get_the_right_status_and_reveal_nothing) {
    struct expectation {
        std::string target;
        unsigned status;
        std::string body; ///< expected body prefix; empty = not checked
    };
    std::vector<expectation> const cases{
        {"//points//0//0//0", 200, ""},                               // repeated slashes are merged
        {"/points%2F0/0/0/0", 404, "Source points/0 does not exist"}, // %2F stays inside the id
        {"/points/../catalog", 404, "Not found"},                     // no dot-segment resolution
        {"/../../etc/passwd", 404, "Not found"},
        {"/%2E%2E/0/0/0", 404, "Source .. does not exist"},
        {"/points%00/0/0/0", 400, "The source id is not valid percent-encoded text"},
        {"/points%zz/0/0/0", 400, "The source id is not valid percent-encoded text"},
        {"/points/0/0/00000000000000000000000000000000000000000", 200, ""}, // leading zeros: 0
        {"/points/99999999999999999999999999/0/0", 400, "Invalid tile coordinates"},
        {"/points/-1/0/0", 404, "Not found"},
        {"/points/+1/0/0", 404, "Not found"},
        {"/points/1/0x1/0", 404, "Not found"},
        {"/%C3%BC%E2%82%AC/0/0/0", 404, "Source \xc3\xbc\xe2\x82\xac does not exist"},
        {"/%FF%FE/0/0/0", 404, ""}, // not UTF-8: still only a 404
    };
    for (auto const& c : cases) {
        auto const r = test::http_get(s_port, c.target);
        EXPECT_EQ(r.status, c.status) << c.target << ": " << r.body;
        if (!c.body.empty()) {
            EXPECT_EQ(r.body.rfind(c.body, 0), 0U) << c.target << ": " << r.body;
        }
        for (char const* secret : {"postgres", "SELECT", "sslrootcert", "127.0.0.1:"}) {
            EXPECT_EQ(r.body.find(secret), std::string::npos) << c.target << " reveals " << secret;
        }
    }
    // A raw NUL or space in the request line is refused by the HTTP parser, and the server goes on.
    auto const nul = test::raw_exchange(s_port, "GET /points\0/0/0/0 HTTP/1.1\r\nHost: x\r\n\r\n"s);
    EXPECT_EQ(nul.rfind("HTTP/1.1 400", 0), 0U) << nul.substr(0, 100);
    EXPECT_EQ(test::http_get(s_port, "/points/0/0/0").status, 200U);
}

TEST_F(server, slow_clients_do_not_block_others_and_are_cut_off) {
    namespace asio = boost::asio;
    asio::io_context ioc;
    std::vector<asio::ip::tcp::socket> slow;
    for (int i = 0; i < 200; ++i) {
        asio::ip::tcp::socket s{ioc};
        s.connect({asio::ip::make_address("127.0.0.1"), s_port});
        asio::write(s, asio::buffer(std::string_view{"GET /points/0/0/0 HTTP/1.1\r\nHost: x\r\n"}));
        slow.push_back(std::move(s));
    }
    auto const start = std::chrono::steady_clock::now();
    EXPECT_EQ(test::http_get(s_port, "/points/0/0/0").status, 200U);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    // The trickling clients never finish their header: after the header timeout (10 s) the
    // server closes them.
    std::this_thread::sleep_for(11s);
    std::size_t closed = 0;
    for (auto& s : slow) {
        std::array<char, 256> buf{};
        boost::system::error_code ec;
        s.non_blocking(true);
        s.read_some(asio::buffer(buf), ec);
        closed += ec == asio::error::eof || ec == asio::error::connection_reset ? 1 : 0;
    }
    EXPECT_EQ(closed, slow.size());
}

TEST(startup, idle_connections_close_after_the_keep_alive_time_and_busy_ones_stay_open) {
    test::tempdb db;
    test::child_process kachel{
        {KACHEL_BINARY, "-l", "127.0.0.1:0", "-k", "2", test::tls_url(db.name())},
        {{"PGSSLROOTCERT", test::cluster_env("KACHEL_PG_CA")}, {"DATABASE_URL", std::nullopt}}};
    auto const port = wait_ready(kachel);
    ASSERT_NE(port, 0) << kachel.output();
    namespace asio = boost::asio;
    asio::io_context ioc;
    asio::ip::tcp::endpoint const endpoint{asio::ip::make_address("127.0.0.1"), port};
    asio::ip::tcp::socket idle{ioc};
    idle.connect(endpoint);
    asio::ip::tcp::socket busy{ioc};
    busy.connect(endpoint);
    // Still open: nothing to read yet, no end of stream.
    auto const open = [](asio::ip::tcp::socket& s) {
        std::array<char, 16> buf{};
        boost::system::error_code ec;
        s.non_blocking(true);
        s.read_some(asio::buffer(buf), ec);
        s.non_blocking(false);
        return ec == asio::error::would_block;
    };
    // The busy connection asks every 0.5 s for 4 s, twice the keep-alive time: each request
    // starts a new idle period, so it is never closed.
    auto const start = std::chrono::steady_clock::now();
    boost::beast::flat_buffer buffer;
    for (int i = 0; i < 8; ++i) {
        namespace bhttp = boost::beast::http;
        bhttp::request<bhttp::empty_body> req{bhttp::verb::get, "/health", 11};
        req.set(bhttp::field::host, "x");
        bhttp::write(busy, req);
        bhttp::response<bhttp::string_body> res;
        boost::system::error_code ec;
        bhttp::read(busy, buffer, res, ec);
        ASSERT_FALSE(ec) << "request " << i << " after " << (std::chrono::steady_clock::now() - start) / 1ms
                         << " ms: " << ec.message();
        EXPECT_EQ(res.result_int(), 200U);
        if (i == 2) {
            EXPECT_TRUE(open(idle)) << "closed after 1 s, before the keep-alive time";
        }
        std::this_thread::sleep_for(500ms);
    }
    ASSERT_FALSE(open(idle)) << "not closed after 4 s";
    std::array<char, 16> buf{};
    boost::system::error_code ec;
    idle.read_some(asio::buffer(buf), ec); // the idle one was closed after 2 s
    EXPECT_EQ(ec, asio::error::eof);
    EXPECT_TRUE(open(busy));
}

TEST(startup, connections_beyond_the_cap_get_503) {
    test::tempdb db;
    test::child_process kachel{
        {KACHEL_BINARY, "-l", "127.0.0.1:0", "--max-connections", "3", test::tls_url(db.name())},
        {{"PGSSLROOTCERT", test::cluster_env("KACHEL_PG_CA")}, {"DATABASE_URL", std::nullopt}}};
    auto const port = wait_ready(kachel);
    ASSERT_NE(port, 0) << kachel.output();
    namespace asio = boost::asio;
    asio::io_context ioc;
    std::vector<asio::ip::tcp::socket> idle;
    for (int i = 0; i < 3; ++i) {
        idle.emplace_back(ioc).connect({asio::ip::make_address("127.0.0.1"), port});
    }
    std::this_thread::sleep_for(200ms);
    auto const refused = test::raw_exchange(port, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(refused.rfind("HTTP/1.1 503 Service Unavailable", 0), 0U) << refused;
    idle.clear();
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(test::http_get(port, "/health").status, 200U);
}

TEST(startup, log_format_json_writes_one_object_per_line_with_access_fields) {
    test::tempdb db;
    db.query("CREATE FUNCTION public.boom(z integer, x integer, y integer) RETURNS bytea AS "
             "$$ BEGIN RAISE EXCEPTION 'boom'; END $$ LANGUAGE plpgsql");
    test::child_process kachel{{KACHEL_BINARY, "-l", "127.0.0.1:0", test::tls_url(db.name())},
                               {{"PGSSLROOTCERT", test::cluster_env("KACHEL_PG_CA")},
                                {"DATABASE_URL", std::nullopt},
                                {"KACHEL_LOG_FORMAT", std::nullopt},
                                {"RUST_LOG_FORMAT", "json"}}};
    auto const port = wait_ready(kachel);
    ASSERT_NE(port, 0) << kachel.output();
    EXPECT_EQ(test::http_get(port, "/points/0/0/0").status, 200U);
    EXPECT_EQ(test::http_get(port, "/catalog?token=hunter2").status, 200U);
    // An error names its request id in the body and X-Request-Id; its access line carries the same.
    auto const failed = test::http_get(port, "/boom/0/0/0");
    EXPECT_EQ(failed.status, 500U);
    auto const failed_id = failed.header("x-request-id");
    EXPECT_EQ(failed_id.size(), 8U) << failed.body;
    EXPECT_NE(failed.body.find("(request " + failed_id + ")"), std::string::npos) << failed.body;
    ASSERT_TRUE(kachel.wait_for_output("/boom/0/0/0", 10s)) << kachel.output();
    ASSERT_TRUE(kachel.wait_for_output("/catalog?token=", 10s)) << kachel.output();
    std::istringstream lines{kachel.output()};
    std::string line;
    int access = 0;
    bool saw_failed = false;
    while (std::getline(lines, line)) {
        auto const doc = nlohmann::json::parse(line, nullptr, false);
        ASSERT_FALSE(doc.is_discarded()) << "not JSON: " << line;
        for (auto const* key : {"timestamp", "level", "target", "message", "fields"}) {
            EXPECT_TRUE(doc.contains(key)) << key << " missing in " << line;
        }
        if (doc["message"] != "request") {
            continue;
        }
        ++access;
        auto const& f = doc["fields"];
        EXPECT_EQ(f["method"], "GET");
        EXPECT_FALSE(f["request_id"].get<std::string>().empty());
        if (f["path"] == "/boom/0/0/0") {
            EXPECT_EQ(f["status"], 500);
            EXPECT_EQ(f["request_id"], failed_id) << line;
            saw_failed = true;
            continue;
        }
        EXPECT_EQ(f["status"], 200);
        EXPECT_TRUE(f["duration_ms"].is_number());
        EXPECT_GT(f["bytes"].get<double>(), 0);
        EXPECT_TRUE(f["cache"].is_string());
        EXPECT_EQ(line.find("hunter2"), std::string::npos) << line;
    }
    EXPECT_EQ(access, 3);
    EXPECT_TRUE(saw_failed);
}

TEST(startup, kachel_log_format_wins_and_an_unknown_format_is_refused) {
    test::child_process bare{{KACHEL_BINARY, "--help"},
                             {{"KACHEL_LOG_FORMAT", "bare"}, {"RUST_LOG_FORMAT", "json"}}};
    EXPECT_EQ(bare.wait_exit(30s), 0);
    test::child_process bad{{KACHEL_BINARY, "-l", "127.0.0.1:0"},
                            {{"KACHEL_LOG_FORMAT", std::nullopt}, {"RUST_LOG_FORMAT", "xml"}}};
    EXPECT_EQ(bad.wait_exit(30s), 1);
    EXPECT_NE(
        bad.output().find("RUST_LOG_FORMAT=xml is not a log format: use full, compact, bare, pretty or json"),
        std::string::npos)
        << bad.output();
    test::child_process wins{
        {KACHEL_BINARY, "-l", "127.0.0.1:0"},
        {{"KACHEL_LOG_FORMAT", "bare"}, {"RUST_LOG_FORMAT", "json"}, {"DATABASE_URL", std::nullopt}}};
    EXPECT_EQ(wins.wait_exit(30s), 1);
    EXPECT_NE(wins.output().find("\nerror No tile sources found"), std::string::npos) << wins.output();
    EXPECT_EQ(wins.output().find("{\"timestamp\""), std::string::npos);
}

TEST(startup, a_function_returning_gzip_is_served_in_the_encoding_each_client_accepts) {
    test::tempdb db;
    std::string const plain = "a tile that the function stores gzip-compressed";
    auto const gzipped = http::compress(plain, http::encoding::gzip);
    std::string hex;
    for (unsigned char const c : gzipped) {
        hex += fmt::format("{:02x}", c);
    }
    db.query("CREATE FUNCTION public.gz_tiles(z integer, x integer, y integer) RETURNS bytea "
             "LANGUAGE sql IMMUTABLE AS $$ SELECT '\\x" +
             hex + "'::bytea $$");
    test::child_process kachel{
        {KACHEL_BINARY, "-l", "127.0.0.1:0", test::tls_url(db.name())},
        {{"PGSSLROOTCERT", test::cluster_env("KACHEL_PG_CA")}, {"DATABASE_URL", std::nullopt}}};
    auto const port = wait_ready(kachel);
    ASSERT_NE(port, 0) << kachel.output();
    for (int round = 0; round < 2; ++round) { // computed, then from the cache
        auto const identity =
            test::http_request(port, "/gz_tiles/0/0/0", bhttp::verb::get, {{"Accept-Encoding", "identity"}});
        EXPECT_EQ(identity.status, 200U);
        EXPECT_EQ(identity.header("content-encoding"), "");
        EXPECT_EQ(identity.body, plain);
        auto const gzip =
            test::http_request(port, "/gz_tiles/0/0/0", bhttp::verb::get, {{"Accept-Encoding", "gzip"}});
        EXPECT_EQ(gzip.status, 200U);
        EXPECT_EQ(gzip.header("content-encoding"), "gzip");
        EXPECT_EQ(http::decompress(gzip.body, http::encoding::gzip), plain);
        EXPECT_EQ(gzip.header("etag"), identity.header("etag"));
    }
}
