// Tile budgets (`order_by`, `max_feature_count`, `thin_points`, `simplify`, per zoom) against a
// real PostGIS: the tiles are decoded, their features counted and ranked, and their polygons
// handed back to PostGIS to check that they are valid.

#include "core/error.hpp"
#include "postgis/publisher.hpp"
#include "postgis/table_source.hpp"
#include "support/publish.hpp"
#include "support/run.hpp"
#include "support/tempdb.hpp"
#include "tiles/mvt_decoder.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>

using namespace kachel;
using test::run;

namespace {

class budgets : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        s_db = std::make_unique<test::tempdb>();
        // 2,500 places over the world with populations in a scrambled order (every 97th without
        // one); polygons from a 1,000-vertex circle to squares under a pixel at zoom 0; lines.
        s_db->query(R"sql(
            CREATE TABLE places (id serial PRIMARY KEY, name text, pop integer,
                                 geom geometry(Point, 4326) NOT NULL);
            INSERT INTO places (name, pop, geom)
            SELECT 'p' || i, CASE WHEN i % 97 = 0 THEN NULL ELSE (i * 7919) % 100003 END,
                   ST_SetSRID(ST_MakePoint(-179.3 + (i % 50) * 7.17 + (i % 7) * 0.311,
                                           -79.1 + (i / 50) * 3.17 + (i % 11) * 0.137), 4326)
            FROM generate_series(0, 2499) AS i;
            CREATE INDEX places_geom_idx ON places USING gist (geom);

            CREATE TABLE shapes (id serial PRIMARY KEY, kind text, geom geometry(Geometry, 4326) NOT NULL);
            INSERT INTO shapes (kind, geom) VALUES
                ('circle', ST_Buffer(ST_SetSRID(ST_MakePoint(20, 10), 4326), 15, 250)),
                ('holed', ST_SetSRID(ST_GeomFromText('POLYGON((-60 -40, -20 -40, -20 0, -60 0, -60 -40),
                    (-59.9 -39.9, -59.9 -0.1, -40 -0.2, -20.1 -0.1, -20.1 -39.9, -40 -39.8, -59.9 -39.9))'), 4326)),
                ('big', ST_SetSRID(ST_MakeEnvelope(100, 30, 104, 34), 4326)),
                ('zigzag', ST_SetSRID(ST_MakeLine(ARRAY(
                    SELECT ST_MakePoint(-170 + k * 0.25, 50 + (k % 2) * 0.05) FROM generate_series(0, 400) AS k)),
                    4326));
            INSERT INTO shapes (kind, geom)
            SELECT 'speck', ST_SetSRID(ST_MakeEnvelope(-150 + k * 2, -60, -149.5 + k * 2, -59.5), 4326)
            FROM generate_series(0, 19) AS k;
            INSERT INTO shapes (kind, geom)
            SELECT 'dash', ST_SetSRID(ST_MakeLine(ST_MakePoint(-150 + k * 2, -70), ST_MakePoint(-149.6 + k * 2, -70)),
                                      4326)
            FROM generate_series(0, 19) AS k;
            CREATE INDEX shapes_geom_idx ON shapes USING gist (geom);
            CREATE TABLE areas (id serial PRIMARY KEY, geom geometry(Polygon, 4326) NOT NULL);
            ANALYZE places;
            ANALYZE shapes;
        )sql");
    }
    static void TearDownTestSuite() { s_db.reset(); }

    static postgis::table_config places(std::string id) {
        postgis::table_config t;
        t.id = std::move(id);
        t.schema = "public";
        t.table = "places";
        t.properties = std::vector<std::pair<std::string, std::string>>{{"name", "text"}, {"pop", "int4"}};
        return t;
    }

    static postgis::table_config shapes(std::string id) {
        postgis::table_config t;
        t.id = std::move(id);
        t.schema = "public";
        t.table = "shapes";
        t.properties = std::vector<std::pair<std::string, std::string>>{{"kind", "text"}};
        return t;
    }

    tiles::catalog publish(std::vector<postgis::table_config> tables) {
        postgis::publish_config config;
        config.auto_publish.tables = false;
        config.auto_publish.functions = false;
        config.auto_bounds = postgis::bounds_mode::skip;
        return test::publish_tables(m_ioc, s_db->name(), std::move(tables), config);
    }

    std::string publish_error(postgis::table_config table) {
        try {
            publish({std::move(table)});
        } catch (config_error const& e) {
            return e.what();
        }
        return {};
    }

    std::vector<tiles::mvt_feature> features(tiles::catalog const& catalog, std::string const& id,
                                             tile_coord c) {
        auto const* src = catalog.find(id);
        EXPECT_NE(src, nullptr) << id;
        if (src == nullptr) {
            return {};
        }
        auto const r = run(m_ioc, src->async_get_tile(c, "{}"));
        EXPECT_EQ(r.error, tiles::tile_errc::none) << r.detail;
        auto const layers = tiles::decode_mvt(r.data);
        return layers.empty() ? std::vector<tiles::mvt_feature>{} : layers.front().features;
    }

    static std::unique_ptr<test::tempdb> s_db;
    boost::asio::io_context m_ioc;
};

std::unique_ptr<test::tempdb> budgets::s_db;

postgis::per_zoom<std::uint64_t> counts(std::map<int, std::uint64_t> const& by_zoom) {
    postgis::per_zoom<std::uint64_t> out;
    for (auto const& [z, n] : by_zoom) {
        out.values[static_cast<std::size_t>(z)] = n;
    }
    return out;
}

/// The feature's decoded parts as a MULTIPOLYGON in tile coordinates: a ring with positive
/// area in tile coordinates (y down) starts a polygon (MVT 4.3.4.4), the others are its holes.
std::string polygon_wkt(tiles::mvt_feature const& f) {
    std::vector<std::string> polygons;
    for (auto const& ring : tiles::decode_geometry(f.geometry)) {
        double area = 0;
        std::string points;
        for (std::size_t i = 0; i + 2 < ring.size(); i += 2) {
            area += static_cast<double>(ring[i] * ring[i + 3] - ring[i + 2] * ring[i + 1]);
        }
        for (std::size_t i = 0; i + 1 < ring.size(); i += 2) {
            points += fmt::format("{}{} {}", i == 0 ? "" : ", ", ring[i], ring[i + 1]);
        }
        if (area > 0 || polygons.empty()) {
            polygons.push_back("((" + points + ")");
        } else {
            polygons.back() += ", (" + points + ")";
        }
    }
    std::string out = "MULTIPOLYGON(";
    for (std::size_t i = 0; i < polygons.size(); ++i) {
        out += (i == 0 ? "" : ", ") + polygons[i] + ")";
    }
    return out + ")";
}

std::size_t vertices(tiles::mvt_feature const& f) {
    std::size_t n = 0;
    for (auto const& part : tiles::decode_geometry(f.geometry)) {
        n += part.size() / 2;
    }
    return n;
}

std::multiset<std::string> kinds(std::vector<tiles::mvt_feature> const& fs) {
    std::multiset<std::string> out;
    for (auto const& f : fs) {
        out.insert(f.tags.at("kind"));
    }
    return out;
}

} // namespace

