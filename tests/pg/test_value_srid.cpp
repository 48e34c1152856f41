// A geometry column declared without an SRID, whose values carry their own (views and
// materialized views built with ST_GeomFromText(txt, 4326) are the usual case): each value is
// drawn where its own SRID puts it, default_srid stands in only for values without one, and the
// tile filter still uses the spatial index.

#include "postgis/publisher.hpp"
#include "postgis/table_source.hpp"
#include "support/publish.hpp"
#include "support/run.hpp"
#include "support/tempdb.hpp"
#include "tiles/mvt_decoder.hpp"

#include <gtest/gtest.h>

#include <set>

using namespace kachel;
using test::run;

namespace {

using names_t = std::set<std::string>;

class value_srid : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        s_db = std::make_unique<test::tempdb>();
        // Bern and Tokyo in degrees, Lima in Web Mercator metres, "ten" without an SRID (metres
        // of default_srid 3857: 10 E 10 N), and a value whose SRID spatial_ref_sys lacks.
        s_db->query(R"sql(
            CREATE TABLE places (id serial PRIMARY KEY, name text NOT NULL, geom geometry NOT NULL);
            INSERT INTO places (name, geom) VALUES
                ('Bern', 'SRID=4326;POINT(7.45 46.95)'),
                ('Tokyo', 'SRID=4326;POINT(139.69 35.69)'),
                ('Lima', ST_Transform('SRID=4326;POINT(-77.04 -12.05)'::geometry, 3857)),
                ('ten', 'POINT(1113194.9 1118889.97)'),
                ('stray', ST_SetSRID('POINT(7.45 46.95)'::geometry, 990001));
            CREATE INDEX places_geom_idx ON places USING gist (geom);
            CREATE MATERIALIZED VIEW places_mv AS
                SELECT id, name, ST_GeomFromText(wkt, 4326) AS geom
                FROM (VALUES (1, 'Bern', 'POINT(7.45 46.95)'), (2, 'Tokyo', 'POINT(139.69 35.69)')) AS v(id, name, wkt);
            CREATE INDEX places_mv_geom_idx ON places_mv USING gist (geom);
            CREATE TABLE empty_at_start (id serial PRIMARY KEY, name text NOT NULL, geom geometry);
            ANALYZE places, places_mv;
        )sql");
    }
    static void TearDownTestSuite() { s_db.reset(); }

    static postgis::table_config source(std::string id, std::string table, std::string filter = {}) {
        postgis::table_config t;
        t.id = std::move(id);
        t.schema = "public";
        t.table = std::move(table);
        t.properties = std::vector<std::pair<std::string, std::string>>{{"name", "text"}};
        if (!filter.empty()) {
            t.filter = std::move(filter);
        }
        return t;
    }

    tiles::catalog publish(std::vector<postgis::table_config> tables) {
        postgis::publish_config config;
        config.auto_publish.tables = false;
        config.auto_publish.functions = false;
        config.default_srid = 3857;
        return test::publish_tables(m_ioc, s_db->name(), std::move(tables), config);
    }

    names_t names(tiles::catalog const& catalog, std::string const& id, tile_coord coord) {
        auto const* src = catalog.find(id);
        EXPECT_NE(src, nullptr) << id;
        if (src == nullptr) {
            return {};
        }
        auto const r = run(m_ioc, src->async_get_tile(coord, "{}"));
        EXPECT_EQ(r.error, tiles::tile_errc::none) << r.detail;
        names_t out;
        for (auto const& layer : tiles::decode_mvt(r.data)) {
            for (auto const& f : layer.features) {
                out.insert(f.tags.at("name"));
            }
        }
        return out;
    }

    /// The plan of the source's tile statement for 6/33/22, with sequential scans priced out:
    /// a filter the index cannot serve still shows a Seq Scan.
    static std::string plan(tiles::catalog const& catalog, std::string const& id) {
        auto const* src = dynamic_cast<postgis::table_source const*>(catalog.find(id));
        EXPECT_NE(src, nullptr) << id;
        if (src == nullptr) {
            return {};
        }
        std::string out;
        for (auto const& line : s_db->query("SET enable_seqscan = off; PREPARE t(int2, int8, int8) AS " +
                                            src->sql() + "; EXPLAIN EXECUTE t(6, 33, 22)")) {
            out += line + "\n";
        }
        return out;
    }

    static std::unique_ptr<test::tempdb> s_db;
    boost::asio::io_context m_ioc;
};

