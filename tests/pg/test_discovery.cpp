// Discovery, publishing and tile production against a real PostGIS database over TLS.

#include "core/error.hpp"
#include "pg/connection.hpp"
#include "pg/diagnosis.hpp"
#include "postgis/discovery.hpp"
#include "postgis/publisher.hpp"
#include "postgis/table_source.hpp"
#include "support/run.hpp"
#include "support/tempdb.hpp"
#include "tiles/mvt_decoder.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

using namespace kachel;
using test::run;

namespace {

class discovery : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { s_db = std::make_unique<test::tempdb>(); }
    static void TearDownTestSuite() { s_db.reset(); }

    std::unique_ptr<pg::connection> connect() {
        auto const params = test::params_for(test::tls_conninfo(s_db->name()));
        return run(m_ioc, pg::connection::async_connect(m_ioc.get_executor(), params));
    }

    /// Publishes the test database into a fresh catalog.
    tiles::catalog publish() {
        tiles::catalog catalog;
        tiles::id_resolver ids;
        auto const params = test::params_for(test::tls_conninfo(s_db->name()));
        run(m_ioc, postgis::async_publish_database(m_ioc.get_executor(), params, pg::pool_options{},
                                                   std::chrono::milliseconds{0}, postgis::publish_config{},
                                                   ids, catalog));
        return catalog;
    }

    static std::unique_ptr<test::tempdb> s_db;
    boost::asio::io_context m_ioc;
};

std::unique_ptr<test::tempdb> discovery::s_db;

postgis::table_info const* find(std::vector<postgis::table_info> const& tables, std::string const& schema,
                                std::string const& table, std::string const& column) {
    auto const it = std::find_if(tables.begin(), tables.end(), [&](auto const& t) {
        return t.schema == schema && t.table == table && t.geometry_column == column;
    });
    return it == tables.end() ? nullptr : &*it;
}

} // namespace

TEST_F(discovery, versions_are_checked) {
    auto conn = connect();
    auto const v = run(m_ioc, postgis::async_check_versions(*conn));
    EXPECT_GE(v.postgres, postgis::minimum_postgres_version);
    EXPECT_GE(v.postgis, postgis::minimum_postgis_version);
    EXPECT_FALSE(v.postgis_text.empty());
}

TEST_F(discovery, finds_every_kind_of_relation_with_its_columns) {
    auto conn = connect();
    auto const tables = run(m_ioc, postgis::async_discover_tables(*conn));

    auto const* points = find(tables, "public", "points", "geom");
    ASSERT_NE(points, nullptr);
    EXPECT_EQ(points->srid, 4326);
    EXPECT_EQ(points->geometry_type, "POINT");
    EXPECT_EQ(points->relkind, 'r');
    EXPECT_TRUE(points->has_spatial_index);
    EXPECT_EQ(
        points->properties,
        (std::map<std::string, std::string>{
            {"gid", "int4"}, {"name", "text"}, {"kind", "int4"}, {"score", "float8"}, {"flag", "bool"}}));

    auto const* lines = find(tables, "public", "lines", "geom");
    ASSERT_NE(lines, nullptr);
    EXPECT_EQ(lines->srid, 3857);
    EXPECT_EQ(lines->properties.at("name"), "varchar");

    auto const* geog = find(tables, "public", "geog_places", "geog");
    ASSERT_NE(geog, nullptr);
    EXPECT_TRUE(geog->is_geography);
    EXPECT_TRUE(geog->has_spatial_index);

    auto const* view = find(tables, "public", "points_view", "geom");
    ASSERT_NE(view, nullptr);
    EXPECT_EQ(view->relkind, 'v');
    auto const* mat = find(tables, "public", "polygons_mat", "geom");
    ASSERT_NE(mat, nullptr);
    EXPECT_EQ(mat->relkind, 'm');
    EXPECT_FALSE(mat->has_spatial_index);

    EXPECT_NE(find(tables, "public", "two_geoms", "geom_a"), nullptr);
    EXPECT_NE(find(tables, "public", "two_geoms", "geom_b"), nullptr);
    EXPECT_EQ(find(tables, "public", "two_geoms", "geom_a")->properties,
              (std::map<std::string, std::string>{{"gid", "int4"}, {"label", "text"}}));
    EXPECT_NE(find(tables, "alpha", "shared_name", "geom"), nullptr);
    EXPECT_NE(find(tables, "beta", "shared_name", "geom"), nullptr);
    EXPECT_NE(find(tables, "public", "MixedCase", "geom"), nullptr);
    EXPECT_NE(find(tables, "public", "odd name \"quoted\" \xc3\xbc", "geom"), nullptr);
    EXPECT_EQ(find(tables, "public", "utm_points", "geom")->srid, 32632);
    EXPECT_EQ(find(tables, "public", "no_srid", "geom")->srid, 0);
}

