// CQL2 Text filters: what parses, where a bad one fails, and the SQL it compiles to, with every
// literal a bound parameter.

#include "postgis/cql2.hpp"
#include "postgis/row_filter.hpp"

#include <gtest/gtest.h>

using namespace kachel::postgis;

namespace {

table_info cities(int srid = 4326) {
    table_info t;
    t.schema = "public";
    t.table = "cities";
    t.geometry_column = "geom";
    t.srid = srid;
    t.properties = {{"name", "text"},    {"pop", "int4"},         {"area", "float8"},    {"capital", "bool"},
                    {"founded", "date"}, {"seen", "timestamptz"}, {"Mixed Case", "text"}};
    return t;
}

row_filter compiled(std::string const& text, int srid = 4326) {
    return compile_filter(*cql2::parse(text), cities(srid), srid, 4);
}

/// The position a filter fails at (parse or compile), or npos when it does not fail.
std::size_t failure_at(std::string const& text) {
    try {
        (void)compiled(text);
    } catch (cql2::filter_error const& e) {
        return e.position();
    }
    return std::string::npos;
}

std::string failure_text(std::string const& text) {
    try {
        (void)compiled(text);
    } catch (cql2::filter_error const& e) {
        return e.what();
    }
    return {};
}

} // namespace

TEST(row_filter, comparisons_bind_every_literal) {
    auto f = compiled("pop > 1000");
    EXPECT_EQ(f.sql, R"(("pop" > $4))");
    EXPECT_EQ(f.params, (std::vector<std::string>{"1000"}));

    f = compiled("name = 'O''Brien' AND NOT capital");
    EXPECT_EQ(f.sql, R"((("name" = $4) AND (NOT ("capital" IS TRUE))))");
    EXPECT_EQ(f.params, (std::vector<std::string>{"O'Brien"}));

    f = compiled("pop <> 3 or (area >= -2.5e3 AND \"Mixed Case\" <= 'x')");
    EXPECT_EQ(f.sql, R"((("pop" <> $4) OR (("area" >= $5) AND ("Mixed Case" <= $6))))");
    EXPECT_EQ(f.params, (std::vector<std::string>{"3", "-2.5e3", "x"}));
}

TEST(row_filter, a_fractional_number_is_compared_as_a_number_with_an_integer_column) {
    auto const f = compiled("pop < 2.5");
    EXPECT_EQ(f.sql, R"(("pop" < $4::numeric))");
}

TEST(row_filter, like_in_between_null_dates_and_timestamps) {
    EXPECT_EQ(compiled("name LIKE 'Ber%'").sql, R"(("name" LIKE $4))");
    EXPECT_EQ(compiled("pop NOT LIKE '1%'").sql, R"(("pop"::text NOT LIKE $4))");
    EXPECT_EQ(compiled("name IN ('a', 'b', 'c')").sql, R"(("name" IN ($4, $5, $6)))");
    EXPECT_EQ(compiled("pop NOT IN (1, 2)").sql, R"(("pop" NOT IN ($4, $5)))");
    EXPECT_EQ(compiled("pop BETWEEN 10 AND 20").sql, R"(("pop" BETWEEN $4 AND $5))");
    EXPECT_EQ(compiled("pop NOT BETWEEN 10 AND 20").sql, R"(("pop" NOT BETWEEN $4 AND $5))");
    EXPECT_EQ(compiled("name IS NULL").sql, R"(("name" IS NULL))");
    EXPECT_EQ(compiled("name is not null").sql, R"(("name" IS NOT NULL))");
    auto const d = compiled("founded >= DATE('2020-01-31') AND seen < TIMESTAMP('2021-02-03T04:05:06Z')");
    EXPECT_EQ(d.sql, R"((("founded" >= $4::date) AND ("seen" < $5::timestamptz)))");
    EXPECT_EQ(d.params, (std::vector<std::string>{"2020-01-31", "2021-02-03T04:05:06Z"}));
    EXPECT_EQ(compiled("capital = TRUE").params, (std::vector<std::string>{"true"}));
}

