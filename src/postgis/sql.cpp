#include "postgis/sql.hpp"

#include <fmt/format.h>

namespace kachel::postgis {

namespace {

std::string quote_with(std::string_view text, char quote) {
    std::string out;
    out.reserve(text.size() + 2);
    out += quote;
    for (char const c : text) {
        if (c == quote) {
            out += quote;
        }
        out += c;
    }
    out += quote;
    return out;
}

} // namespace

std::string quote_ident(std::string_view name) {
    return quote_with(name, '"');
}

std::string quote_literal(std::string_view text) {
    return quote_with(text, '\'');
}

std::string table_tile_sql(table_info const& table, table_layout const& layout, bool margin_supported,
                           std::string_view row_filter) {
    auto const& params = layout.geometry;
    int const srid = layout.srid;
    auto const column = quote_ident(table.geometry_column);
    auto const relation = fmt::format("{}.{}", quote_ident(table.schema), quote_ident(table.table));
    constexpr std::string_view envelope = "ST_TileEnvelope($1::integer, $2::integer, $3::integer)";
    double const margin = static_cast<double>(params.buffer) / params.extent;

    // The box used with && must be in the column's SRID and include the buffer, so features
    // just outside the tile still draw their part inside it.
    std::string search_box;
    // Without a buffer, and in SRIDs other than these two, the tile's envelope transformed.
    if (params.buffer != 0 && srid == 3857 && margin_supported) {
        search_box =
            fmt::format("ST_TileEnvelope($1::integer, $2::integer, $3::integer, margin => {})", margin);
    } else if (params.buffer != 0 && srid == 4326) {
        // Expanding in degrees: a margin-expanded 3857 envelope transformed to 4326 wraps at the
        // antimeridian and would cover none of the tile.
        search_box = fmt::format("ST_Expand(ST_Transform({}, 4326), ({} * 360.0) / 2^($1::integer))",
                                 envelope, margin);
    } else {
        search_box = fmt::format("ST_Transform({}, {})", envelope, srid);
    }
    std::string filter = fmt::format("{} && {}", column, search_box);
    if (table.is_geography) {
        // The box becomes a geography: keep it inside the valid lon/lat range (it would be
        // wrapped otherwise), and skip the filter below zoom 2, where a tile spans 180 degrees
        // of longitude or more and no geodesic polygon can describe it. ST_AsMVTGeom still
        // drops what lies outside the tile.
        filter = fmt::format("CASE WHEN $1::integer < 2 THEN true ELSE {} && ST_ClipByBox2D({}, "
                             "ST_MakeEnvelope(-180, -90, 180, 90)::box2d) END",
                             column, search_box);
    }

    // A column whose SRID is 0 in the database but configured (or defaulted) gets it set here.
    std::string geometry = fmt::format("{}::geometry", column);
    if (table.srid == 0 && srid != 0) {
        geometry = fmt::format("ST_SetSRID({}, {})", geometry, srid);
        filter = fmt::format("ST_SetSRID({}::geometry, {}) && {}", column, srid, search_box);
    }

    std::string columns;
    auto const add_column = [&columns](published_column const& c) {
        columns += ", ";
        columns += quote_ident(c.column);
        if (c.name != c.column) {
            columns += " AS ";
            columns += quote_ident(c.name);
        }
    };
    std::string id_argument;
    if (layout.id_column) {
        add_column(*layout.id_column);
        id_argument = ", " + quote_literal(layout.id_column->name);
    }
    for (auto const& p : layout.properties) {
        add_column(p);
    }
    if (!row_filter.empty()) {
        filter = fmt::format("{} AND {}", filter, row_filter);
    }
    std::string limit;
    if (layout.max_feature_count) {
        limit = fmt::format(" LIMIT {}", *layout.max_feature_count);
    }

    return fmt::format("SELECT ST_AsMVT(tile, {layer}, {extent}, 'geom'{id}) FROM ("
                       "SELECT ST_AsMVTGeom(ST_Transform(ST_CurveToLine({geometry}), 3857), {env}, "
                       "{extent}, {buffer}, {clip}) AS geom{columns} "
                       "FROM {rel} WHERE {filter}{limit}) AS tile",
                       fmt::arg("layer", quote_literal(layout.layer)), fmt::arg("extent", params.extent),
                       fmt::arg("id", id_argument), fmt::arg("geometry", geometry), fmt::arg("env", envelope),
                       fmt::arg("buffer", params.buffer),
                       fmt::arg("clip", params.clip_geom ? "true" : "false"), fmt::arg("columns", columns),
                       fmt::arg("rel", relation), fmt::arg("filter", filter), fmt::arg("limit", limit));
}

std::string function_tile_sql(function_info const& function) {
    std::string query_argument;
    if (function.query_type) {
        query_argument = fmt::format(", $4::{}", *function.query_type);
    }
    return fmt::format("SELECT * FROM {}.{}($1::integer, $2::integer, $3::integer{})",
                       quote_ident(function.schema), quote_ident(function.function), query_argument);
}

namespace {

/// Extent `e` in EPSG:4326, a single point or a horizontal/vertical line widened by one unit
/// (their extent is degenerate).
constexpr std::string_view widened_in_wgs84 = "ST_Transform(CASE WHEN GeometryType(e) IN ('POINT', "
                                              "'LINESTRING') THEN ST_Expand(e, 1) ELSE e END, 4326)";

} // namespace

std::string filtered_bounds_sql(table_info const& table, int srid, std::string_view row_filter) {
    return fmt::format("SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM ("
                       "SELECT {} AS b FROM (SELECT ST_SetSRID(ST_Extent({}::geometry)::geometry, {}) AS e "
                       "FROM {}.{} WHERE {}) AS ext) AS t WHERE b IS NOT NULL",
                       widened_in_wgs84, quote_ident(table.geometry_column), srid, quote_ident(table.schema),
                       quote_ident(table.table), row_filter);
}

std::string filter_check_sql(table_info const& table, std::string_view row_filter) {
    return fmt::format("SELECT 1 FROM {}.{} WHERE {} LIMIT 0", quote_ident(table.schema),
                       quote_ident(table.table), row_filter);
}

std::string table_bounds_sql(table_info const& table, int srid, bool quick) {
    std::string const extent =
        quick ? fmt::format("SELECT ST_SetSRID(ST_EstimatedExtent($1, $2, $3)::geometry, {}) AS e", srid)
              : fmt::format("SELECT ST_SetSRID(ST_Extent({}::geometry)::geometry, {}) AS e FROM {}.{}",
                            quote_ident(table.geometry_column), srid, quote_ident(table.schema),
                            quote_ident(table.table));
    return fmt::format("SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM ("
                       "SELECT {} AS b FROM ({}) AS ext) AS t WHERE b IS NOT NULL",
                       widened_in_wgs84, extent);
}

std::string exact_bounds_sql(std::span<bounds_request const> tables) {
    std::string parts;
    for (std::size_t i = 0; i < tables.size(); ++i) {
        auto const& table = *tables[i].table;
        parts +=
            fmt::format("{}SELECT {} AS i, ST_SetSRID(ST_Extent({}::geometry)::geometry, {}) AS e FROM {}.{}",
                        i == 0 ? "" : " UNION ALL ", i, quote_ident(table.geometry_column), tables[i].srid,
                        quote_ident(table.schema), quote_ident(table.table));
    }
    return fmt::format(
        "SELECT ext.i, ST_XMin(x.b), ST_YMin(x.b), ST_XMax(x.b), ST_YMax(x.b) FROM ({}) AS ext "
        "CROSS JOIN LATERAL (SELECT {} AS b) AS x WHERE x.b IS NOT NULL",
        parts, widened_in_wgs84);
}

std::string estimated_bounds_sql() {
    // ST_EstimatedExtent reads the column's statistics, or else the root of its spatial index;
    // with neither it only warns twice and returns NULL, which cost 0.28 ms a table (500 such
    // tables: 140 ms), so those go straight to the exact extent. `t.s` and `t.n` are spelled
    // for ST_EstimatedExtent (double quotes doubled); replace() gives the names back.
    return fmt::format(
        "SELECT t.i, ST_XMin(x.b), ST_YMin(x.b), ST_XMax(x.b), ST_YMax(x.b) "
        "FROM unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::boolean[]) "
        "WITH ORDINALITY AS t(s, n, c, srid, indexed, i) "
        "CROSS JOIN LATERAL (SELECT {} AS b FROM (SELECT ST_SetSRID(ST_EstimatedExtent(t.s, "
        "t.n, t.c)::geometry, t.srid) AS e WHERE t.indexed OR EXISTS (SELECT 1 FROM pg_stats AS st "
        "WHERE st.schemaname = replace(t.s, '\"\"', '\"') AND st.tablename = replace(t.n, "
        "'\"\"', '\"') AND st.attname = t.c)) AS ext) AS x WHERE x.b IS NOT NULL",
        widened_in_wgs84);
}

std::string array_literal(std::span<std::string const> items) {
    std::string out = "{";
    for (auto const& item : items) {
        if (out.size() > 1) {
            out += ',';
        }
        out += '"';
        for (char const c : item) {
            if (c == '"' || c == '\\') {
                out += '\\';
            }
            out += c;
        }
        out += '"';
    }
    out += '}';
    return out;
}

} // namespace kachel::postgis