TEST_F(discovery, roles_see_only_what_they_can_read) {
    // Both tables belong to the administrator; only one is granted to kachel's role.
    s_db->query("CREATE TABLE private_points (gid int4, geom geometry(Point, 4326))");
    s_db->query("REVOKE ALL ON private_points FROM kachel");
    s_db->query("CREATE TABLE granted_points (gid int4, geom geometry(Point, 4326))");
    s_db->query("GRANT SELECT ON granted_points TO kachel");
    auto conn = connect();
    auto const tables = run(m_ioc, postgis::async_discover_tables(*conn));
    EXPECT_EQ(find(tables, "public", "private_points", "geom"), nullptr);
    EXPECT_NE(find(tables, "public", "granted_points", "geom"), nullptr) << "discovery found nothing at all?";
    s_db->query("DROP TABLE private_points, granted_points");
}

TEST_F(discovery, publishing_assigns_martin_source_ids) {
    auto const catalog = publish();
    std::vector<std::string> ids;
    auto const doc = catalog.to_json();
    for (auto const& [id, entry] : doc["tiles"].items()) {
        ids.push_back(id);
    }
    // Tables and functions; no_srid and mercator_no_srid are skipped (SRID 0), and so are the
    // functions whose signature does not serve tiles (not_bigint, not_names, ...).
    std::vector<std::string> const expected{"Fn.Mixed-Case--", "MixedCase",
                                            "antimeridian",    "catalog.1",
                                            "commented",       "empty_table",
                                            "fn_no_rows",      "fn_null",
                                            "fn_other",        "fn_query_echo",
                                            "fn_raster",       "fn_sleep",
                                            "fn_token",        "fn_two_rows",
                                            "fn_upper",        "fn_with_etag",
                                            "fn_zoom_table",   "fn_zxy",
                                            "geog_places",     "horizontal_line",
                                            "lines",           "odd-name--quoted---",
                                            "plain_commented", "points",
                                            "points_view",     "polygons",
                                            "polygons_mat",    "shared_name",
                                            "shared_name.1",   "single_point",
                                            "two_geoms",       "two_geoms.1",
                                            "utm_points"};
    EXPECT_EQ(ids, expected);
    EXPECT_EQ(catalog.find("shared_name")->tilejson()["description"], "alpha.shared_name.geom");
    EXPECT_EQ(catalog.find("shared_name.1")->tilejson()["description"], "beta.shared_name.geom");
    EXPECT_EQ(catalog.find("two_geoms")->tilejson()["description"], "public.two_geoms.geom_a");
    EXPECT_EQ(catalog.find("two_geoms.1")->tilejson()["description"], "public.two_geoms.geom_b");
}

TEST_F(discovery, bounds_are_computed_in_wgs84) {
    auto const catalog = publish();
    auto const points = catalog.find("points")->tilejson()["bounds"];
    ASSERT_EQ(points.size(), 4U);
    EXPECT_NEAR(points[0].get<double>(), -170, 1e-6);
    EXPECT_NEAR(points[1].get<double>(), -80, 1e-6);
    EXPECT_NEAR(points[2].get<double>(), 170, 1e-6);
    EXPECT_NEAR(points[3].get<double>(), 80, 1e-6);
    // A single point has a degenerate extent, widened by one unit (degree) on each side.
    EXPECT_EQ(catalog.find("two_geoms")->tilejson()["bounds"], nlohmann::json::array({0.0, 0.0, 2.0, 2.0}));
    // Web Mercator lines transformed back to degrees.
    auto const lines = catalog.find("lines")->tilejson()["bounds"];
    EXPECT_NEAR(lines[0].get<double>(), -150, 1e-4);
    EXPECT_NEAR(lines[3].get<double>(), 60, 1e-4);
    EXPECT_FALSE(catalog.find("empty_table")->tilejson().contains("bounds"));
}

