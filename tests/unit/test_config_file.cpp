#include "config/config_file.hpp"
#include "config/env_substitution.hpp"
#include "core/error.hpp"
#include "pg/hosts.hpp"

#include <gtest/gtest.h>

#include <map>

using namespace kachel;
using config::parse_config;
using config::substitute_env;

namespace {

config::env_lookup env(std::map<std::string, std::string> vars) {
    return [vars = std::move(vars)](std::string const& name) -> std::optional<std::string> {
        auto const it = vars.find(name);
        return it == vars.end() ? std::nullopt : std::optional<std::string>{it->second};
    };
}

/// The settings a file gives on top of the defaults.
config::settings settings_of(config::file_settings const& file) {
    config::settings s;
    file.apply_to(s);
    return s;
}

} // namespace

TEST(env_substitution, all_forms) {
    auto const e = env({{"SET", "v"}, {"EMPTY", ""}});
    EXPECT_EQ(substitute_env("a${SET}b", e), "avb");
    EXPECT_EQ(substitute_env("$SET/x", e), "v/x");
    EXPECT_EQ(substitute_env("${UNSET:-d}", e), "d");
    EXPECT_EQ(substitute_env("${EMPTY:-d}", e), "d");
    EXPECT_EQ(substitute_env("${EMPTY-d}", e), "");
    EXPECT_EQ(substitute_env("${UNSET-d}", e), "d");
    EXPECT_EQ(substitute_env("${SET:+alt}", e), "alt");
    EXPECT_EQ(substitute_env("${EMPTY:+alt}", e), "");
    EXPECT_EQ(substitute_env("${EMPTY+alt}", e), "alt");
    EXPECT_EQ(substitute_env("$$SET", e), "$SET");
    EXPECT_EQ(substitute_env("${UNSET:postgres://h:5432/db}", e), "postgres://h:5432/db"); // legacy form
    EXPECT_EQ(substitute_env("${UNSET:-${SET}}", e), "v");
    EXPECT_EQ(substitute_env("price $ 5", e), "price $ 5");
}

TEST(env_substitution, missing_variable_is_an_error) {
    auto const e = env({});
    try {
        (void)substitute_env("${DB_URL}", e);
        FAIL();
    } catch (config_error const& err) {
        EXPECT_NE(std::string{err.what()}.find("missing property 'DB_URL'"), std::string::npos) << err.what();
    }
    EXPECT_THROW((void)substitute_env("${X:?set X please}", e), config_error);
    EXPECT_THROW((void)substitute_env("${UNCLOSED", e), config_error);
}

TEST(config_file, single_postgres_entry_with_substitution_in_plain_scalars_only) {
    auto const file = parse_config("postgres:\n"
                                   "  connection_string: ${DB_URL}\n"
                                   "  ssl_root_cert: '${NOT_EXPANDED}'\n"
                                   "  ssl_cert: ${CERT:-/default.crt}\n"
                                   "  pool_size: 4\n"
                                   "  retry_timeout: 2m\n",
                                   "k.yaml", env({{"DB_URL", "postgresql://u@h/db"}}));
    ASSERT_EQ(file.postgres.size(), 1U);
    auto const& p = file.postgres[0];
    EXPECT_EQ(p.connection_string, "postgresql://u@h/db");
    EXPECT_EQ(p.ssl_root_cert->value, "${NOT_EXPANDED}");
    EXPECT_EQ(p.ssl_cert->value, "/default.crt");
    EXPECT_EQ(p.ssl_cert->source, "postgres.ssl_cert in k.yaml");
    EXPECT_EQ(p.pool_size, 4U);
    EXPECT_EQ(p.retry_timeout, std::chrono::seconds{120});
    EXPECT_EQ(p.origin, "k.yaml postgres");
}

