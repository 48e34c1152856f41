// Pure parts of publishing: the URL query as JSON, source resolution against discovered tables
// and functions, and password removal for --save-config.

#include "config/config_file.hpp"
#include "config/save_config.hpp"
#include "core/secrets.hpp"
#include "http/query_params.hpp"
#include "postgis/resolver.hpp"

#include <gtest/gtest.h>

using namespace kachel;
using nlohmann::json;

TEST(query_to_json, nul_characters_are_found_in_keys_values_and_nested_json) {
    EXPECT_FALSE(http::contains_nul(http::query_to_json("a=1&b=x%5Cu0000&c=%7B%22k%22:%5B1,%22v%22%5D%7D")));
    EXPECT_TRUE(http::contains_nul(http::query_to_json("a=%00")));
    EXPECT_TRUE(http::contains_nul(http::query_to_json("%00=1")));
    EXPECT_TRUE(http::contains_nul(http::query_to_json("a=%5B1,%22%5Cu0000%22%5D"))); // ["\u0000"]
    EXPECT_TRUE(
        http::contains_nul(http::query_to_json("a=%7B%22k%22:%7B%22%5Cu0000%22:1%7D%7D"))); // nested key
}

TEST(query_to_json, values_keep_their_json_type) {
    EXPECT_EQ(http::query_to_json(""), json::object());
    EXPECT_EQ(http::query_to_json("answer=42&flag=true&a=%5B1,2%5D&o=%7B%22x%22:1%7D&s=hello+world&n=null"),
              json::parse(R"({"answer": 42, "flag": true, "a": [1, 2], "o": {"x": 1}, "s": "hello world",
                              "n": null})"));
    EXPECT_EQ(http::query_to_json("k=1&k=2"), json::parse(R"({"k": 2})"));
    EXPECT_EQ(http::query_to_json("empty=&novalue&&x=%zz"),
              json::parse(R"({"empty": "", "novalue": "", "x": "%zz"})"));
    EXPECT_EQ(http::query_to_json("q=42abc"), json::parse(R"({"q": "42abc"})"));
    EXPECT_EQ(http::query_to_json("q=%22quoted%22"), json::parse(R"({"q": "quoted"})"));
}

TEST(query_to_json, hostile_input_stays_a_string) {
    std::string deep(200, '[');
    auto const doc = http::query_to_json("d=" + deep + "&bad=%FF");
    EXPECT_EQ(doc["d"], deep);
    // Invalid UTF-8 survives as a string; serialising it replaces the bytes instead of throwing.
    EXPECT_NO_THROW((void)doc.dump(-1, ' ', false, json::error_handler_t::replace));
}

namespace {

postgis::table_info table(std::string schema, std::string name, std::string column, int srid,
                          std::map<std::string, std::string> properties = {}) {
    postgis::table_info t;
    t.schema = std::move(schema);
    t.table = std::move(name);
    t.geometry_column = std::move(column);
    t.srid = srid;
    t.geometry_type = "POINT";
    t.properties = std::move(properties);
    return t;
}

postgis::function_info function(std::string schema, std::string name) {
    postgis::function_info f;
    f.schema = std::move(schema);
    f.function = std::move(name);
    f.signature = f.schema + "." + f.function + "(integer, integer, integer) -> bytea";
    return f;
}

struct fixture {
    std::vector<postgis::table_info> tables{
        table("public", "Roads", "geom", 4326, {{"Gid", "int4"}, {"name", "text"}, {"code", "text"}}),
        table("public", "two", "a", 3857),
        table("public", "two", "b", 3857),
        table("other", "roads", "geom", 4326),
        table("public", "zero", "geom", 0, {{"gid", "int8"}}),
    };
    std::vector<postgis::function_info> functions{function("public", "tiles"), function("fns", "tiles")};
    std::vector<std::string> schemas{"public", "other", "fns", "empty"};

    postgis::resolution resolve(postgis::publish_config const& config) const {
        tiles::id_resolver ids;
        return postgis::resolve_sources(config, tables, functions, schemas, "h:5432/db", ids);
    }
};

std::vector<std::string> ids_of(postgis::resolution const& r) {
    std::vector<std::string> out;
    for (auto const& t : r.tables) {
        out.push_back(t.id);
    }
    for (auto const& f : r.functions) {
        out.push_back(f.id);
    }
    return out;
}

} // namespace

TEST(resolver, auto_publish_everything_in_martins_order) {
    fixture const f;
    auto const r = f.resolve({});
    EXPECT_TRUE(r.problems.empty());
    // Tables sorted by schema, table, column (zero has SRID 0 and is skipped), then functions.
    EXPECT_EQ(ids_of(r), (std::vector<std::string>{"roads", "Roads", "two", "two.1", "tiles", "tiles.1"}));
    EXPECT_EQ(r.tables[0].table.schema, "other");
    EXPECT_EQ(r.functions[0].function.schema, "fns");
}

