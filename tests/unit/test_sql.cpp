#include "postgis/sql.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace kachel::postgis;

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

table_layout make_layout(table_info const& t, std::string layer = "l", tile_params geometry = {}) {
    table_layout l;
    l.layer = std::move(layer);
    l.srid = t.srid;
    l.properties = all_properties(t);
    l.geometry = geometry;
    return l;
}

std::string tile_sql(int srid, std::string layer = "l", tile_params geometry = {}, bool margin = true) {
    auto const t = make_table(srid);
    return table_tile_sql(t, make_layout(t, std::move(layer), geometry), margin);
}

} // namespace

TEST(sql, quoting_doubles_embedded_quotes) {
    EXPECT_EQ(quote_ident("a\"b"), "\"a\"\"b\"");
    EXPECT_EQ(quote_literal("it's"), "'it''s'");
}

TEST(sql, tile_query_selects_properties_in_name_order_and_quotes_everything) {
    auto const sql = tile_sql(3857, "lay'er", tile_params{}, true);
    EXPECT_NE(sql.find("ST_AsMVT(tile, 'lay''er', 4096, 'geom')"), std::string::npos) << sql;
    EXPECT_NE(sql.find("AS geom, \"gid\", \"name\" FROM \"public\".\"my \"\"table\"\"\""), std::string::npos)
        << sql;
    EXPECT_NE(sql.find("ST_Transform(ST_CurveToLine(\"geom\"::geometry), 3857)"), std::string::npos) << sql;
    EXPECT_NE(sql.find("4096, 64, true) AS geom"), std::string::npos) << sql;
}

TEST(sql, search_box_depends_on_srid) {
    auto const web = tile_sql(3857, "l", tile_params{}, true);
    EXPECT_NE(
        web.find("\"geom\" && ST_TileEnvelope($1::integer, $2::integer, $3::integer, margin => 0.015625)"),
        std::string::npos)
        << web;
    auto const old_postgis = tile_sql(3857, "l", tile_params{}, false);
    EXPECT_NE(
        old_postgis.find("&& ST_Transform(ST_TileEnvelope($1::integer, $2::integer, $3::integer), 3857)"),
        std::string::npos)
        << old_postgis;
    auto const wgs84 = tile_sql(4326, "l", tile_params{}, true);
    EXPECT_NE(
        wgs84.find("&& ST_Expand(ST_Transform(ST_TileEnvelope($1::integer, $2::integer, $3::integer), 4326), "
                   "(0.015625 * 360.0) / 2^($1::integer))"),
        std::string::npos)
        << wgs84;
    auto const utm = tile_sql(32632, "l", tile_params{}, true);
    EXPECT_NE(utm.find("&& ST_Transform(ST_TileEnvelope($1::integer, $2::integer, $3::integer), 32632)"),
              std::string::npos)
        << utm;
    auto const no_buffer = tile_sql(3857, "l", tile_params{4096, 0, true}, true);
    EXPECT_NE(no_buffer.find("&& ST_Transform(ST_TileEnvelope($1::integer, $2::integer, $3::integer), 3857)"),
              std::string::npos)
        << no_buffer;
}

TEST(sql, bounds_query_quick_uses_parameters_exact_quotes_names) {
    auto const quick = table_bounds_sql(make_table(4326), 4326, true);
    EXPECT_NE(quick.find("ST_EstimatedExtent($1, $2, $3)"), std::string::npos);
    auto const exact = table_bounds_sql(make_table(4326), 4326, false);
    EXPECT_NE(exact.find("FROM \"public\".\"my \"\"table\"\"\""), std::string::npos);
    EXPECT_NE(exact.find("ST_Expand(e, 1)"), std::string::npos);
}

TEST(sql, array_literals_quote_every_item_and_escape_quotes_and_backslashes) {
    std::vector<std::string> const items{"a", "b\"c", "d\\e", "", ",{}", "NULL"};
    // Quoted, "NULL" stays the text NULL and an empty item stays an empty string.
    EXPECT_EQ(array_literal(items), R"({"a","b\"c","d\\e","",",{}","NULL"})");
    EXPECT_EQ(array_literal({}), "{}");
}

TEST(sql, geography_filter_is_clipped_and_skipped_at_low_zoom) {
    auto table = make_table(4326);
    table.is_geography = true;
    auto const sql = table_tile_sql(table, make_layout(table), true);
    EXPECT_NE(sql.find("CASE WHEN $1::integer < 2 THEN true ELSE \"geom\" && ST_ClipByBox2D("),
              std::string::npos)
        << sql;
}

TEST(sql, configured_columns_are_aliased_and_the_id_column_is_passed_to_st_asmvt) {
    auto const t = make_table(4326);
    table_layout l = make_layout(t, "layer");
    l.id_column = published_column{"gid", "Id", "int4"};
    l.properties = {{"name", "Label", "text"}};
    l.budget.max_feature_count = per_zoom<std::uint64_t>::everywhere(100);
    auto const sql = table_tile_sql(t, l, true);
    EXPECT_NE(sql.find("ST_AsMVT(tile, 'layer', 4096, 'geom', 'Id')"), std::string::npos) << sql;
    EXPECT_NE(sql.find("AS geom, \"gid\" AS \"Id\", \"name\" AS \"Label\" FROM"), std::string::npos) << sql;
    EXPECT_NE(sql.find(" LIMIT 100) AS tile"), std::string::npos) << sql;
}

TEST(sql, a_column_without_srid_draws_each_value_in_its_own_and_filters_one_srid_per_arm) {
    auto t = make_table(0);
    auto l = make_layout(t);
    l.srid = 900913;
    l.value_srids = {0, 4326};
    auto const sql = table_tile_sql(t, l, true);
    // The configured SRID stands in only for values without one.
    EXPECT_NE(
        sql.find("ST_CurveToLine(CASE WHEN ST_SRID(\"geom\") = 0 THEN ST_SetSRID(\"geom\", 900913) ELSE "
                 "\"geom\" END)"),
        std::string::npos)
        << sql;
    // The bare column on the left of && in every arm: the spatial index serves each.
    EXPECT_NE(
        sql.find("WHERE ((ST_SRID(\"geom\") = 0 AND \"geom\" && ST_Transform(ST_TileEnvelope($1::integer, "
                 "$2::integer, $3::integer), 900913)) OR (ST_SRID(\"geom\") = 4326 AND \"geom\" && "
                 "ST_Expand(ST_Transform("),
        std::string::npos)
        << sql;
    EXPECT_EQ(sql.find("ST_SetSRID(\"geom\", 900913) &&"), std::string::npos) << sql;

    // SRIDs not known (none read): every row transformed, still correct.
    l.value_srids.clear();
    EXPECT_NE(table_tile_sql(t, l, true).find("WHERE ST_Transform(CASE WHEN"), std::string::npos);
}

TEST(sql, function_query_passes_the_query_object_with_its_declared_type) {
    function_info f;
    f.schema = "my schema";
    f.function = "Tiles\"fn";
    EXPECT_EQ(function_tile_sql(f),
              "SELECT * FROM \"my schema\".\"Tiles\"\"fn\"($1::integer, $2::integer, $3::integer)");
    f.query_type = "jsonb";
    EXPECT_EQ(
        function_tile_sql(f),
        "SELECT * FROM \"my schema\".\"Tiles\"\"fn\"($1::integer, $2::integer, $3::integer, $4::jsonb)");
}