TEST(config_file, session_settings_are_forced_and_name_their_origin) {
    auto const file = parse_config("postgres:\n"
                                   "  connection_string: host=a dbname=x\n"
                                   "  session_settings:\n"
                                   "    max_parallel_workers_per_gather: 2\n"
                                   "    jit: on\n"
                                   "    postgis.gdal_enabled_drivers: ENABLE_ALL\n",
                                   "k.yaml", env({}));
    auto const& settings = file.postgres.at(0).session_settings;
    ASSERT_EQ(settings.size(), 3U);
    EXPECT_EQ(settings[0].name, "max_parallel_workers_per_gather");
    EXPECT_EQ(settings[0].value, "2");
    EXPECT_EQ(settings[1].value, "on");
    EXPECT_EQ(settings[2].name, "postgis.gdal_enabled_drivers");
    EXPECT_TRUE(settings[0].forced);
    EXPECT_EQ(settings[0].origin, "postgres.session_settings.max_parallel_workers_per_gather in k.yaml");

    for (char const* bad : {"    \"jit; DROP TABLE x\": on\n", "    jit:\n", "    jit: [on]\n"}) {
        EXPECT_THROW((void)parse_config(
                         std::string{"postgres:\n  connection_string: host=a\n  session_settings:\n"} + bad,
                         "k.yaml", env({})),
                     config_error)
            << bad;
    }
}

TEST(config_file, list_of_connections) {
    auto const file = parse_config("postgres:\n"
                                   "  - connection_string: host=a dbname=x\n"
                                   "  - connection_string: host=b dbname=x\n",
                                   "k.yaml", env({}));
    ASSERT_EQ(file.postgres.size(), 2U);
    EXPECT_EQ(file.postgres[1].origin, "k.yaml postgres[1]");
}

TEST(config_file, errors_name_the_key_and_value) {
    auto expect_error = [](std::string const& yaml, std::string const& needle) {
        try {
            (void)parse_config(yaml, "k.yaml", env({}));
            ADD_FAILURE() << "accepted: " << yaml;
        } catch (config_error const& e) {
            EXPECT_NE(std::string{e.what()}.find(needle), std::string::npos) << e.what();
        }
    };
    expect_error("postgres:\n  connection_string: host=h\n  pool_size: 0\n",
                 "'postgres.pool_size' must be a positive");
    expect_error("postgres:\n  connection_string: host=h\n  pool_size: many\n", "got 'many'");
    expect_error("postgres:\n  pool_size: 3\n", "'postgres.connection_string' is required");
    expect_error("postgres: [1, 2\n", "not valid YAML");
    expect_error("postgres:\n  connection_string: ${NOPE}\n", "missing property 'NOPE'");
    expect_error("worker_processes: -1\n", "'worker_processes' must be an integer from 1 to 1024, got '-1'");
}

TEST(config_file, unknown_and_unsupported_keys_are_not_fatal) {
    auto const file = parse_config("listen_addresses: 1.2.3.4:5\nfoo: 1\ncache_size_mb: 3\n"
                                   "postgres:\n  connection_string: host=h\n  bar: 2\n  auto_publish: true\n",
                                   "k.yaml", env({}));
    EXPECT_EQ(settings_of(file).listen_addresses, "1.2.3.4:5");
    EXPECT_EQ(settings_of(file).cache.size_mb, 3); // the deprecated key still counts
    EXPECT_EQ(file.postgres.size(), 1U);
}

