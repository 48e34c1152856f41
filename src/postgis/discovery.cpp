#include "postgis/discovery.hpp"

#include "core/error.hpp"
#include "core/text.hpp"
#include "postgis/sql.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

namespace kachel::postgis {

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

// Every function the role may execute outside the system schemas with 3 or 4 input
// parameters; the signature rules are checked in C++ (see qualifies()).
constexpr char const* function_discovery_sql = R"sql(
SELECT n.nspname::text, p.proname::text,
       COALESCE(array_to_json(p.proargnames), '[]'),
       COALESCE(array_to_json(p.proargmodes::text[]), '[]'),
       array_to_json(COALESCE(p.proallargtypes, p.proargtypes::oid[])::regtype[]::text[]),
       p.prorettype::regtype::text, obj_description(p.oid, 'pg_proc')
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
  AND p.prokind = 'f' AND p.pronargs IN (3, 4) AND has_function_privilege(p.oid, 'EXECUTE')
ORDER BY n.nspname, p.proname, p.oid
)sql";

/// Applies the tile-function signature rules (martin-compat 3.1) to one pg_proc row.
std::optional<function_info> qualifies(std::string schema, std::string name, nlohmann::json const& arg_names,
                                       nlohmann::json const& arg_modes, nlohmann::json const& arg_types,
                                       std::string const& return_type) {
    std::vector<std::string> in_names;
    std::vector<std::string> in_types;
    std::vector<std::string> out_types;
    for (std::size_t i = 0; i < arg_types.size(); ++i) {
        auto const mode = i < arg_modes.size() ? arg_modes[i].get<std::string>() : std::string{"i"};
        auto const type = arg_types[i].get<std::string>();
        auto const arg_name = i < arg_names.size() ? arg_names[i].get<std::string>() : std::string{};
        if (mode == "i") {
            in_names.push_back(to_lower(arg_name));
            in_types.push_back(type);
        } else if (mode == "o" || mode == "t") {
            out_types.push_back(type);
        } else {
            return std::nullopt; // INOUT or VARIADIC
        }
    }
    if (in_types.size() != 3 && in_types.size() != 4) {
        return std::nullopt;
    }
    if ((in_names[0] != "z" && in_names[0] != "zoom") || in_names[1] != "x" || in_names[2] != "y") {
        return std::nullopt;
    }
    for (std::size_t i = 0; i < 3; ++i) {
        if (in_types[i] != "integer") {
            return std::nullopt;
        }
    }
    function_info f;
    if (in_types.size() == 4) {
        if (in_types[3] != "json" && in_types[3] != "jsonb") {
            return std::nullopt;
        }
        f.query_type = in_types[3];
    }
    std::string result;
    if ((out_types.empty() && return_type == "bytea") || out_types == std::vector<std::string>{"bytea"}) {
        result = "bytea";
    } else if (return_type == "record" && out_types == std::vector<std::string>{"bytea", "text"}) {
        result = "(bytea, text)";
        f.has_etag_column = true;
    } else {
        return std::nullopt;
    }
    std::string params;
    for (auto const& t : in_types) {
        params += params.empty() ? t : ", " + t;
    }
    f.signature = fmt::format("{}.{}({}) -> {}", schema, name, params, result);
    f.schema = std::move(schema);
    f.function = std::move(name);
    return f;
}

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

asio::awaitable<std::vector<function_info>> async_discover_functions(pg::connection& conn) {
    auto const r = co_await conn.async_exec(function_discovery_sql);
    std::vector<function_info> functions;
    for (int row = 0; row < r.num_rows(); ++row) {
        auto f = qualifies(std::string{r.get(row, 0)}, std::string{r.get(row, 1)},
                           nlohmann::json::parse(r.get(row, 2)), nlohmann::json::parse(r.get(row, 3)),
                           nlohmann::json::parse(r.get(row, 4)), std::string{r.get(row, 5)});
        if (!f) {
            continue;
        }
        if (!r.is_null(row, 6)) {
            f->comment = std::string{r.get(row, 6)};
        }
        if (!functions.empty() && functions.back().schema == f->schema &&
            functions.back().function == f->function) {
            spdlog::warn("Function {}.{} is overloaded: publishing {} only", f->schema, f->function,
                         f->signature);
            functions.back() = std::move(*f);
            continue;
        }
        functions.push_back(std::move(*f));
    }
    co_return functions;
}

