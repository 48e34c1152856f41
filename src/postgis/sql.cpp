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

namespace {

constexpr std::string_view tile_envelope = "ST_TileEnvelope($1::integer, $2::integer, $3::integer)";

/// The box used with && against a column in `srid`: the tile's envelope with the buffer, so
/// features just outside the tile still draw their part inside it.
std::string search_box(int srid, tile_params const& params, bool margin_supported) {
    double const margin = static_cast<double>(params.buffer) / params.extent;
    if (params.buffer != 0 && srid == 3857 && margin_supported) {
        return fmt::format("ST_TileEnvelope($1::integer, $2::integer, $3::integer, margin => {})", margin);
    }
    if (params.buffer != 0 && srid == 4326) {
        // Expanding in degrees: a margin-expanded 3857 envelope transformed to 4326 wraps at the
        // antimeridian and would cover none of the tile.
        return fmt::format("ST_Expand(ST_Transform({}, 4326), ({} * 360.0) / 2^($1::integer))", tile_envelope,
                           margin);
    }
    // Without a buffer, and in SRIDs other than these two, the tile's envelope transformed.
    return fmt::format("ST_Transform({}, {})", tile_envelope, srid);
}

/// The tile filter of a column whose values carry their own SRIDs: one arm per SRID found, each
/// `column && box in that SRID` (&& compares coordinates and ignores SRIDs), so every arm is a
/// scan of the spatial index and PostgreSQL ORs their bitmaps. Values with an SRID found later
/// match no arm; with none known, every row is transformed and compared (no index).
std::string per_value_filter(table_info const& table, table_layout const& layout, bool margin_supported) {
    auto const column = quote_ident(table.geometry_column);
    if (layout.value_srids.empty()) {
        double const margin = static_cast<double>(layout.geometry.buffer) / layout.geometry.extent;
        // 40075016.68557849: the width of the Web Mercator world in metres.
        return fmt::format(
            "ST_Transform({}, 3857) && ST_Expand({}, {} * 40075016.68557849 / 2^($1::integer))",
            own_srid_geometry(table, layout.srid), tile_envelope, margin);
    }
    std::string arms;
    for (int const s : layout.value_srids) {
        arms += fmt::format("{}(ST_SRID({}) = {} AND {} && {})", arms.empty() ? "" : " OR ", column, s,
                            column, search_box(s == 0 ? layout.srid : s, layout.geometry, margin_supported));
    }
    return layout.value_srids.size() == 1 ? arms : "(" + arms + ")";
}

/// Names of the helper columns of a budgeted tile query: a table column cannot be named so
/// by accident (the dot).
constexpr std::string_view geometry_alias = "\"kachel.n\"";
constexpr std::string_view rank_alias = "\"kachel.r\"";

/// One tile pixel at zoom `$1`, in Web Mercator metres: the world's width over 2^z tiles of
/// tile_pixels pixels (40075016.68557849 / 256 = 156543.03392804097).
constexpr std::string_view pixel_metres = "(156543.03392804097 / 2^($1::integer))";

std::string order_alias(std::size_t i) {
    return fmt::format("\"kachel.o{}\"", i);
}

/// The ORDER BY list of the ranking (empty without one): NULLs last in both directions, so a
/// row without a value never outranks one with it.
std::string ranking(std::vector<order_term> const& terms) {
    std::string out;
    for (std::size_t i = 0; i < terms.size(); ++i) {
        out += fmt::format("{}{} {} NULLS LAST", i == 0 ? "" : ", ", order_alias(i),
                           terms[i].descending ? "DESC" : "ASC");
    }
    return out;
}

/// The tile query with a budget: the rows in the tile (the same `&&` filter, so the spatial
/// index serves it), in Web Mercator; lines and polygons under one pixel dropped when
/// simplifying; one point per thinning cell, the best ranked; the best ranked rows up to the
/// limit; each simplified, then encoded.
/// The cell column and row of a point at zoom `$1` in a grid of `pixels` x `pixels` tile pixels
/// anchored at the world's north-west corner, from `native` (the geometry in its own SRID). From
/// longitude and latitude, or Web Mercator metres, the cell is computed without transforming
/// the point (the tile's rows are all read, so this is most of the query's time); other SRIDs
/// are transformed.
std::pair<std::string, std::string> grid_cell(table_info const& table, int srid, double pixels,
                                              std::string_view native) {
    auto const per_world = fmt::format("(2^($1::integer) * {} / {})", tile_pixels, pixels);
    if (!srid_per_value(table, srid) && srid == 4326) {
        // Web Mercator's x and y from degrees, as fractions of the world (latitude held within
        // Web Mercator's range).
        auto const lat =
            fmt::format("radians(least(greatest(ST_YMin({}), -85.0511287798), 85.0511287798))", native);
        return {fmt::format("floor((ST_XMin({}) + 180) / 360 * {})", native, per_world),
                fmt::format("floor((1 - ln(tan({0}) + 1 / cos({0})) / pi()) / 2 * {1})", lat, per_world)};
    }
    auto const metres = !srid_per_value(table, srid) && srid == 3857
                            ? std::string{native}
                            : fmt::format("ST_Transform({}, 3857)", native);
    return {
        fmt::format("floor((ST_XMin({}) + 20037508.342789244) / 40075016.68557849 * {})", metres, per_world),
        fmt::format("floor((20037508.342789244 - ST_YMax({})) / 40075016.68557849 * {})", metres, per_world)};
}

std::string budget_tile_sql(table_info const& table, table_layout const& layout, zoom_budget const& budget,
                            std::string_view columns, std::string_view id_argument,
                            std::string_view relation_rows) {
    auto const& params = layout.geometry;
    auto const& terms = layout.budget.order_by;
    std::string orders;
    for (std::size_t i = 0; i < terms.size(); ++i) {
        orders += fmt::format(", {} AS {}", quote_ident(terms[i].column), order_alias(i));
    }
    // The rows in the tile with the geometry in its own SRID: only the rows kept are transformed.
    auto const n = geometry_alias;
    std::string rows = fmt::format("SELECT {} AS {}{}{} {}", own_srid_geometry(table, layout.srid), n,
                                   columns, orders, relation_rows);
    bool const mercator = !srid_per_value(table, layout.srid) && layout.srid == 3857;
    auto const in_mercator = [mercator](std::string_view e) {
        return mercator ? std::string{e} : fmt::format("ST_Transform({}, 3857)", e);
    };
    std::string keep;
    if (budget.simplify) {
        // Under one pixel both ways, a line or polygon would draw as a dot at most (its box in
        // Web Mercator tells).
        auto const box = in_mercator(fmt::format("ST_Envelope({})", n));
        keep = fmt::format("(ST_Dimension({0}) = 0 OR ST_XMax({1}) - ST_XMin({1}) >= {2} OR "
                           "ST_YMax({1}) - ST_YMin({1}) >= {2})",
                           n, box, pixel_metres);
    }
    auto const order = ranking(terms);
    if (budget.thin_points) {
        // One point per cell; a cell is the same whichever tile (or buffer) a point is seen from.
        auto const [column, row] = grid_cell(table, layout.srid, *budget.thin_points, n);
        auto const where = keep.empty() ? std::string{} : " WHERE " + keep;
        if (is_point_type(table.geometry_type)) {
            rows = fmt::format("SELECT DISTINCT ON (1, 2) {0} AS \"kachel.cx\", {1} AS \"kachel.cy\", f0.* "
                               "FROM ({2}) AS f0{3} ORDER BY 1, 2{4}{5}",
                               column, row, rows, where, order.empty() ? "" : ", ", order);
            keep.clear();
        } else {
            // A mixed column: its lines and polygons are kept whole.
            rows = fmt::format("SELECT *, row_number() OVER (PARTITION BY CASE WHEN ST_Dimension({0}) = 0 "
                               "THEN {1} END, CASE WHEN ST_Dimension({0}) = 0 THEN {2} END{3}{4}) AS {5} "
                               "FROM ({6}) AS f0{7}",
                               n, column, row, order.empty() ? "" : " ORDER BY ", order, rank_alias, rows,
                               where);
            keep = fmt::format("({} = 1 OR ST_Dimension({}) > 0)", rank_alias, n);
        }
    }
    std::string chosen = fmt::format("SELECT * FROM ({}) AS f1", rows);
    if (!keep.empty()) {
        chosen += " WHERE " + keep;
    }
    if (!order.empty()) {
        chosen += " ORDER BY " + order;
    }
    if (budget.max_feature_count) {
        chosen += fmt::format(" LIMIT {}", *budget.max_feature_count);
    }
    std::string drawn = in_mercator(fmt::format("ST_CurveToLine({})", n));
    if (budget.simplify) {
        drawn = fmt::format("ST_Simplify({}, {} * {}, false)", drawn, *budget.simplify, pixel_metres);
    }
    std::string names;
    if (layout.id_column) {
        names += ", " + quote_ident(layout.id_column->name);
    }
    for (auto const& p : layout.properties) {
        names += ", " + quote_ident(p.name);
    }
    return fmt::format("SELECT ST_AsMVT(tile, {layer}, {extent}, 'geom'{id}) FROM ("
                       "SELECT ST_AsMVTGeom({drawn}, {env}, {extent}, {buffer}, {clip}) AS geom{names} "
                       "FROM ({chosen}) AS f2) AS tile",
                       fmt::arg("layer", quote_literal(layout.layer)), fmt::arg("extent", params.extent),
                       fmt::arg("id", id_argument), fmt::arg("drawn", drawn), fmt::arg("env", tile_envelope),
                       fmt::arg("buffer", params.buffer),
                       fmt::arg("clip", params.clip_geom ? "true" : "false"), fmt::arg("names", names),
                       fmt::arg("chosen", chosen));
}

} // namespace