TEST(config_file, tables_functions_and_publishing_keys) {
    auto const file = parse_config(R"(
on_invalid: warning
route_prefix: /tiles//
base_path: /
postgres:
  connection_string: ${URL}
  default_srid: 3857
  auto_bounds: calc
  max_feature_count: 1000
  tables:
    roads:
      schema: public
      table: Roads
      srid: 4326
      geometry_column: geom
      id_column: gid
      layer_id: r
      minzoom: 3
      maxzoom: 14
      bounds: [-10, -5, 10, 5.5]
      extent: 8192
      buffer: 0
      clip_geom: false
      properties: {name: text, Lanes: int4}
  functions:
    f1: {schema: public, function: fn, maxzoom: 6}
)",
                                   "k.yaml", env({{"URL", "postgresql://u:secret@h/db"}}));
    auto const s = settings_of(file);
    EXPECT_EQ(s.on_invalid, postgis::invalid_policy::warn);
    EXPECT_EQ(s.http.route_prefix, "/tiles");
    EXPECT_EQ(s.http.base_path, "");
    ASSERT_EQ(file.postgres.size(), 1U);
    auto const& pg = file.postgres[0];
    EXPECT_EQ(pg.connection_string_reference, "${URL}");
    EXPECT_EQ(pg.publish.default_srid, 3857);
    EXPECT_EQ(pg.publish.auto_bounds, postgis::bounds_mode::calc);
    EXPECT_EQ(pg.publish.max_feature_count, 1000U);
    // Listing tables or functions without auto_publish publishes only those.
    EXPECT_FALSE(pg.publish.auto_publish.tables);
    EXPECT_FALSE(pg.publish.auto_publish.functions);
    ASSERT_EQ(pg.publish.tables.size(), 1U);
    auto const& t = pg.publish.tables[0];
    EXPECT_EQ(t.id, "roads");
    EXPECT_EQ(t.table, "Roads");
    EXPECT_EQ(t.layer_id, "r");
    EXPECT_EQ(t.minzoom, 3);
    EXPECT_EQ(t.maxzoom, 14);
    EXPECT_EQ(t.bounds, (std::array<double, 4>{-10, -5, 10, 5.5}));
    EXPECT_EQ(t.extent, 8192);
    EXPECT_EQ(t.buffer, 0);
    EXPECT_EQ(t.clip_geom, false);
    ASSERT_TRUE(t.properties);
    EXPECT_EQ(*t.properties,
              (std::vector<std::pair<std::string, std::string>>{{"name", "text"}, {"Lanes", "int4"}}));
    ASSERT_EQ(pg.publish.functions.size(), 1U);
    EXPECT_EQ(pg.publish.functions[0].function, "fn");
    EXPECT_EQ(pg.publish.functions[0].maxzoom, 6);
}

TEST(config_file, auto_publish_forms_follow_martin) {
    auto parse = [](std::string const& auto_publish) {
        auto const file =
            parse_config("postgres:\n  connection_string: host=h\n  auto_publish: " + auto_publish + "\n",
                         "k.yaml", env({}));
        return file.postgres.at(0).publish.auto_publish;
    };
    auto const off = parse("false");
    EXPECT_FALSE(off.tables);
    EXPECT_FALSE(off.functions);
    auto const only_tables =
        parse("{tables: {from_schemas: [a, B], id_columns: id, id_format: '{schema}.{table}'}}");
    EXPECT_TRUE(only_tables.tables);
    EXPECT_FALSE(only_tables.functions); // mentioning only tables disables functions
    EXPECT_EQ(only_tables.table_schemas, (std::vector<std::string>{"a", "B"}));
    EXPECT_EQ(only_tables.id_columns, std::vector<std::string>{"id"});
    EXPECT_EQ(only_tables.table_id_format, "{schema}.{table}");
    auto const tables_off = parse("{tables: false}");
    EXPECT_FALSE(tables_off.tables);
    EXPECT_TRUE(tables_off.functions); // tables: false alone leaves functions on
    auto const common = parse("{from_schemas: s, functions: {source_id_format: 'f.{function}'}}");
    EXPECT_FALSE(common.tables);
    EXPECT_TRUE(common.functions);
    EXPECT_EQ(common.function_schemas, std::vector<std::string>{"s"});
    EXPECT_EQ(common.function_id_format, "f.{function}");
    auto const both = parse("{from_schemas: [s], tables: true, functions: true}");
    EXPECT_TRUE(both.tables);
    EXPECT_TRUE(both.functions);
    EXPECT_EQ(both.table_schemas, std::vector<std::string>{"s"});
}