TEST(resolver, default_srid_publishes_srid_zero_columns) {
    fixture const f;
    postgis::publish_config config;
    config.default_srid = 3857;
    auto const r = f.resolve(config);
    auto const ids = ids_of(r);
    ASSERT_NE(std::find(ids.begin(), ids.end(), "zero"), ids.end());
    EXPECT_EQ(r.tables.back().layout.srid, 3857);
}

TEST(resolver, configured_table_matches_case_insensitively_and_aliases_columns) {
    fixture const f;
    postgis::publish_config config;
    config.auto_publish.tables = false;
    config.auto_publish.functions = false;
    postgis::table_config t;
    t.id = "my_roads";
    t.schema = "PUBLIC";
    t.table = "roads"; // exact match is in schema other only; in public, Roads matches ignoring case
    t.id_column = "gid";
    t.properties = {{{"Name", "String"}}};
    t.layer_id = "layer";
    t.minzoom = 4;
    config.tables.push_back(t);
    auto const r = f.resolve(config);
    ASSERT_TRUE(r.problems.empty()) << r.problems.front();
    ASSERT_EQ(r.tables.size(), 1U);
    auto const& spec = r.tables[0];
    EXPECT_EQ(spec.id, "my_roads");
    EXPECT_EQ(spec.table.table, "Roads");
    EXPECT_EQ(spec.layout.layer, "layer");
    ASSERT_TRUE(spec.layout.id_column);
    EXPECT_EQ(spec.layout.id_column->column, "Gid");
    EXPECT_EQ(spec.layout.id_column->name, "gid");
    ASSERT_EQ(spec.layout.properties.size(), 1U);
    EXPECT_EQ(spec.layout.properties[0].column, "name");
    EXPECT_EQ(spec.layout.properties[0].name, "Name");
    EXPECT_EQ(spec.layout.properties[0].type, "String");
    EXPECT_EQ(spec.extras.minzoom, 4);
}

TEST(resolver, configured_sources_are_not_published_twice_by_auto_publish) {
    fixture const f;
    postgis::publish_config config;
    postgis::table_config t;
    t.id = "first";
    t.schema = "public";
    t.table = "two";
    t.geometry_column = "b";
    config.tables.push_back(t);
    postgis::function_config fn;
    fn.id = "fn";
    fn.schema = "fns";
    fn.function = "TILES";
    config.functions.push_back(fn);
    config.auto_publish.table_id_format = "{schema}.{table}.{column}";
    config.auto_publish.function_schemas = {"Public"};
    config.auto_publish.id_columns = {"gid"};
    auto const r = f.resolve(config);
    ASSERT_TRUE(r.problems.empty()) << r.problems.front();
    EXPECT_EQ(ids_of(r), (std::vector<std::string>{"first", "other.roads.geom", "public.Roads.geom",
                                                   "public.two.a", "fn", "tiles"}));
    // id_columns: the case-insensitive match becomes the feature id and leaves the attributes.
    auto const& roads = r.tables[2];
    ASSERT_TRUE(roads.layout.id_column);
    EXPECT_EQ(roads.layout.id_column->column, "Gid");
    EXPECT_EQ(roads.layout.properties.size(), 2U);
}

TEST(resolver, problems_say_what_is_missing) {
    fixture const f;
    auto const problem_for = [&](postgis::table_config t) {
        postgis::publish_config config;
        config.auto_publish.tables = false;
        config.auto_publish.functions = false;
        t.id = "src";
        config.tables.push_back(std::move(t));
        auto const r = f.resolve(config);
        return r.problems.empty() ? std::string{} : r.problems.front();
    };
    postgis::table_config t;
    t.schema = "nope";
    t.table = "x";
    EXPECT_NE(problem_for(t).find("schema 'nope' does not exist. Available schemas: other, public"),
              std::string::npos);
    t.schema = "empty";
    EXPECT_NE(problem_for(t).find("schema 'empty' exists but has no tables with a geometry column"),
              std::string::npos);
    t.schema = "public";
    t.table = "missing";
    EXPECT_NE(problem_for(t).find("no table or view 'missing'"), std::string::npos);
    t.table = "two";
    EXPECT_NE(problem_for(t).find("has several geometry columns: set geometry_column"), std::string::npos);
    t.geometry_column = "c";
    EXPECT_NE(problem_for(t).find("has no geometry column 'c'. Geometry columns: a, b"), std::string::npos);
    t.table = "Roads";
    t.geometry_column = "geom";
    t.srid = 3857;
    EXPECT_NE(problem_for(t).find("has SRID 4326, but the source sets srid 3857"), std::string::npos);
    t.srid.reset();
    t.id_column = "name";
    EXPECT_NE(problem_for(t).find("id_column 'name' is of type text"), std::string::npos);
    t.id_column.reset();
    t.properties = {{{"nope", "text"}}};
    EXPECT_NE(problem_for(t).find("property 'nope' is not a column of public.Roads"), std::string::npos);
    t.properties.reset();
    t.table = "zero";
    EXPECT_NE(problem_for(t).find("has SRID 0"), std::string::npos);
    t.srid = 900913;
    EXPECT_EQ(problem_for(t), "");
}