TEST_F(discovery, estimated_bounds_of_every_table_in_one_statement_match_the_query_per_table) {
    // A name that an array literal must escape: quote, backslash, comma, braces, non-ASCII.
    s_db->query(R"(CREATE TABLE "b""ounds {x}, \ ü" (gid int4, geom geometry(Point, 4326)))");
    s_db->query(
        R"(INSERT INTO "b""ounds {x}, \ ü" VALUES (1, 'SRID=4326;POINT(10 20)'), (2, 'SRID=4326;POINT(30 40)'))");
    s_db->query(R"(ANALYZE "b""ounds {x}, \ ü")");
    auto conn = connect();
    auto const tables = run(m_ioc, postgis::async_discover_tables(*conn));
    std::vector<postgis::bounds_request> requests;
    for (auto const& t : tables) {
        requests.push_back({&t, t.srid == 0 ? 3857 : t.srid});
    }
    auto const batch = run(m_ioc, postgis::async_estimated_bounds(*conn, requests));
    ASSERT_TRUE(batch.has_value()) << "the one statement failed";
    ASSERT_EQ(batch->size(), tables.size());

    std::size_t estimated = 0;
    bool hostile_seen = false;
    for (std::size_t i = 0; i < tables.size(); ++i) {
        if (!(*batch)[i]) {
            continue; // no statistics: the caller asks for the exact extent of this one
        }
        ++estimated;
        hostile_seen = hostile_seen || tables[i].table == "b\"ounds {x}, \\ ü";
        auto const single = run(m_ioc, postgis::async_table_bounds(*conn, tables[i], requests[i].srid,
                                                                   postgis::bounds_mode::quick));
        ASSERT_TRUE(single.has_value()) << tables[i].table;
        for (std::size_t k = 0; k < 4; ++k) {
            EXPECT_DOUBLE_EQ((*(*batch)[i])[k], (*single)[k]) << tables[i].table << " " << k;
        }
    }
    EXPECT_TRUE(hostile_seen);
    // The fixtures analyse five tables (03_publishing.sql) and this test one more.
    EXPECT_GE(estimated, 6U);
    s_db->query(R"(DROP TABLE "b""ounds {x}, \ ü")");
}

TEST_F(discovery, exact_bounds_in_batches_match_the_query_per_table) {
    // 60 tables without statistics (more than one statement's worth), one of them unreadable so
    // its statement fails and that chunk is asked table by table, and one empty.
    for (int i = 0; i < 60; ++i) {
        s_db->query(fmt::format("CREATE TABLE exact_{0} (gid int4, geom geometry(Point, 4326)); "
                                "INSERT INTO exact_{0} VALUES (1, 'SRID=4326;POINT({1} 1)'), (2, "
                                "'SRID=4326;POINT({2} 3)')",
                                i, i, i + 2));
    }
    s_db->query("CREATE TABLE exact_empty (gid int4, geom geometry(Point, 4326))");
    auto conn = connect();
    auto const tables = run(m_ioc, postgis::async_discover_tables(*conn));
    std::vector<postgis::bounds_request> requests;
    for (auto const& t : tables) {
        if (t.table.starts_with("exact_")) {
            requests.push_back({&t, 4326});
        }
    }
    ASSERT_EQ(requests.size(), 61U);
    test::admin_connection{s_db->name()}.query("ALTER TABLE exact_7 OWNER TO postgres");
    auto const batch = run(m_ioc, postgis::async_exact_bounds(*conn, requests));
    ASSERT_EQ(batch.size(), requests.size());
    for (std::size_t i = 0; i < requests.size(); ++i) {
        auto const& name = requests[i].table->table;
        if (name == "exact_empty" || name == "exact_7") {
            EXPECT_FALSE(batch[i].has_value()) << name;
            continue;
        }
        auto const single = run(
            m_ioc, postgis::async_table_bounds(*conn, *requests[i].table, 4326, postgis::bounds_mode::calc));
        ASSERT_TRUE(single.has_value()) << name;
        ASSERT_TRUE(batch[i].has_value()) << name;
        EXPECT_EQ(*batch[i], *single) << name;
    }
    test::admin_connection{s_db->name()}.query("DROP TABLE exact_7");
    for (int i = 0; i < 60; ++i) {
        if (i != 7) {
            s_db->query(fmt::format("DROP TABLE exact_{}", i));
        }
    }
    s_db->query("DROP TABLE exact_empty");
}

