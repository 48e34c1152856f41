// Starts the kachel binary against a fixture database over sslmode=verify-full and checks what
// a map client sees.

#include "core/tile_coord.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/tempdb.hpp"
#include "tiles/mvt_decoder.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <regex>
#include <set>

using namespace kachel;
using namespace std::chrono_literals;
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
    EXPECT_NE(page.body.find("<script type=\"module\" src=\"/_/ui/app.js\">"), std::string::npos);
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
