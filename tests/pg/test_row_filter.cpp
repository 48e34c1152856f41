// Row filters (`tables.<id>.filter`, CQL2) against a real PostGIS: what is served, the bounds,
// the index, and a hostile corpus that must neither change the database nor widen what is served.

#include "core/error.hpp"
#include "postgis/publisher.hpp"
#include "postgis/row_filter.hpp"
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

class row_filter : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        s_db = std::make_unique<test::tempdb>();
        s_db->query(R"sql(
            CREATE TABLE cities (
                id serial PRIMARY KEY, name text, pop integer, capital boolean, founded date,
                geom geometry(Point, 4326) NOT NULL);
            INSERT INTO cities (name, pop, capital, founded, geom) VALUES
                ('Bern', 134000, true, '1191-01-01', ST_SetSRID(ST_MakePoint(7.45, 46.95), 4326)),
                ('Zurich', 421000, false, '0015-01-01', ST_SetSRID(ST_MakePoint(8.54, 47.37), 4326)),
                ('Tokyo', 13960000, true, '1457-01-01', ST_SetSRID(ST_MakePoint(139.69, 35.69), 4326)),
                ('Lima', 9750000, true, '1535-01-18', ST_SetSRID(ST_MakePoint(-77.04, -12.05), 4326)),
                ('O''Higgins', 500, false, NULL, ST_SetSRID(ST_MakePoint(-72.6, -48.5), 4326));
            CREATE INDEX cities_geom_idx ON cities USING gist (geom);
            CREATE TABLE sentinel (n integer);
            INSERT INTO sentinel VALUES (1), (2), (3);
            ANALYZE cities;
        )sql");
    }
    static void TearDownTestSuite() { s_db.reset(); }

    static postgis::table_config source(std::string id, std::string filter) {
        postgis::table_config t;
        t.id = std::move(id);
        t.schema = "public";
        t.table = "cities";
        t.properties = std::vector<std::pair<std::string, std::string>>{{"name", "text"}};
        t.filter = std::move(filter);
        return t;
    }

    /// Publishes `tables` (with auto-publishing of tables on or off) into a fresh catalog.
    tiles::catalog publish(std::vector<postgis::table_config> tables, bool auto_tables = false) {
        postgis::publish_config config;
        config.auto_publish.tables = auto_tables;
        config.auto_publish.functions = false;
        config.auto_bounds = postgis::bounds_mode::calc;
        return test::publish_tables(m_ioc, s_db->name(), std::move(tables), config);
    }

    /// The names in the source's tile 0/0/0.
    std::set<std::string> names(tiles::catalog const& catalog, std::string const& id) {
        auto const* src = catalog.find(id);
        EXPECT_NE(src, nullptr) << id;
        if (src == nullptr) {
            return {};
        }
        auto const r = run(m_ioc, src->async_get_tile({0, 0, 0}, "{}"));
        EXPECT_EQ(r.error, tiles::tile_errc::none) << r.detail;
        std::set<std::string> out;
        for (auto const& layer : tiles::decode_mvt(r.data)) {
            for (auto const& f : layer.features) {
                out.insert(f.tags.at("name"));
            }
        }
        return out;
    }

    /// What publishing `filter` says: empty when it starts, else the error text.
    std::string publish_error(std::string const& filter) {
        try {
            publish({source("f", filter)});
        } catch (config_error const& e) {
            return e.what();
        }
        return {};
    }

    static std::unique_ptr<test::tempdb> s_db;
    boost::asio::io_context m_ioc;
};

std::unique_ptr<test::tempdb> row_filter::s_db;

using names_t = std::set<std::string>;

} // namespace

TEST_F(row_filter, the_same_table_under_two_ids_serves_two_row_sets) {
    auto const catalog =
        publish({source("big", "pop > 1000000"), source("small", "pop <= 1000000 OR pop IS NULL")});
    EXPECT_EQ(names(catalog, "big"), (names_t{"Tokyo", "Lima"}));
    EXPECT_EQ(names(catalog, "small"), (names_t{"Bern", "Zurich", "O'Higgins"}));
}

TEST_F(row_filter, every_form_selects_what_cql2_says) {
    std::vector<std::pair<std::string, names_t>> const cases{
        {"name = 'O''Higgins'", {"O'Higgins"}},
        {"capital AND NOT (name LIKE 'B%')", {"Tokyo", "Lima"}},
        {"name IN ('Bern', 'Lima', 'Paris')", {"Bern", "Lima"}},
        {"name NOT IN ('Bern', 'Lima')", {"Zurich", "Tokyo", "O'Higgins"}},
        {"pop BETWEEN 100000 AND 500000", {"Bern", "Zurich"}},
        {"founded IS NULL", {"O'Higgins"}},
        {"founded > DATE('1500-01-01')", {"Lima"}},
        {"pop < 134000.5 AND pop > 133999.5", {"Bern"}},
        {"S_INTERSECTS(geom, BBOX(5, 45, 10, 48))", {"Bern", "Zurich"}},
        {"S_WITHIN(geom, POLYGON((-80 -50, -70 -50, -70 -10, -80 -10, -80 -50)))", {"Lima", "O'Higgins"}},
        {"S_DISJOINT(geom, BBOX(-180, -90, 0, 90))", {"Bern", "Zurich", "Tokyo"}},
        {"\"name\" = 'Tokyo' OR S_INTERSECTS(geom, POINT(-77.04 -12.05))", {"Tokyo", "Lima"}},
    };
    std::vector<postgis::table_config> tables;
    for (std::size_t i = 0; i < cases.size(); ++i) {
        tables.push_back(source("case" + std::to_string(i), cases[i].first));
    }
    auto const catalog = publish(tables);
    for (std::size_t i = 0; i < cases.size(); ++i) {
        EXPECT_EQ(names(catalog, "case" + std::to_string(i)), cases[i].second) << cases[i].first;
    }
}