namespace {

/// A schema or table name as ST_EstimatedExtent takes it: PostGIS wraps it in double quotes
/// without escaping, so embedded double quotes are doubled here (else a name holding one fails
/// with "invalid name syntax").
std::string estimated_extent_name(std::string_view name) {
    std::string out;
    for (char const c : name) {
        out += c;
        if (c == '"') {
            out += '"';
        }
    }
    return out;
}

/// Bounds as TileJSON wants them: data past the antimeridian or the poles stays within the globe.
std::array<double, 4> bounds_from(pg::result const& r, int row, int first_column) {
    std::array<double, 4> b{};
    for (int i = 0; i < 4; ++i) {
        b[static_cast<std::size_t>(i)] = std::stod(std::string{r.get(row, first_column + i)});
    }
    return {std::clamp(b[0], -180.0, 180.0), std::clamp(b[1], -90.0, 90.0), std::clamp(b[2], -180.0, 180.0),
            std::clamp(b[3], -90.0, 90.0)};
}

/// The smallest box holding every one of `boxes` ([west, south, east, north]); nullopt for none.
std::optional<std::array<double, 4>> union_of(std::span<std::array<double, 4> const> boxes) {
    std::optional<std::array<double, 4>> out;
    for (auto const& b : boxes) {
        out = out ? std::array{std::min((*out)[0], b[0]), std::min((*out)[1], b[1]),
                               std::max((*out)[2], b[2]), std::max((*out)[3], b[3])}
                  : b;
    }
    return out;
}

} // namespace

asio::awaitable<std::optional<std::vector<std::optional<std::array<double, 4>>>>>
async_estimated_bounds(pg::connection& conn, std::span<bounds_request const> requests) {
    std::vector<std::string> schemas;
    std::vector<std::string> tables;
    std::vector<std::string> columns;
    std::vector<std::string> srids;
    std::vector<std::string> indexed;
    for (auto const& request : requests) {
        schemas.push_back(estimated_extent_name(request.table->schema));
        tables.push_back(estimated_extent_name(request.table->table));
        columns.push_back(request.table->geometry_column);
        srids.push_back(std::to_string(request.srid));
        indexed.emplace_back(request.table->has_spatial_index ? "t" : "f");
    }
    std::array<std::string, 5> const params{array_literal(schemas), array_literal(tables),
                                            array_literal(columns), array_literal(srids),
                                            array_literal(indexed)};
    std::vector<std::optional<std::array<double, 4>>> out(requests.size());
    try {
        auto const r = co_await conn.async_exec(estimated_bounds_sql(), params);
        for (int row = 0; row < r.num_rows(); ++row) {
            auto const position = std::stoul(std::string{r.get(row, 0)});
            if (position >= 1 && position <= out.size()) {
                out[position - 1] = bounds_from(r, row, 1);
            }
        }
    } catch (database_error const& e) {
        spdlog::debug("Estimated bounds of {} tables in one statement failed ({}); asking table by table",
                      requests.size(), e.what());
        co_return std::nullopt;
    }
    co_return out;
}

asio::awaitable<std::vector<std::optional<std::array<double, 4>>>>
async_exact_bounds(pg::connection& conn, std::span<bounds_request const> requests) {
    // Small tables cost a round trip each, not their scan; a few dozen per statement keeps the
    // statement short and one slow table's time limit from failing hundreds of others.
    constexpr std::size_t per_statement = 50;
    std::vector<std::optional<std::array<double, 4>>> out(requests.size());
    for (std::size_t first = 0; first < requests.size(); first += per_statement) {
        auto const chunk = requests.subspan(first, std::min(per_statement, requests.size() - first));
        bool batch_failed = false;
        std::string failure;
        try {
            auto const r = co_await conn.async_exec(exact_bounds_sql(chunk));
            for (int row = 0; row < r.num_rows(); ++row) {
                auto const position = std::stoul(std::string{r.get(row, 0)});
                if (position < chunk.size()) {
                    out[first + position] = bounds_from(r, row, 1);
                }
            }
        } catch (database_error const& e) {
            batch_failed = true;
            failure = e.what();
        }
        if (batch_failed) {
            spdlog::debug("Exact bounds of {} tables in one statement failed ({}); asking table by table",
                          chunk.size(), failure);
            for (std::size_t k = 0; k < chunk.size(); ++k) {
                out[first + k] =
                    co_await async_table_bounds(conn, *chunk[k].table, chunk[k].srid, bounds_mode::calc);
            }
        }
    }
    co_return out;
}

asio::awaitable<std::optional<std::array<double, 4>>>
async_filtered_bounds(pg::connection& conn, table_info const& table, int srid, row_filter const& filter) {
    std::string failure;
    try {
        auto const r = co_await conn.async_exec(filtered_bounds_sql(table, srid, filter.sql), filter.params);
        if (r.num_rows() == 1 && !r.is_null(0, 0)) {
            co_return bounds_from(r, 0, 0);
        }
        co_return std::nullopt;
    } catch (database_error const& e) {
        failure = e.what();
    }
    spdlog::warn("Bounds of the filtered rows of {}.{}.{} unavailable: {}", table.schema, table.table,
                 table.geometry_column, failure);
    co_return std::nullopt;
}