TEST_F(budgets, order_by_with_max_feature_count_keeps_the_best_ranked_features) {
    auto biggest = places("biggest");
    biggest.order_by = {{"POP", true}}; // matched to the column ignoring case
    biggest.max_feature_count = counts({{0, 10}, {1, 40}});
    auto smallest = places("smallest");
    smallest.order_by = {{"pop", false}, {"name", false}};
    smallest.max_feature_count = postgis::per_zoom<std::uint64_t>::everywhere(3);
    auto const catalog = publish({biggest, smallest});

    auto const expected = s_db->query("SELECT name FROM places ORDER BY pop DESC NULLS LAST LIMIT 10");
    std::vector<std::string> got;
    for (auto const& f : features(catalog, "biggest", {0, 0, 0})) {
        got.push_back(f.tags.at("name"));
    }
    EXPECT_EQ(got, expected) << "the ten most populous, in order";
    EXPECT_EQ(s_db->query("SELECT count(*) FROM places WHERE pop >= 99990")[0], "0")
        << "the test data must leave room below the limit";

    // Zoom 1 has its own limit; zoom 2 has none: every place in the tile is there.
    EXPECT_EQ(features(catalog, "biggest", {1, 0, 0}).size(), 40U);
    auto const z2 = features(catalog, "biggest", {2, 1, 1});
    auto const in_tile = std::stoul(s_db->query("SELECT count(*) FROM places WHERE ST_Transform(geom, 3857) "
                                                "&& ST_TileEnvelope(2, 1, 1, margin => 64.0 / "
                                                "4096)")[0]);
    EXPECT_EQ(z2.size(), in_tile);
    EXPECT_GT(in_tile, 40U);

    // Ascending: the smallest first, and a place without a population never before one with it.
    std::vector<std::string> small;
    for (auto const& f : features(catalog, "smallest", {0, 0, 0})) {
        small.push_back(f.tags.at("name"));
    }
    EXPECT_EQ(small, s_db->query("SELECT name FROM places ORDER BY pop ASC NULLS LAST, name LIMIT 3"));
}