TEST_F(discovery, an_unchanged_tile_keeps_its_bytes_on_every_execution_and_connection) {
    // Big enough that a whole-world tile is read by a sequential scan when planned for its box,
    // and by the index (another row order, other bytes) under a generic plan, which PostgreSQL's
    // default plan_cache_mode may switch to from a statement's sixth execution; and that a
    // parallel plan would be worth it without kachel's session settings.
    s_db->query("CREATE TABLE stable_order (id int4 PRIMARY KEY, geom geometry(Point, 4326)); "
                "INSERT INTO stable_order SELECT g, ST_SetSRID(ST_MakePoint((g::int8 * 7919) % 360 - 180, "
                "(g::int8 * 104729) % 170 - 85), 4326) FROM generate_series(1, 50000) AS g; "
                "CREATE INDEX ON stable_order USING gist (geom); ANALYZE stable_order");
    std::map<std::string, std::string> first;
    for (int connection = 0; connection < 2; ++connection) {
        auto const catalog = publish(); // a new pool, so a new connection
        auto const* source = catalog.find("stable_order");
        ASSERT_NE(source, nullptr);
        for (int round = 0; round < 8; ++round) {
            for (tile_coord const c : {tile_coord{0, 0, 0}, tile_coord{1, 0, 0}, tile_coord{2, 1, 1}}) {
                auto const r = run(m_ioc, source->async_get_tile(c, "{}"));
                ASSERT_EQ(r.error, tiles::tile_errc::none) << r.detail;
                auto const key = fmt::format("{}/{}/{}", c.z, c.x, c.y);
                auto const [it, inserted] = first.emplace(key, r.data);
                EXPECT_TRUE(inserted || it->second == r.data)
                    << key << " changed on connection " << connection << ", round " << round << ": "
                    << it->second.size() << " -> " << r.data.size() << " bytes";
            }
        }
    }
    s_db->query("DROP TABLE stable_order");
}

TEST_F(discovery, tiles_hold_the_features_of_every_column_kind) {
    auto const catalog = publish();
    auto tile = [&](std::string const& id, tile_coord c) {
        auto r = run(m_ioc, catalog.find(id)->async_get_tile(c, "{}"));
        EXPECT_EQ(r.error, tiles::tile_errc::none) << r.detail;
        return r.data;
    };
    auto const points = tiles::decode_mvt(tile("points", {0, 0, 0}));
    ASSERT_EQ(points.size(), 1U);
    EXPECT_EQ(points[0].name, "points");
    EXPECT_EQ(points[0].extent, 4096U);
    EXPECT_EQ(points[0].features.size(), 18U * 9U);

    auto const geog = tiles::decode_mvt(tile("geog_places", {0, 0, 0}));
    ASSERT_EQ(geog.size(), 1U);
    EXPECT_EQ(geog[0].features.size(), 3U);
    // From zoom 2 the geography index filter applies: each city in its own tile.
    for (auto const& [c, title] : std::vector<std::pair<tile_coord, std::string>>{
             {{2, 2, 1}, "Zurich"}, {{2, 3, 1}, "Tokyo"}, {{2, 1, 2}, "Lima"}, {{6, 33, 22}, "Zurich"}}) {
        auto const layers = tiles::decode_mvt(tile("geog_places", c));
        ASSERT_EQ(layers.size(), 1U) << title;
        ASSERT_EQ(layers[0].features.size(), 1U) << title;
        EXPECT_EQ(layers[0].features[0].tags.at("title"), title);
    }

    auto const utm = tiles::decode_mvt(tile("utm_points", {5, 16, 11}));
    ASSERT_EQ(utm.size(), 1U);
    EXPECT_EQ(utm[0].features.size(), 2U);

    auto const mixed = tiles::decode_mvt(tile("MixedCase", {0, 0, 0}));
    ASSERT_EQ(mixed.size(), 1U);
    ASSERT_EQ(mixed[0].features.size(), 1U);
    EXPECT_EQ(mixed[0].features[0].tags.at("Name"), "Mixed");
    EXPECT_EQ(mixed[0].features[0].tags.at("Gid"), "7");

    EXPECT_TRUE(tile("empty_table", {0, 0, 0}).empty());
    EXPECT_TRUE(tile("points", {10, 0, 0}).empty());
}