std::unique_ptr<test::tempdb> value_srid::s_db;

} // namespace

TEST_F(value_srid, each_value_is_drawn_where_its_own_srid_puts_it) {
    auto const catalog = publish({source("places", "places"), source("mv", "places_mv")});
    // z6: Bern 6/33/22, Tokyo 6/56/25, Lima 6/18/34, "ten" (10 E 10 N) 6/33/30.
    EXPECT_EQ(names(catalog, "places", {6, 33, 22}), (names_t{"Bern"}));
    EXPECT_EQ(names(catalog, "places", {6, 56, 25}), (names_t{"Tokyo"}));
    EXPECT_EQ(names(catalog, "places", {6, 18, 34}), (names_t{"Lima"}));
    EXPECT_EQ(names(catalog, "places", {6, 33, 30}), (names_t{"ten"}));
    // Taking default_srid for every value would put Bern and Tokyo a few metres from (0, 0).
    EXPECT_EQ(names(catalog, "places", {6, 32, 31}), names_t{});
    // The value with an SRID PostGIS cannot transform is left out; the tile still answers.
    EXPECT_EQ(names(catalog, "places", {0, 0, 0}), (names_t{"Bern", "Tokyo", "Lima", "ten"}));
    EXPECT_EQ(names(catalog, "mv", {6, 33, 22}), (names_t{"Bern"}));
    EXPECT_EQ(names(catalog, "mv", {6, 56, 25}), (names_t{"Tokyo"}));
}

TEST_F(value_srid, the_tile_filter_uses_the_spatial_index) {
    auto const catalog = publish({source("places", "places"), source("mv", "places_mv")});
    auto const table_plan = plan(catalog, "places");
    EXPECT_NE(table_plan.find("places_geom_idx"), std::string::npos) << table_plan;
    EXPECT_EQ(table_plan.find("Seq Scan"), std::string::npos) << table_plan;
    auto const view_plan = plan(catalog, "mv");
    EXPECT_NE(view_plan.find("places_mv_geom_idx"), std::string::npos) << view_plan;
    EXPECT_EQ(view_plan.find("Seq Scan"), std::string::npos) << view_plan;
}

TEST_F(value_srid, bounds_cover_each_value_in_its_own_srid) {
    auto const catalog = publish({source("places", "places"), source("mv", "places_mv")});
    auto const& bounds = catalog.find("places")->tilejson().at("bounds");
    EXPECT_NEAR(bounds[0].get<double>(), -77.04, 0.01);
    EXPECT_NEAR(bounds[1].get<double>(), -12.05, 0.01);
    EXPECT_NEAR(bounds[2].get<double>(), 139.69, 0.01);
    EXPECT_NEAR(bounds[3].get<double>(), 46.95, 0.01);
    auto const& mv = catalog.find("mv")->tilejson().at("bounds");
    EXPECT_NEAR(mv[0].get<double>(), 7.45, 0.01);
    EXPECT_NEAR(mv[2].get<double>(), 139.69, 0.01);
}

TEST_F(value_srid, a_spatial_row_filter_compares_each_value_in_its_own_srid) {
    auto const catalog = publish({source("near", "places", "S_INTERSECTS(geom, BBOX(5, 5, 12, 50))")});
    EXPECT_EQ(names(catalog, "near", {0, 0, 0}), (names_t{"Bern", "ten"}));
    auto const& bounds = catalog.find("near")->tilejson().at("bounds");
    EXPECT_NEAR(bounds[0].get<double>(), 7.45, 0.01);
    EXPECT_NEAR(bounds[1].get<double>(), 10.0, 0.01);
    EXPECT_NEAR(bounds[3].get<double>(), 46.95, 0.01);
}

TEST_F(value_srid, rows_of_a_table_empty_at_startup_are_drawn_in_their_own_srid) {
    auto const catalog = publish({source("later", "empty_at_start")});
    s_db->query("INSERT INTO empty_at_start (name, geom) VALUES ('Bern', 'SRID=4326;POINT(7.45 46.95)'), "
                "('ten', 'POINT(1113194.9 1118889.97)')");
    EXPECT_EQ(names(catalog, "later", {6, 33, 22}), (names_t{"Bern"}));
    EXPECT_EQ(names(catalog, "later", {6, 33, 30}), (names_t{"ten"}));
    EXPECT_EQ(names(catalog, "later", {0, 0, 0}), (names_t{"Bern", "ten"}));
}