TEST_F(budgets, thin_points_keeps_one_point_per_cell_and_the_best_ranked_one) {
    auto thinned = places("thinned");
    thinned.order_by = {{"pop", true}};
    thinned.thin_points = postgis::per_zoom<double>{};
    thinned.thin_points->values[0] = 32; // 8 x 8 cells at zoom 0; none from zoom 1
    auto const catalog = publish({thinned});

    auto const fs = features(catalog, "thinned", {0, 0, 0});
    constexpr std::int64_t cell = 32 * 4096 / 256; // tile units
    std::map<std::pair<std::int64_t, std::int64_t>, std::string> seen;
    double const world = 40075016.68557849;
    for (auto const& f : fs) {
        auto const part = tiles::decode_geometry(f.geometry).at(0);
        auto const x = part[0];
        auto const y = part[1];
        ASSERT_TRUE(x >= 0 && x <= 4096 && y >= 0 && y <= 4096) << "no point comes from the buffer at zoom 0";
        if (x % cell == 0 || y % cell == 0) {
            continue; // rounded onto a cell edge: its cell is not known from the tile
        }
        auto const key = std::pair{x / cell, y / cell};
        EXPECT_FALSE(seen.contains(key)) << f.tags.at("name") << " shares a cell with " << seen[key];
        seen[key] = f.tags.at("name");
        // The best ranked of the cell, asked of PostGIS with the cell's box.
        double const size = world * 32 / 256;
        double const west = -world / 2 + static_cast<double>(key.first) * size;
        double const north = world / 2 - static_cast<double>(key.second) * size;
        auto const best = s_db->query(fmt::format("SELECT max(pop) FROM places WHERE ST_Transform(geom, "
                                                  "3857) && ST_MakeEnvelope({}, {}, {}, {}, 3857)",
                                                  west + 1, north - size + 1, west + size - 1, north - 1));
        EXPECT_EQ(f.tags.at("pop"), best.at(0)) << f.tags.at("name");
    }
    EXPECT_GT(seen.size(), 40U);
    EXPECT_LE(fs.size(), 64U);
    auto const in_tile = s_db->query("SELECT count(*) FROM places WHERE ST_Transform(geom, 3857) && "
                                     "ST_TileEnvelope(1, 1, 0, margin => 64.0 / 4096)")[0];
    EXPECT_EQ(std::to_string(features(catalog, "thinned", {1, 1, 0}).size()), in_tile)
        << "zoom 1 is not thinned";
}