TEST_F(discovery, untrusted_server_certificate_fails_with_libpq_text_and_a_hint) {
    auto const other_ca = test::cluster_env("KACHEL_PG_DIR") + "/ssl/other-ca.crt";
    auto const params = test::params_for(test::tls_url(s_db->name()), other_ca);
    try {
        (void)run(m_ioc, pg::connection::async_connect(m_ioc.get_executor(), params));
        FAIL() << "connection with an unrelated CA succeeded";
    } catch (database_error const& e) {
        std::string const msg = e.what();
        EXPECT_NE(msg.find("SSL error: certificate verify failed"), std::string::npos) << msg;
        auto const hint = pg::connection_hint(msg, params);
        EXPECT_NE(hint.find(other_ca), std::string::npos) << hint;
        EXPECT_NE(hint.find("--ca-root-file"), std::string::npos) << hint;
    }
}

TEST_F(discovery, verify_full_checks_the_host_name) {
    auto const params = test::params_for(test::tls_conninfo(s_db->name(), "127.0.0.1"));
    try {
        (void)run(m_ioc, pg::connection::async_connect(m_ioc.get_executor(), params));
        FAIL() << "verify-full accepted a certificate for another host name";
    } catch (database_error const& e) {
        EXPECT_NE(std::string{e.what()}.find("server certificate for \"localhost\" (and 1 other name) does "
                                             "not match host name \"127.0.0.1\""),
                  std::string::npos)
            << e.what();
    }
}

TEST_F(discovery, a_rediscovery_on_the_pool_sees_new_and_dropped_tables_and_keeps_the_ids) {
    s_db->query("CREATE TABLE later_a (id integer, geom geometry(Point, 4326));"
                "INSERT INTO later_a VALUES (1, 'SRID=4326;POINT(1 1)')");
    tiles::catalog catalog;
    tiles::id_resolver ids;
    postgis::readiness ready;
    auto const params = test::params_for(test::tls_conninfo(s_db->name()));
    auto const first =
        run(m_ioc, postgis::async_publish_database(m_ioc.get_executor(), params, pg::pool_options{},
                                                   std::chrono::milliseconds{0}, postgis::publish_config{},
                                                   ids, catalog, &ready));
    ASSERT_EQ(ready.pools().size(), 1U);
    auto const pool = ready.pools().front();
    s_db->query("DROP TABLE later_a; CREATE TABLE later_b (id integer, geom geometry(Point, 4326));"
                "INSERT INTO later_b VALUES (1, 'SRID=4326;POINT(2 2)')");
    auto const again =
        run(m_ioc, postgis::async_rediscover_database(postgis::read_route{pool, nullptr, nullptr},
                                                      postgis::publish_config{}, ids));
    s_db->query("DROP TABLE later_b");
    std::map<std::string, std::string> before;
    for (auto const& t : first.tables) {
        before[t.table.schema + "." + t.table.table + "." + t.table.geometry_column] = t.id;
    }
    std::map<std::string, std::string> after;
    for (auto const& t : again.tables) {
        after[t.table.schema + "." + t.table.table + "." + t.table.geometry_column] = t.id;
    }
    EXPECT_TRUE(before.contains("public.later_a.geom"));
    EXPECT_FALSE(after.contains("public.later_a.geom"));
    ASSERT_TRUE(after.contains("public.later_b.geom"));
    EXPECT_EQ(after.at("public.later_b.geom"), "later_b");
    // Every other table is found again under the id it had (the same resolver).
    for (auto const& [name, id] : before) {
        if (name != "public.later_a.geom") {
            ASSERT_TRUE(after.contains(name)) << name;
            EXPECT_EQ(after.at(name), id) << name;
        }
    }
    EXPECT_EQ(first.functions.size(), again.functions.size());
    // The connection went back with the tile connections' settings: the 31 s backstop.
    auto const setting = run(m_ioc, [pool]() -> boost::asio::awaitable<std::string> {
        auto lease = co_await pool->async_acquire();
        auto const r = co_await lease->async_exec("SHOW statement_timeout");
        co_return std::string{r.get(0, 0)};
    }());
    EXPECT_EQ(setting, "31s");
}