zoom_budget budget_at(tile_budget const& budget, int zoom) {
    return {budget.max_feature_count.at(zoom), budget.thin_points.at(zoom), budget.simplify.at(zoom)};
}

std::string own_srid_geometry(table_info const& table, int srid) {
    auto const column = quote_ident(table.geometry_column);
    if (!srid_per_value(table, srid)) {
        return column + "::geometry";
    }
    return fmt::format("CASE WHEN ST_SRID({0}) = 0 THEN ST_SetSRID({0}, {1}) ELSE {0} END", column, srid);
}

std::string table_tile_sql(table_info const& table, table_layout const& layout, bool margin_supported,
                           std::string_view row_filter, int zoom) {
    auto const& params = layout.geometry;
    int const srid = layout.srid;
    auto const column = quote_ident(table.geometry_column);
    auto const relation = fmt::format("{}.{}", quote_ident(table.schema), quote_ident(table.table));

    std::string filter;
    if (srid_per_value(table, srid)) {
        filter = per_value_filter(table, layout, margin_supported);
    } else if (table.is_geography) {
        // The box becomes a geography: keep it inside the valid lon/lat range (it would be
        // wrapped otherwise), and skip the filter below zoom 2, where a tile spans 180 degrees
        // of longitude or more and no geodesic polygon can describe it. ST_AsMVTGeom still
        // drops what lies outside the tile.
        filter = fmt::format("CASE WHEN $1::integer < 2 THEN true ELSE {} && ST_ClipByBox2D({}, "
                             "ST_MakeEnvelope(-180, -90, 180, 90)::box2d) END",
                             column, search_box(srid, params, margin_supported));
    } else {
        filter = fmt::format("{} && {}", column, search_box(srid, params, margin_supported));
    }
    std::string const geometry = own_srid_geometry(table, srid);

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
    auto const budget = budget_at(layout.budget, zoom);
    auto const relation_rows = fmt::format("FROM {} WHERE {}", relation, filter);
    if (!budget.thin_points && !budget.simplify && layout.budget.order_by.empty()) {
        std::string limit;
        if (budget.max_feature_count) {
            limit = fmt::format(" LIMIT {}", *budget.max_feature_count);
        }
        return fmt::format(
            "SELECT ST_AsMVT(tile, {layer}, {extent}, 'geom'{id}) FROM ("
            "SELECT ST_AsMVTGeom(ST_Transform(ST_CurveToLine({geometry}), 3857), {env}, "
            "{extent}, {buffer}, {clip}) AS geom{columns} "
            "{rows}{limit}) AS tile",
            fmt::arg("layer", quote_literal(layout.layer)), fmt::arg("extent", params.extent),
            fmt::arg("id", id_argument), fmt::arg("geometry", geometry), fmt::arg("env", tile_envelope),
            fmt::arg("buffer", params.buffer), fmt::arg("clip", params.clip_geom ? "true" : "false"),
            fmt::arg("columns", columns), fmt::arg("rows", relation_rows), fmt::arg("limit", limit));
    }
    return budget_tile_sql(table, layout, budget, columns, id_argument, relation_rows);
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

std::string value_srids_sql(table_info const& table, int srid, std::string_view row_filter) {
    auto const column = quote_ident(table.geometry_column);
    // Per SRID of every row: how many values, whether spatial_ref_sys knows it (an unknown one
    // cannot be transformed), and the extent in EPSG:4326 of the values the filter keeps, when
    // known. CASE keeps the filter away from values it could not transform.
    std::string kept = column;
    if (!row_filter.empty()) {
        kept = fmt::format("CASE WHEN ST_SRID({0}) = 0 OR ST_SRID({0}) IN (SELECT srid FROM spatial_ref_sys) "
                           "THEN CASE WHEN {1} THEN {0} END END",
                           column, row_filter);
    }
    return fmt::format(
        "SELECT s, n, known, ST_XMin(a), ST_YMin(a), ST_XMax(a), ST_YMax(a), ST_XMin(b), ST_YMin(b), "
        "ST_XMax(b), ST_YMax(b) FROM ("
        "SELECT s, n, known, CASE WHEN known THEN ST_Transform(e, 4326) END AS a, "
        "CASE WHEN known THEN {widened} END AS b FROM ("
        "SELECT s, n, known, ST_SetSRID(x, CASE WHEN s = 0 THEN {srid} ELSE s END) AS e FROM ("
        "SELECT s, n, x, s = 0 OR EXISTS (SELECT 1 FROM spatial_ref_sys AS r WHERE r.srid = s) AS known FROM "
        "("
        "SELECT ST_SRID({col}) AS s, count(*) AS n, ST_Extent({kept})::geometry AS x FROM {schema}.{table} "
        "WHERE {col} IS NOT NULL GROUP BY 1) AS g) AS k) AS p) AS t ORDER BY s",
        fmt::arg("widened", widened_in_wgs84), fmt::arg("srid", srid), fmt::arg("col", column),
        fmt::arg("kept", kept), fmt::arg("schema", quote_ident(table.schema)),
        fmt::arg("table", quote_ident(table.table)));
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