asio::awaitable<value_srids> async_value_srids(pg::connection& conn, table_info const& table, int srid,
                                               row_filter const* filter) {
    value_srids out;
    std::string failure;
    try {
        auto const sql = value_srids_sql(table, srid, filter != nullptr ? filter->sql : std::string{});
        std::vector<std::string> const params =
            filter != nullptr ? filter->params : std::vector<std::string>{};
        auto const r = co_await conn.async_exec(sql, params);
        out.read = true;
        std::vector<std::string> unknown;
        std::vector<std::array<double, 4>> extents;
        std::vector<std::array<double, 4>> widened;
        for (int row = 0; row < r.num_rows(); ++row) {
            int const value_srid = std::stoi(std::string{r.get(row, 0)});
            if (r.get(row, 2) != "t") {
                unknown.push_back(fmt::format("{} value(s) with SRID {}", r.get(row, 1), value_srid));
                continue;
            }
            out.srids.push_back(value_srid);
            if (r.is_null(row, 3)) {
                continue; // the filter keeps none of them
            }
            extents.push_back(bounds_from(r, row, 3));
            widened.push_back(bounds_from(r, row, 7));
        }
        // Widened (a point or a line has no area) only when the union of every SRID's extent is.
        auto const span = union_of(extents);
        if (span && ((*span)[0] == (*span)[2] || (*span)[1] == (*span)[3])) {
            out.bounds = union_of(widened);
        } else {
            out.bounds = span;
        }
        spdlog::info("{}.{}.{} declares no SRID: each value is drawn in its own (values without one in {}); "
                     "SRIDs found: {}",
                     table.schema, table.table, table.geometry_column, srid,
                     out.srids.empty() ? std::string{"none yet"}
                                       : fmt::format("{}", fmt::join(out.srids, ", ")));
        if (!unknown.empty()) {
            spdlog::warn(
                "{}.{}.{}: spatial_ref_sys does not know the SRID of {}: they are not drawn; give them "
                "a known SRID (ST_SetSRID) or add theirs to spatial_ref_sys",
                table.schema, table.table, table.geometry_column, fmt::join(unknown, " and "));
        }
        co_return out;
    } catch (database_error const& e) {
        failure = e.what();
    }
    spdlog::warn("The SRIDs of the values of {}.{}.{} could not be read ({}): its tiles transform every row "
                 "instead of using the spatial index; declare the column's SRID (for a view: "
                 "{}::geometry(Geometry, 4326)), or use --auto-bounds calc to lift the 5 s limit",
                 table.schema, table.table, table.geometry_column, failure, table.geometry_column);
    co_return out;
}

asio::awaitable<void> async_check_filter(pg::connection& conn, table_info const& table,
                                         row_filter const& filter, std::string const& source_id,
                                         std::string const& filter_text) {
    std::string failure;
    try {
        co_await conn.async_exec(filter_check_sql(table, filter.sql), filter.params);
        co_return;
    } catch (database_error const& e) {
        failure = e.what();
    }
    throw config_error{fmt_error("The filter of source {} ({}) does not fit {}.{}: {}; compare each column "
                                 "with a value of its type (numbers unquoted, text in single quotes, "
                                 "DATE('YYYY-MM-DD') for dates)",
                                 source_id, filter_text, table.schema, table.table, failure)};
}

asio::awaitable<std::optional<std::array<double, 4>>>
async_table_bounds(pg::connection& conn, table_info const& table, int srid, bounds_mode mode) {
    if (mode == bounds_mode::skip) {
        co_return std::nullopt;
    }
    std::array<std::string, 3> const names{estimated_extent_name(table.schema),
                                           estimated_extent_name(table.table), table.geometry_column};
    for (bool const quick : {true, false}) {
        if (quick && mode == bounds_mode::calc) {
            continue;
        }
        std::string failure;
        try {
            // (GCC 12 miscompiles co_await inside ?:, hence the plain if.)
            pg::result r;
            if (quick) {
                r = co_await conn.async_exec(table_bounds_sql(table, srid, true), names);
            } else {
                r = co_await conn.async_exec(table_bounds_sql(table, srid, false));
            }
            if (r.num_rows() == 1 && !r.is_null(0, 0)) {
                co_return bounds_from(r, 0, 0);
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
            spdlog::warn("Bounds of {}.{}.{} could not be computed: {} (use auto_bounds: calc without a "
                         "time limit, add a spatial index, or configure bounds)",
                         table.schema, table.table, table.geometry_column, failure);
        }
    }
    co_return std::nullopt;
}

} // namespace kachel::postgis
