#include "postgres/sql.hpp"

#include <gtest/gtest.h>

using namespace kachel::postgres;

namespace {

table_info make_table(int srid) {
    table_info t;
    t.schema = "public";
    t.table = "my \"table\"";
    t.geometry_column = "geom";
    t.srid = srid;
    t.properties = {{"name", "text"}, {"gid", "int4"}};
    return t;
}

} // namespace

TEST(sql, quoting_doubles_embedded_quotes) {
    EXPECT_EQ(quote_ident("a\"b"), "\"a\"\"b\"");
    EXPECT_EQ(quote_literal("it's"), "'it''s'");
}

TEST(sql, tile_query_selects_properties_in_name_order_and_quotes_everything) {
    auto const sql = table_tile_sql(make_table(3857), "lay'er", tile_params{}, true);
    EXPECT_NE(sql.find("ST_AsMVT(tile, 'lay''er', 4096, 'geom')"), std::string::npos) << sql;
    EXPECT_NE(sql.find("AS geom, \"gid\", \"name\" FROM \"public\".\"my \"\"table\"\"\""), std::string::npos)
        << sql;
    EXPECT_NE(sql.find("ST_Transform(ST_CurveToLine(\"geom\"::geometry), 3857)"), std::string::npos) << sql;
    EXPECT_NE(sql.find("4096, 64, true) AS geom"), std::string::npos) << sql;
}

TEST(sql, search_box_depends_on_srid) {
    auto const web = table_tile_sql(make_table(3857), "l", tile_params{}, true);
    EXPECT_NE(
        web.find("\"geom\" && ST_TileEnvelope($1::integer, $2::integer, $3::integer, margin => 0.015625)"),
        std::string::npos)
        << web;
    auto const old_postgis = table_tile_sql(make_table(3857), "l", tile_params{}, false);
    EXPECT_NE(
        old_postgis.find("&& ST_Transform(ST_TileEnvelope($1::integer, $2::integer, $3::integer), 3857)"),
        std::string::npos)
        << old_postgis;
    auto const wgs84 = table_tile_sql(make_table(4326), "l", tile_params{}, true);
    EXPECT_NE(
        wgs84.find("&& ST_Expand(ST_Transform(ST_TileEnvelope($1::integer, $2::integer, $3::integer), 4326), "
                   "(0.015625 * 360.0) / 2^($1::integer))"),
        std::string::npos)
        << wgs84;
    auto const utm = table_tile_sql(make_table(32632), "l", tile_params{}, true);
    EXPECT_NE(utm.find("&& ST_Transform(ST_TileEnvelope($1::integer, $2::integer, $3::integer), 32632)"),
              std::string::npos)
        << utm;
    auto const no_buffer = table_tile_sql(make_table(3857), "l", tile_params{4096, 0, true}, true);
    EXPECT_NE(no_buffer.find("&& ST_Transform(ST_TileEnvelope($1::integer, $2::integer, $3::integer), 3857)"),
              std::string::npos)
        << no_buffer;
}

TEST(sql, bounds_query_quick_uses_parameters_exact_quotes_names) {
    auto const quick = table_bounds_sql(make_table(4326), true);
    EXPECT_NE(quick.find("ST_EstimatedExtent($1, $2, $3)"), std::string::npos);
    auto const exact = table_bounds_sql(make_table(4326), false);
    EXPECT_NE(exact.find("FROM \"public\".\"my \"\"table\"\"\""), std::string::npos);
    EXPECT_NE(exact.find("ST_Expand(e, 1)"), std::string::npos);
}

TEST(sql, geography_filter_is_clipped_and_skipped_at_low_zoom) {
    auto table = make_table(4326);
    table.is_geography = true;
    auto const sql = table_tile_sql(table, "l", tile_params{}, true);
    EXPECT_NE(sql.find("CASE WHEN $1::integer < 2 THEN true ELSE \"geom\" && ST_ClipByBox2D("),
              std::string::npos)
        << sql;
}