TEST(config_file, publishing_type_errors_name_the_key_and_value) {
    auto expect_error = [](std::string const& yaml, std::string const& needle) {
        try {
            (void)parse_config("postgres:\n  connection_string: host=h\n" + yaml, "k.yaml", env({}));
            ADD_FAILURE() << "accepted: " << yaml;
        } catch (config_error const& e) {
            EXPECT_NE(std::string{e.what()}.find(needle), std::string::npos) << e.what();
        }
    };
    expect_error("  auto_bounds: fast\n", "'postgres.auto_bounds' must be quick, calc or skip, got 'fast'");
    expect_error("  default_srid: wgs84\n", "'postgres.default_srid' must be an integer");
    expect_error("  tables:\n    t: {schema: s, table: t, extent: 0}\n",
                 "'postgres.tables.t.extent' must be an integer from 1");
    expect_error("  tables:\n    t: {schema: s, table: t, maxzoom: 31}\n", "got '31'");
    expect_error("  tables:\n    t: {schema: s, table: t, minzoom: 5, maxzoom: 2}\n",
                 "minzoom 5 above maxzoom 2");
    expect_error("  tables:\n    t: {schema: s, table: t, bounds: [1, 2, 3]}\n",
                 "'postgres.tables.t.bounds' must be [west");
    expect_error("  tables:\n    t: {table: t}\n", "needs 'schema' and 'table'");
    expect_error("  functions:\n    f: {schema: s}\n", "needs 'schema' and 'function'");
    expect_error("  auto_publish: maybe\n", "'postgres.auto_publish' must be true or false, got 'maybe'");
    try {
        (void)parse_config("on_invalid: maybe\n", "k.yaml", env({}));
        ADD_FAILURE();
    } catch (config_error const& e) {
        EXPECT_NE(std::string{e.what()}.find("'on_invalid' must be abort or warn, got 'maybe'"),
                  std::string::npos);
    }
    try {
        (void)parse_config("route_prefix: tiles\n", "k.yaml", env({}));
        ADD_FAILURE();
    } catch (config_error const& e) {
        EXPECT_NE(std::string{e.what()}.find("must begin with a '/'"), std::string::npos);
    }
}

TEST(config_file, a_table_filter_is_read_and_a_bad_one_names_file_key_and_position) {
    auto const file = parse_config("postgres:\n  connection_string: host=h\n  tables:\n    big:\n      "
                                   "schema: public\n      table: cities\n"
                                   "      filter: pop > 1000000 AND name LIKE 'B%'\n",
                                   "f.yaml", env({}));
    ASSERT_EQ(file.postgres.size(), 1U);
    ASSERT_EQ(file.postgres[0].publish.tables.size(), 1U);
    EXPECT_EQ(file.postgres[0].publish.tables[0].filter, "pop > 1000000 AND name LIKE 'B%'");

    std::string text;
    try {
        (void)parse_config(
            "postgres:\n  connection_string: host=h\n  tables:\n    big:\n      schema: public\n"
            "      table: cities\n      filter: \"pop > 1; DROP TABLE cities\"\n",
            "f.yaml", env({}));
    } catch (config_error const& e) {
        text = e.what();
    }
    EXPECT_NE(
        text.find(
            "f.yaml: 'postgres.tables.big.filter' is not a valid CQL2 filter: unexpected character ';'"),
        std::string::npos)
        << text;
    EXPECT_NE(text.find("(at character 8)\n  pop > 1; DROP TABLE cities\n         ^"), std::string::npos)
        << text;
    EXPECT_THROW(
        (void)parse_config("postgres:\n  connection_string: host=h\n  tables:\n    big:\n      schema: s\n"
                           "      table: t\n      filter: ''\n",
                           "f.yaml", env({})),
        config_error);
}

