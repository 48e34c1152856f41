// Change notifications (postgis/change_notify): the SQL kachel prints for a DBA, and how a
// notification's payload is read. The SQL itself runs against the real cluster in e2e/test_live.

#include "postgis/change_notify.hpp"

#include <gtest/gtest.h>

#include <array>

using namespace kachel;

namespace {

postgis::table_info table(std::string schema, std::string name, std::string column, int srid,
                          char relkind = 'r') {
    postgis::table_info t;
    t.schema = std::move(schema);
    t.table = std::move(name);
    t.geometry_column = std::move(column);
    t.srid = srid;
    t.relkind = relkind;
    return t;
}

TEST(change_notify, tables_are_gathered_with_their_geometry_columns) {
    std::array const tables{table("public", "roads", "geom", 3857), table("public", "roads", "centre", 3857),
                            table("public", "roads", "geom", 3857), table("other", "roads", "g", 0),
                            table("public", "v", "geom", 4326, 'v')};
    std::array const srids{3857, 3857, 3857, 2154, 4326};
    auto const out = postgis::notified_tables(tables, srids);
    ASSERT_EQ(out.size(), 3U);
    ASSERT_EQ(out[0].columns.size(), 2U); // the same column under two sources counts once
    EXPECT_EQ(out[0].columns[1].name, "centre");
    EXPECT_EQ(out[1].schema, "other");
    EXPECT_EQ(out[1].columns[0].srid, 2154); // declared without an SRID: taken in the source's
    EXPECT_TRUE(out[1].columns[0].per_value);
    EXPECT_FALSE(out[0].columns[0].per_value);
}

TEST(change_notify, the_sql_names_every_column_and_says_what_to_do_without_triggers) {
    std::array const tables{table("public", "roads", "geom", 3857),  table("public", "roads", "centre", 3857),
                            table("odd \"schema\"", "t", "g", 0),    table("public", "v", "geom", 4326, 'v'),
                            table("public", "m", "geom", 4326, 'm'), table("public", "p", "geom", 4326, 'p')};
    std::array const srids{3857, 3857, 4326, 4326, 4326, 4326};
    auto const sql = postgis::change_triggers_sql(postgis::notified_tables(tables, srids));
    EXPECT_TRUE(sql.starts_with("-- Made by kachel --print-change-triggers"));
    EXPECT_NE(sql.find("\nBEGIN;\n"), std::string::npos);
    EXPECT_TRUE(sql.ends_with("COMMIT;\n"));
    EXPECT_NE(
        sql.find("CREATE TRIGGER kachel_notify_delete AFTER DELETE ON \"public\".\"roads\" REFERENCING OLD "
                 "TABLE AS kachel_old\n    FOR EACH STATEMENT EXECUTE FUNCTION "
                 "kachel_notify.notify_change('geom', '3857', 'fixed', 'centre', '3857', 'fixed');"),
        std::string::npos)
        << sql;
    EXPECT_NE(sql.find("ON \"odd \"\"schema\"\"\".\"t\""), std::string::npos);
    EXPECT_NE(sql.find("kachel_notify.notify_change('g', '4326', 'per_value')"), std::string::npos);
    EXPECT_NE(sql.find("-- \"public\".\"v\" is a view"), std::string::npos);
    EXPECT_NE(sql.find("SELECT pg_notify('kachel_changes', '{\"schema\":\"public\",\"table\":\"m\"}');"),
              std::string::npos);
    EXPECT_EQ(sql.find("AFTER INSERT ON \"public\".\"v\""), std::string::npos);
    // The event triggers for schema changes, made only by a superuser, in the same transaction.
    auto const events = sql.find("CREATE EVENT TRIGGER kachel_notify_ddl ON ddl_command_end");
    EXPECT_NE(events, std::string::npos);
    EXPECT_LT(events, sql.rfind("COMMIT;"));
    EXPECT_NE(sql.find("IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN"),
              std::string::npos);
    EXPECT_NE(sql.find("PERFORM pg_notify('kachel_changes', '{\"catalog\":true}');"), std::string::npos);
    EXPECT_NE(sql.find("\"public\".\"p\" is partitioned"), std::string::npos);
    EXPECT_NE(sql.find("AFTER INSERT ON \"public\".\"p\""), std::string::npos);
}

TEST(change_notify, payloads_are_read_and_bad_ones_named) {
    std::string why;
    auto const boxes = postgis::parse_change(
        R"({"schema" : "public", "table" : "roads", "boxes" : [[2.35, 48.8, 2.4, 48.9], [-200, -91, 10, 95]]})",
        why);
    ASSERT_TRUE(boxes) << why;
    EXPECT_EQ(boxes->schema, "public");
    EXPECT_EQ(boxes->table, "roads");
    ASSERT_EQ(boxes->boxes.size(), 2U);
    EXPECT_DOUBLE_EQ(boxes->boxes[0].north, 48.9);
    EXPECT_DOUBLE_EQ(boxes->boxes[1].west, -180); // clamped to the world
    EXPECT_DOUBLE_EQ(boxes->boxes[1].north, 90);
    auto const anywhere = postgis::parse_change(R"({"schema":"s","table":"t"})", why);
    ASSERT_TRUE(anywhere);
    EXPECT_TRUE(anywhere->boxes.empty());
    for (auto const* bad :
         {"garbage", "[1,2]", R"({"schema":"s"})", R"({"schema":1,"table":"t"})",
          R"({"schema":"s","table":"t","boxes":[]})", R"({"schema":"s","table":"t","boxes":[[1,2,3]]})",
          R"({"schema":"s","table":"t","boxes":[[3,2,1,4]]})",
          R"({"schema":"s","table":"t","boxes":[["1",2,3,4]]})", R"({"schema":"s","table":"t","boxes":7})"}) {
        why.clear();
        EXPECT_FALSE(postgis::parse_change(bad, why)) << bad;
        EXPECT_FALSE(why.empty()) << bad;
    }
}

TEST(change_notify, a_schema_change_is_told_apart_from_a_table_change) {
    EXPECT_TRUE(postgis::is_catalog_change(postgis::catalog_payload));
    EXPECT_TRUE(postgis::is_catalog_change(R"({ "catalog" : true })"));
    EXPECT_FALSE(postgis::is_catalog_change(R"({"catalog":false})"));
    EXPECT_FALSE(postgis::is_catalog_change(R"({"catalog":"yes"})"));
    EXPECT_FALSE(postgis::is_catalog_change(R"({"schema":"public","table":"catalog"})"));
    EXPECT_FALSE(postgis::is_catalog_change("catalog"));
}

} // namespace