TEST(row_filter, spatial_predicates_take_wkt_and_bbox_in_wgs84_transformed_to_the_column) {
    auto f = compiled("S_INTERSECTS(geom, BBOX(-10, 40.5, 10, 50))");
    EXPECT_EQ(
        f.sql,
        R"(ST_Intersects("geom", ST_MakeEnvelope($4::float8, $5::float8, $6::float8, $7::float8, 4326)))");
    EXPECT_EQ(f.params, (std::vector<std::string>{"-10", "40.5", "10", "50"}));

    f = compiled("s_within(geom, POLYGON((0 0, 1 0, 1 1 , 0 0)))", 3857);
    EXPECT_EQ(f.sql, R"(ST_Within("geom", ST_Transform(ST_GeomFromText($4::text, 4326), 3857)))");
    EXPECT_EQ(f.params, (std::vector<std::string>{"POLYGON((0 0,1 0,1 1,0 0))"}));

    f = compiled("S_CONTAINS(MULTIPOINT((1 2), (3 -4)), geom) OR S_DISJOINT(geom, POINT(1 2))");
    EXPECT_EQ(f.params, (std::vector<std::string>{"MULTIPOINT((1 2),(3 -4))", "POINT(1 2)"}));
    EXPECT_NE(f.sql.find("ST_Contains(ST_GeomFromText($4::text, 4326), \"geom\")"), std::string::npos)
        << f.sql;
    EXPECT_NE(f.sql.find("ST_Disjoint"), std::string::npos);

    f = compiled("S_INTERSECTS(geom, GEOMETRYCOLLECTION(POINT(1 2), LINESTRING(0 0, 1 1)))");
    EXPECT_EQ(f.params, (std::vector<std::string>{"GEOMETRYCOLLECTION(POINT(1 2),LINESTRING(0 0,1 1))"}));
}

TEST(row_filter, syntax_errors_name_their_position) {
    EXPECT_EQ(failure_at("pop > 1;"), 7U);
    EXPECT_EQ(failure_at("pop > 1 -- comment"), 8U);
    EXPECT_EQ(failure_at("pop > 1 /* c */"), 8U);
    EXPECT_EQ(failure_at("name = 'open"), 7U);
    EXPECT_EQ(failure_at("pg_sleep(10) = 1"), 0U);
    EXPECT_EQ(failure_at("pop > (SELECT 1)"), 6U);
    EXPECT_EQ(failure_at("pop >"), 5U);
    EXPECT_EQ(failure_at("pop"), 0U); // an integer column is no condition
    EXPECT_EQ(failure_at("pop = 1 pop = 2"), 8U);
    EXPECT_EQ(failure_at("founded = DATE('yesterday')"), 15U);
    EXPECT_EQ(failure_at("S_INTERSECTS(geom, BBOX(1, 2, 3))"), 19U);
    EXPECT_EQ(failure_at(""), 0U);
    EXPECT_EQ(failure_at(std::string(200, '(') + "pop > 1" + std::string(200, ')')), 32U);
    EXPECT_NE(failure_text("pg_sleep(10) = 1").find("function 'pg_sleep' is not supported"),
              std::string::npos);
}

TEST(row_filter, unknown_columns_and_misused_ones_fail_with_the_columns_listed) {
    EXPECT_EQ(failure_at("population > 1"), 0U);
    auto const text = failure_text("population > 1");
    EXPECT_NE(text.find("'population' is not a column of public.cities"), std::string::npos) << text;
    EXPECT_NE(text.find("area, capital, founded, name, pop, seen"), std::string::npos) << text;
    EXPECT_EQ(failure_at("pop > 1 AND \"pop::text\" = 'x'"), 12U);
    EXPECT_EQ(failure_at("pop > 1 AND pop::text = 'x'"), 12U);
    EXPECT_EQ(failure_at("geom = 'x'"), 0U);
    EXPECT_EQ(failure_at("S_INTERSECTS(name, POINT(1 2))"), 13U);
    // Case-insensitive when it is unambiguous.
    EXPECT_EQ(compiled("POP > 1").sql, R"(("pop" > $4))");
}

TEST(row_filter, point_at_puts_a_caret_under_the_position) {
    EXPECT_EQ(cql2::point_at("pop > 1;", 7), "  pop > 1;\n         ^");
}