TEST_F(budgets, simplify_shrinks_lines_and_polygons_keeps_them_valid_and_drops_specks) {
    auto plain = shapes("plain");
    auto simple = shapes("simple");
    simple.simplify = postgis::per_zoom<double>::everywhere(1);
    auto coarse = shapes("coarse");
    coarse.simplify = postgis::per_zoom<double>::everywhere(8);
    auto const catalog = publish({plain, simple, coarse});

    auto const before = features(catalog, "plain", {0, 0, 0});
    auto const after = features(catalog, "simple", {0, 0, 0});
    EXPECT_EQ(kinds(before).count("speck"), 20U)
        << "without simplify, squares of a third of a pixel are drawn";
    EXPECT_EQ(kinds(before).count("dash"), 20U);
    EXPECT_EQ(kinds(after).count("speck"), 0U) << "under a pixel: dropped";
    EXPECT_EQ(kinds(after).count("dash"), 0U);
    for (auto const* kind : {"circle", "holed", "big", "zigzag"}) {
        EXPECT_EQ(kinds(after).count(kind), 1U) << kind;
    }
    std::map<std::string, std::size_t> size_before;
    for (auto const& f : before) {
        size_before[f.tags.at("kind")] = vertices(f);
    }
    for (auto const& f : after) {
        auto const& kind = f.tags.at("kind");
        if (kind == "circle" || kind == "zigzag") {
            EXPECT_LT(vertices(f) * 3, size_before[kind])
                << kind << ": " << vertices(f) << " of " << size_before[kind];
        }
    }
    // Every polygon of every simplified tile is valid, as PostGIS judges it.
    for (auto const& id : {"simple", "coarse"}) {
        for (tile_coord const c :
             {tile_coord{0, 0, 0}, tile_coord{1, 0, 1}, tile_coord{2, 1, 2}, tile_coord{3, 5, 3}}) {
            for (auto const& f : features(catalog, id, c)) {
                if (f.geometry_type != 3) {
                    continue;
                }
                auto const wkt = polygon_wkt(f);
                EXPECT_EQ(s_db->query("SELECT ST_IsValidReason(ST_GeomFromText('" + wkt + "'))").at(0),
                          "Valid Geometry")
                    << id << " " << f.tags.at("kind") << " at " << c.z << "/" << c.x << "/" << c.y << ": "
                    << wkt;
            }
        }
    }
}

TEST_F(budgets, budgets_keep_the_spatial_index_usable) {
    auto t = places("ranked");
    t.order_by = {{"pop", true}};
    t.max_feature_count = postgis::per_zoom<std::uint64_t>::everywhere(5);
    t.thin_points = postgis::per_zoom<double>::everywhere(16);
    auto const catalog = publish({t});
    auto const* src = dynamic_cast<postgis::table_source const*>(catalog.find("ranked"));
    ASSERT_NE(src, nullptr);
    std::string plan;
    for (auto const& line : s_db->query("SET enable_seqscan = off; PREPARE t(int2, int8, int8) AS " +
                                        src->sql(6) + "; EXPLAIN EXECUTE t(6, 33, 22)")) {
        plan += line + "\n";
    }
    EXPECT_NE(plan.find("places_geom_idx"), std::string::npos) << plan;
}

TEST_F(budgets, a_budget_that_does_not_fit_the_table_stops_startup_naming_the_key) {
    auto t = places("typo");
    t.order_by = {{"population", true}};
    auto text = publish_error(t);
    EXPECT_NE(text.find("tables.typo.order_by names 'population', which is not a column of public.places"),
              std::string::npos)
        << text;
    auto areas = shapes("areas");
    areas.table = "areas";
    areas.properties.reset();
    areas.thin_points = postgis::per_zoom<double>::everywhere(8);
    text = publish_error(areas);
    EXPECT_NE(text.find("tables.areas.thin_points thins points, but public.areas.geom holds POLYGON"),
              std::string::npos)
        << text;
    auto simplified = places("simplified");
    simplified.simplify = postgis::per_zoom<double>::everywhere(1);
    text = publish_error(simplified);
    EXPECT_NE(
        text.find("tables.simplified.simplify simplifies lines and polygons, but public.places.geom holds "
                  "POINT"),
        std::string::npos)
        << text;
}

TEST_F(budgets, thinning_a_mixed_column_thins_its_points_only) {
    auto mixed = shapes("mixed");
    mixed.thin_points = postgis::per_zoom<double>::everywhere(64);
    auto const catalog = publish({mixed, shapes("plain")});
    EXPECT_EQ(kinds(features(catalog, "mixed", {0, 0, 0})), kinds(features(catalog, "plain", {0, 0, 0})));
}