TEST(config_file, archive_sections_take_paths_sources_and_the_directory_cache) {
    auto const file = parse_config("mbtiles: /data\n"
                                   "pmtiles:\n"
                                   "  paths: [/a.pmtiles, /dir]\n"
                                   "  directory_cache: {size_mb: 12}\n"
                                   "  sources:\n"
                                   "    base: /b.pmtiles\n"
                                   "    other: {path: /c.pmtiles}\n",
                                   "t.yaml");
    ASSERT_TRUE(file.mbtiles && file.pmtiles);
    EXPECT_EQ(file.mbtiles->paths, std::vector<std::string>{"/data"});
    EXPECT_EQ(file.pmtiles->paths, (std::vector<std::string>{"/a.pmtiles", "/dir"}));
    EXPECT_EQ(file.pmtiles->directory_cache_mb, 12U);
    ASSERT_EQ(file.pmtiles->sources.size(), 2U);
    EXPECT_EQ(file.pmtiles->sources[1].id, "other");
    EXPECT_EQ(file.pmtiles->sources[1].path, "/c.pmtiles");
    EXPECT_EQ(parse_config("pmtiles: {directory_cache: disable}\n", "t.yaml").pmtiles->directory_cache_mb,
              0U);
    auto const error = [](std::string const& yaml) {
        try {
            (void)parse_config(yaml, "t.yaml");
        } catch (config_error const& e) {
            return std::string{e.what()};
        }
        return std::string{};
    };
    EXPECT_NE(error("pmtiles: {directory_cache: lots}\n")
                  .find("is 'lots'; it takes megabytes (32), disable, or {size_mb: 32}"),
              std::string::npos);
    EXPECT_NE(error("mbtiles: {sources: {a: {path: /a, cache: disable}}}\n")
                  .find("'mbtiles.sources.a.cache' is not a key"),
              std::string::npos);
    EXPECT_EQ(error("pmtiles: https://tiles.example/w.pmtiles\n"), "") << "PMTiles are read from URLs";
    EXPECT_NE(error("pmtiles: s3://bucket/w.pmtiles?secret=1\n")
                  .find("s3://bucket/w.pmtiles: archives in object stores"),
              std::string::npos);
    EXPECT_EQ(error("pmtiles: s3://bucket/w.pmtiles?secret=1\n").find("secret"), std::string::npos);
    EXPECT_NE(
        error("mbtiles: https://tiles.example/w.mbtiles\n").find("MBTiles files are read from local disks"),
        std::string::npos);
}

TEST(config_file, pmtiles_keys_for_urls_are_read_and_object_store_keys_stop_startup) {
    auto const file = parse_config("pmtiles:\n"
                                   "  allow_http: false\n"
                                   "  allow_invalid_certificates: true\n"
                                   "  ssl_root_cert: /ca.pem\n"
                                   "  timeout: 2m\n"
                                   "  connect_timeout: 3s\n"
                                   "  pool_idle_timeout: 10s\n"
                                   "  pool_max_idle_per_host: 4\n"
                                   "  reload_interval: 90s\n"
                                   "  paths: https://tiles.example/w.pmtiles\n",
                                   "t.yaml");
    ASSERT_TRUE(file.pmtiles);
    auto const& r = file.pmtiles->remote;
    EXPECT_FALSE(r.allow_http);
    EXPECT_TRUE(r.allow_invalid_certificates);
    EXPECT_EQ(r.ssl_root_cert, "/ca.pem");
    EXPECT_EQ(r.timeout, std::chrono::minutes{2});
    EXPECT_EQ(r.connect_timeout, std::chrono::seconds{3});
    EXPECT_EQ(r.pool_idle_timeout, std::chrono::seconds{10});
    EXPECT_EQ(r.pool_max_idle_per_host, 4U);
    EXPECT_EQ(r.reload_interval, std::chrono::seconds{90});
    try {
        (void)parse_config("pmtiles:\n  aws_access_key_id: AKIA\n", "t.yaml");
        ADD_FAILURE() << "an object-store key must stop startup";
    } catch (config_error const& e) {
        EXPECT_NE(std::string{e.what()}.find("'pmtiles.aws_access_key_id' is not a pmtiles key kachel reads"),
                  std::string::npos)
            << e.what();
        EXPECT_EQ(std::string{e.what()}.find("AKIA"), std::string::npos) << "the value is never shown";
    }
}