TEST_F(row_filter, bounds_follow_the_filter) {
    auto const catalog = publish({source("swiss", "S_INTERSECTS(geom, BBOX(5, 45, 10, 48))")});
    auto const& bounds = catalog.find("swiss")->tilejson().at("bounds");
    // Bern and Zurich only: about 7.45..8.54 east, 46.95..47.37 north.
    EXPECT_NEAR(bounds[0].get<double>(), 7.45, 0.01);
    EXPECT_NEAR(bounds[1].get<double>(), 46.95, 0.01);
    EXPECT_NEAR(bounds[2].get<double>(), 8.54, 0.01);
    EXPECT_NEAR(bounds[3].get<double>(), 47.37, 0.01);
}

TEST_F(row_filter, a_filtered_table_is_not_auto_published_again_without_its_filter) {
    auto const catalog = publish({source("big", "pop > 1000000")}, true);
    EXPECT_EQ(catalog.find("cities"), nullptr);
    EXPECT_EQ(names(catalog, "big"), (names_t{"Tokyo", "Lima"}));
}

TEST_F(row_filter, a_filter_that_does_not_fit_the_table_stops_startup) {
    auto text = publish_error("population > 5");
    EXPECT_NE(text.find("'population' is not a column of public.cities"), std::string::npos) << text;
    EXPECT_NE(text.find("row filter(s) cannot be applied"), std::string::npos) << text;
    text = publish_error("pop = 'many'");
    EXPECT_NE(text.find("does not fit public.cities"), std::string::npos) << text;
    EXPECT_NE(text.find("invalid input syntax for type integer"), std::string::npos) << text;
    text = publish_error("name > 5");
    EXPECT_NE(text.find("operator does not exist"), std::string::npos) << text;
    text = publish_error("S_INTERSECTS(geom, POLYGON((0 0, 1 1)))");
    EXPECT_FALSE(text.empty()) << "an unclosed polygon ring is refused";
}

TEST_F(row_filter, the_spatial_filter_keeps_the_gist_index_usable) {
    auto const catalog = publish({source("swiss", "S_INTERSECTS(geom, BBOX(5, 45, 10, 48)) AND pop > 1")});
    auto const* src = dynamic_cast<postgis::table_source const*>(catalog.find("swiss"));
    ASSERT_NE(src, nullptr);
    auto const filter = postgis::compile_filter(*src->spec().filter, src->spec().table, 4326, 4);
    std::string sql = "SET enable_seqscan = off; PREPARE t(int2, int8, int8";
    for (std::size_t i = 0; i < filter.params.size(); ++i) {
        sql += ", unknown";
    }
    sql += ") AS " + src->sql() + "; EXPLAIN EXECUTE t(6, 33, 22";
    for (auto const& p : filter.params) {
        sql += ", '" + p + "'";
    }
    sql += ")";
    std::string plan;
    for (auto const& line : s_db->query(sql)) {
        plan += line + "\n";
    }
    EXPECT_NE(plan.find("cities_geom_idx"), std::string::npos) << plan;
}

TEST_F(row_filter, a_hostile_corpus_changes_nothing_and_never_widens_what_is_served) {
    auto const before =
        s_db->query("SELECT count(*) FROM sentinel")[0] + "/" +
        s_db->query("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace")[0];
    std::vector<std::string> const corpus{
        "name = 'x'; DROP TABLE sentinel; --'",
        "name = 'x''; DROP TABLE sentinel; --'",
        "name = 'x'' OR ''1''=''1'",
        "name = 'x' -- OR true",
        "name = 'x' /* */ OR true",
        "name = 'a' OR name::text = 'b'",
        "name = pg_sleep(1)",
        "pg_terminate_backend(1) = true",
        "name IN (SELECT name FROM cities)",
        "name = (SELECT 'Bern')",
        "\"name\"\" OR 1=1 OR \"\"name\" = 'x'",
        "\"name; DROP TABLE sentinel\" = 'x'",
        "name = E'\\x27 OR 1=1'",
        "name = $$x$$ OR true",
        "name = 'x' UNION SELECT 1",
        "S_INTERSECTS(geom, POINT(1 2); DROP TABLE sentinel)",
        "S_INTERSECTS(geom, POLYGON((0 0, 1 0, 1 1, 0 0)) OR TRUE)",
        "name LIKE '%' ESCAPE '\\'",
        "name = 'x' AND TRUE OR FALSE; DELETE FROM sentinel",
        "founded > DATE('2020-01-01''); DROP TABLE sentinel; --')",
        "pop > 1e999999",
        "name = chr(39)",
        "name = 'Bern'::text",
        "name COLLATE \"C\" = 'x'",
        "name = 'x' \\g",
    };
    for (auto const& filter : corpus) {
        names_t served;
        try {
            served = names(publish({source("h", filter)}), "h");
        } catch (config_error const&) {
            continue; // refused at startup: nothing is served
        }
        // It started: the filter was read as literals only, which match no city here.
        EXPECT_TRUE(served.empty()) << filter;
    }
    auto const after =
        s_db->query("SELECT count(*) FROM sentinel")[0] + "/" +
        s_db->query("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace")[0];
    EXPECT_EQ(before, after);
}