TEST(resolver, one_function_under_two_ids) {
    fixture const f;
    postgis::publish_config config;
    config.auto_publish.tables = false;
    config.auto_publish.functions = false;
    postgis::function_config low;
    low.id = "low";
    low.schema = "public";
    low.function = "tiles";
    low.maxzoom = 5;
    auto high = low;
    high.id = "high";
    high.maxzoom.reset();
    high.minzoom = 6;
    config.functions = {low, high};
    auto const r = f.resolve(config);
    EXPECT_EQ(ids_of(r), (std::vector<std::string>{"high", "low"}));
}

TEST(save_config, passwords_are_removed) {
    EXPECT_EQ(without_password("postgresql://user:s3cret@host:5432/db?sslmode=verify-full&password=x"),
              "postgresql://user@host:5432/db?sslmode=verify-full");
    EXPECT_EQ(without_password("postgres://u:p@h/db"), "postgres://u@h/db");
    EXPECT_EQ(without_password("host=h password='se cret' dbname=db"), "host=h dbname=db");
    EXPECT_EQ(without_password("password=abc host=h sslpassword=k"), "host=h");
    EXPECT_EQ(without_password("host=h dbname=db"), "host=h dbname=db");
}

TEST(save_config, archive_sections_are_written_as_given_and_read_back_the_same) {
    config::settings s;
    s.mbtiles.paths = {"/data", "/b.mbtiles"};
    s.pmtiles.paths = {"/data"};
    s.pmtiles.sources = {{"/w/world.pmtiles", "world"}};
    s.pmtiles.directory_cache_mb = 16;
    s.pmtiles.paths.emplace_back("https://tiles.example/a.pmtiles");
    s.pmtiles.remote.allow_http = false;
    s.pmtiles.remote.ssl_root_cert = "/ca.pem";
    s.pmtiles.remote.timeout = std::chrono::milliseconds{1500};
    s.pmtiles.remote.pool_max_idle_per_host = 3;
    s.pmtiles.remote.reload_interval = std::chrono::seconds{0};
    auto const text = config::render_saved_config(s, {});
    auto const back = config::parse_config(text, "saved.yaml");
    ASSERT_TRUE(back.mbtiles && back.pmtiles) << text;
    EXPECT_EQ(back.mbtiles->paths, s.mbtiles.paths);
    EXPECT_TRUE(back.mbtiles->sources.empty());
    EXPECT_EQ(back.pmtiles->paths, s.pmtiles.paths);
    ASSERT_EQ(back.pmtiles->sources.size(), 1U);
    EXPECT_EQ(back.pmtiles->sources[0].id, "world");
    EXPECT_EQ(back.pmtiles->sources[0].path, "/w/world.pmtiles");
    EXPECT_EQ(back.pmtiles->directory_cache_mb, 16U);
    EXPECT_FALSE(back.pmtiles->remote.allow_http);
    EXPECT_EQ(back.pmtiles->remote.ssl_root_cert, "/ca.pem");
    EXPECT_EQ(back.pmtiles->remote.timeout, std::chrono::milliseconds{1500});
    EXPECT_EQ(back.pmtiles->remote.pool_max_idle_per_host, 3U);
    EXPECT_EQ(back.pmtiles->remote.reload_interval, std::chrono::seconds{0}) << "0s: never asked";
    EXPECT_FALSE(back.pmtiles->remote.connect_timeout);
}

TEST(save_config, a_hosts_list_is_written_back_with_ports_and_roles) {
    auto const file = config::parse_config("postgres:\n"
                                           "  connection_string: postgresql://tiles@/gis\n"
                                           "  hosts:\n"
                                           "    - {host: db1, role: primary}\n"
                                           "    - db2:5433\n",
                                           "k.yaml");
    config::settings s;
    file.apply_to(s);
    auto const text = config::render_saved_config(s, {postgis::published_database{}});
    auto const back = config::parse_config(text, "saved.yaml");
    ASSERT_EQ(back.postgres.size(), 1U) << text;
    ASSERT_EQ(back.postgres[0].hosts.size(), 2U) << text;
    EXPECT_EQ(back.postgres[0].hosts[0].host, "db1");
    EXPECT_EQ(back.postgres[0].hosts[0].port, "");
    EXPECT_EQ(back.postgres[0].hosts[0].role, "primary");
    EXPECT_EQ(back.postgres[0].hosts[1].host, "db2");
    EXPECT_EQ(back.postgres[0].hosts[1].port, "5433");
    EXPECT_EQ(back.postgres[0].hosts[1].role, "");
}