namespace {

/// A table entry `t` with `lines` (each indented under it) parsed; the config error, or empty.
std::string budget_error(std::string const& lines, config::file_settings* out = nullptr) {
    try {
        auto file =
            parse_config("postgres:\n  connection_string: host=h\n  tables:\n    t:\n      schema: public\n"
                         "      table: cities\n" +
                             lines,
                         "f.yaml", env({}));
        if (out != nullptr) {
            *out = std::move(file);
        }
    } catch (config_error const& e) {
        return e.what();
    }
    return {};
}

} // namespace

TEST(config_file, tile_budgets_are_read_with_values_per_zoom_range) {
    config::file_settings file;
    ASSERT_EQ(budget_error("      order_by: pop DESC,  name ,Full Name asc\n"
                           "      max_feature_count: {0-2: 100, 3: 500, 8-: 2000}\n"
                           "      thin_points: {0-5: 16, 6-9: 4.5}\n"
                           "      simplify: 1\n",
                           &file),
              "");
    auto const& t = file.postgres.at(0).publish.tables.at(0);
    ASSERT_EQ(t.order_by.size(), 3U);
    EXPECT_EQ(t.order_by[0], (postgis::order_term{"pop", true}));
    EXPECT_EQ(t.order_by[1], (postgis::order_term{"name", false}));
    EXPECT_EQ(t.order_by[2], (postgis::order_term{"Full Name", false}));
    ASSERT_TRUE(t.max_feature_count);
    EXPECT_EQ(t.max_feature_count->at(0), 100U);
    EXPECT_EQ(t.max_feature_count->at(2), 100U);
    EXPECT_EQ(t.max_feature_count->at(3), 500U);
    EXPECT_EQ(t.max_feature_count->at(5), std::nullopt) << "a zoom no range names has no limit";
    EXPECT_EQ(t.max_feature_count->at(30), 2000U);
    EXPECT_EQ(t.thin_points->at(7), 4.5);
    EXPECT_EQ(t.thin_points->at(10), std::nullopt);
    EXPECT_EQ(t.simplify->at(0), 1.0);
    EXPECT_EQ(t.simplify->at(30), 1.0);
    ASSERT_EQ(budget_error("      order_by: [pop desc, name]\n", &file), "");
    EXPECT_EQ(file.postgres.at(0).publish.tables.at(0).order_by.size(), 2U);
}

TEST(config_file, a_bad_budget_names_the_key_and_the_value) {
    auto const has = [](std::string const& lines, std::string const& wanted) {
        auto const text = budget_error(lines);
        EXPECT_NE(text.find(wanted), std::string::npos) << lines << "\n -> " << text;
    };
    has("      thin_points: -4\n",
        "f.yaml: 'postgres.tables.t.thin_points' must be a number above 0, such as 16 (pixels); got '-4'");
    has("      thin_points: 0\n", "'postgres.tables.t.thin_points' must be a number above 0");
    has("      thin_points: {0-4: 0}\n", "'postgres.tables.t.thin_points.0-4' must be a number above 0");
    has("      simplify: lots\n", "f.yaml: 'postgres.tables.t.simplify' must be a number above 0, such as 1 "
                                  "or 0.5 (pixels); got 'lots'");
    has("      simplify: {0-4: 1, 4-6: 2}\n", "'postgres.tables.t.simplify': zoom 4 is in two ranges");
    has("      simplify: {4-2: 1}\n", "'postgres.tables.t.simplify.4-2': '4-2' is not a zoom range");
    has("      simplify: {31: 1}\n", "'31' is not a zoom range");
    has("      max_feature_count: {0: -5}\n",
        "'postgres.tables.t.max_feature_count.0' must be a positive integer, got '-5'");
    has("      order_by: 'pop desc,,name'\n", "'postgres.tables.t.order_by' has an empty term");
    has("      order_by: []\n", "'postgres.tables.t.order_by' is empty");
}

