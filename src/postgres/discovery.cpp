#include "postgres/discovery.hpp"

#include "core/error.hpp"
#include "postgres/sql.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <charconv>

namespace kachel::postgres {

namespace asio = boost::asio;

namespace {

constexpr char const* discovery_sql = R"sql(
WITH columns AS (
    SELECT f_table_schema::text AS schema_name, f_table_name::text AS table_name,
           f_geometry_column::text AS column_name, srid, type, false AS is_geography
    FROM geometry_columns
    UNION ALL
    SELECT f_table_schema::text, f_table_name::text, f_geography_column::text, srid, type, true
    FROM geography_columns
)
SELECT c.schema_name, c.table_name, c.column_name, c.srid, c.type, c.is_geography, cls.relkind::text,
       CASE WHEN cls.relkind IN ('r', 'v', 'm') THEN obj_description(cls.oid, 'pg_class') END,
       COALESCE((SELECT json_object_agg(a.attname, ltrim(t.typname, '_') ORDER BY a.attname)
                 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                 WHERE a.attrelid = cls.oid AND a.attnum > 0 AND NOT a.attisdropped
                   AND t.typname NOT IN ('geometry', 'geography')), '{}'),
       EXISTS (SELECT 1 FROM pg_index i
               JOIN pg_attribute ia ON ia.attrelid = i.indrelid AND ia.attnum = i.indkey[0]
               JOIN pg_opclass oc ON oc.oid = i.indclass[0]
               WHERE i.indrelid = cls.oid AND i.indnkeyatts = 1 AND ia.attname = c.column_name
                 AND oc.opcname IN ('gist_geometry_ops_2d', 'spgist_geometry_ops_2d',
                                    'brin_geometry_inclusion_ops_2d', 'gist_geography_ops'))
FROM columns c
JOIN pg_namespace n ON n.nspname = c.schema_name
JOIN pg_class cls ON cls.relnamespace = n.oid AND cls.relname = c.table_name
ORDER BY c.schema_name, c.table_name, c.column_name
)sql";

int to_int(std::string_view text) {
    int value = 0;
    std::from_chars(text.data(), text.data() + text.size(), value);
    return value;
}

/// "3.3.2 ..." -> 30302.
int postgis_version_number(std::string_view text) {
    int parts[3] = {0, 0, 0};
    std::size_t pos = 0;
    for (int& part : parts) {
        auto const [ptr, ec] = std::from_chars(text.data() + pos, text.data() + text.size(), part);
        if (ec != std::errc{}) {
            break;
        }
        pos = static_cast<std::size_t>(ptr - text.data());
        if (pos >= text.size() || text[pos] != '.') {
            break;
        }
        ++pos;
    }
    return parts[0] * 10000 + parts[1] * 100 + parts[2];
}

} // namespace

asio::awaitable<server_versions> async_check_versions(pg::connection& conn) {
    server_versions v;
    auto const pg_result = co_await conn.async_exec("SELECT current_setting('server_version_num'), "
                                                    "current_setting('server_version')");
    v.postgres = to_int(pg_result.get(0, 0));
    v.postgres_text = std::string{pg_result.get(0, 1)};
    if (v.postgres < minimum_postgres_version) {
        throw database_error{
            fmt_error("PostgreSQL {} is too old: kachel needs 11 or newer", v.postgres_text)};
    }
    auto const ext =
        co_await conn.async_exec("SELECT extversion FROM pg_extension WHERE extname = 'postgis'");
    if (ext.num_rows() == 0) {
        throw database_error{"PostGIS is not installed in this database: run CREATE EXTENSION postgis"};
    }
    auto const lib = co_await conn.async_exec("SELECT postgis_lib_version()");
    v.postgis_text = std::string{lib.get(0, 0)};
    v.postgis = postgis_version_number(v.postgis_text);
    if (v.postgis < minimum_postgis_version) {
        throw database_error{fmt_error("PostGIS {} is too old: kachel needs 3.0 or newer", v.postgis_text)};
    }
    if (v.postgis < postgis_margin_version) {
        spdlog::warn("PostGIS {} is older than 3.1: tiles are built without a search margin", v.postgis_text);
    }
    co_return v;
}

asio::awaitable<std::vector<table_info>> async_discover_tables(pg::connection& conn) {
    auto const r = co_await conn.async_exec(discovery_sql);
    std::vector<table_info> tables;
    tables.reserve(static_cast<std::size_t>(r.num_rows()));
    for (int row = 0; row < r.num_rows(); ++row) {
        table_info t;
        t.schema = std::string{r.get(row, 0)};
        t.table = std::string{r.get(row, 1)};
        t.geometry_column = std::string{r.get(row, 2)};
        t.srid = to_int(r.get(row, 3));
        t.geometry_type = std::string{r.get(row, 4)};
        t.is_geography = r.get(row, 5) == "t";
        t.relkind = r.get(row, 6).empty() ? 'r' : r.get(row, 6).front();
        if (!r.is_null(row, 7)) {
            t.comment = std::string{r.get(row, 7)};
        }
        auto const properties = nlohmann::json::parse(r.get(row, 8));
        for (auto const& [name, type] : properties.items()) {
            t.properties.emplace(name, type.get<std::string>());
        }
        t.has_spatial_index = r.get(row, 9) == "t";
        tables.push_back(std::move(t));
    }
    co_return tables;
}

asio::awaitable<std::optional<std::array<double, 4>>> async_table_bounds(pg::connection& conn,
                                                                         table_info const& table) {
    std::array<std::string, 3> const names{table.schema, table.table, table.geometry_column};
    for (bool const quick : {true, false}) {
        std::string failure;
        try {
            // (GCC 12 miscompiles co_await inside ?:, hence the plain if.)
            pg::result r;
            if (quick) {
                r = co_await conn.async_exec(table_bounds_sql(table, true), names);
            } else {
                r = co_await conn.async_exec(table_bounds_sql(table, false));
            }
            if (r.num_rows() == 1 && !r.is_null(0, 0)) {
                std::array<double, 4> b{};
                for (int i = 0; i < 4; ++i) {
                    b[static_cast<std::size_t>(i)] = std::stod(std::string{r.get(0, i)});
                }
                co_return b;
            }
            if (!quick) {
                co_return std::nullopt; // empty table
            }
            failure = "no statistics yet (run ANALYZE)";
        } catch (database_error const& e) {
            failure = e.what();
        }
        if (quick) {
            spdlog::debug("Estimated bounds of {}.{}.{} unavailable ({}); computing them exactly",
                          table.schema, table.table, table.geometry_column, failure);
        } else {
            spdlog::warn("Bounds of {}.{}.{} could not be computed: {}", table.schema, table.table,
                         table.geometry_column, failure);
        }
    }
    co_return std::nullopt;
}

} // namespace kachel::postgres