TEST(config_file, a_hosts_list_names_the_primary_and_standbys_with_their_roles) {
    auto const file =
        parse_config("postgres:\n"
                     "  connection_string: postgresql://tiles@/gis?sslmode=verify-full&port=6432\n"
                     "  hosts:\n"
                     "    - {host: db1.example, role: primary}\n"
                     "    - host: db2.example\n"
                     "      port: 5433\n"
                     "      role: standby\n"
                     "    - db3.example:5434\n",
                     "k.yaml", env({}));
    ASSERT_EQ(file.postgres.size(), 1U);
    ASSERT_EQ(file.postgres[0].hosts.size(), 3U);
    EXPECT_EQ(file.postgres[0].hosts[2].host, "db3.example");
    EXPECT_EQ(file.postgres[0].hosts[2].port, "5434");
    auto const params = settings_of(file).connect_params_for(0);
    EXPECT_EQ(params.keyword("host"), "db1.example,db2.example,db3.example");
    // A host without a port takes the connection string's.
    EXPECT_EQ(params.keyword("port"), "6432,5433,5434");
    ASSERT_EQ(params.host_roles.size(), 3U);
    EXPECT_EQ(params.host_roles[1].value, "standby");
    EXPECT_EQ(params.host_roles[1].source, "k.yaml postgres.hosts[1]");
    EXPECT_EQ(params.host_roles[2].value, "");
    // Each host keeps its own role; the rest of the string is the same for all.
    auto const hosts = pg::split_hosts(params);
    ASSERT_EQ(hosts.size(), 3U);
    EXPECT_EQ(hosts[0].keyword("host"), "db1.example");
    EXPECT_EQ(hosts[0].keyword("port"), "6432");
    ASSERT_EQ(hosts[0].host_roles.size(), 1U);
    EXPECT_EQ(hosts[0].host_roles[0].value, "primary");
    EXPECT_EQ(hosts[1].keyword("dbname"), "gis");
    EXPECT_EQ(hosts[1].keyword("sslmode"), "verify-full");
    EXPECT_EQ(pg::primary_params(params).keyword("target_session_attrs"), "read-write");

    // Without any port, libpq's default (or PGPORT) is left to libpq.
    auto const plain =
        parse_config("postgres:\n  connection_string: dbname=gis\n  hosts: [a, b]\n", "k.yaml", env({}));
    auto const plain_params = settings_of(plain).connect_params_for(0);
    EXPECT_EQ(plain_params.keyword("host"), "a,b");
    EXPECT_EQ(plain_params.keyword("port"), std::nullopt);
}

TEST(config_file, a_bad_hosts_list_names_the_entry_and_the_fix) {
    auto const error_of = [](std::string const& yaml) -> std::string {
        try {
            auto const file = parse_config(yaml, "k.yaml", env({}));
            (void)settings_of(file).connect_params_for(0);
        } catch (config_error const& e) {
            return e.what();
        }
        return "accepted";
    };
    auto const has = [&](std::string const& hosts, std::string const& wanted,
                         std::string const& conn = "dbname=gis") {
        auto const text = error_of("postgres:\n  connection_string: " + conn + "\n  hosts: " + hosts + "\n");
        EXPECT_NE(text.find(wanted), std::string::npos) << hosts << "\n -> " << text;
    };
    has("[]", "k.yaml: 'postgres.hosts' must be a list of the primary and its standbys");
    has("db1", "'postgres.hosts' must be a list");
    has("[{host: a, role: leader}]",
        "k.yaml: 'postgres.hosts[0].role' must be primary or standby; got 'leader'");
    has("[{port: 5432}]", "'postgres.hosts[0]' needs one host name or address");
    has("[a, 'b,c']", "'postgres.hosts[1]' needs one host name or address");
    has("[a, 'b:99999']", "'postgres.hosts[1].port'");
    has("[a, 'a']", "'postgres.hosts[1]' names a again (k.yaml postgres.hosts[0])");
    has("[{host: a, role: primary}, {host: b, role: primary}]",
        "'postgres.hosts[1]' and k.yaml postgres.hosts[0] are both role: primary");
    has("[a, b]", "the connection string names host db0 and 'hosts' lists the hosts: keep one of the two",
        "host=db0 dbname=gis");
    has("[a, b]", "names ports 1,2 and 'hosts' lists the hosts", "port=1,2 dbname=gis");
}
