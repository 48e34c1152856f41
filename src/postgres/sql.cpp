#include "postgres/sql.hpp"

#include <fmt/format.h>

namespace kachel::postgres {

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

std::string table_tile_sql(table_info const& table, std::string_view layer, tile_params const& params,
                           bool margin_supported) {
    auto const column = quote_ident(table.geometry_column);
    auto const relation = fmt::format("{}.{}", quote_ident(table.schema), quote_ident(table.table));
    constexpr std::string_view envelope = "ST_TileEnvelope($1::integer, $2::integer, $3::integer)";
    double const margin = static_cast<double>(params.buffer) / params.extent;

    // The box used with && must be in the column's SRID and include the buffer, so features
    // just outside the tile still draw their part inside it.
    std::string search_box;
    if (params.buffer == 0) {
        search_box = fmt::format("ST_Transform({}, {})", envelope, table.srid);
    } else if (table.srid == 3857 && margin_supported) {
        search_box =
            fmt::format("ST_TileEnvelope($1::integer, $2::integer, $3::integer, margin => {})", margin);
    } else if (table.srid == 4326) {
        // Expanding in degrees: a margin-expanded 3857 envelope transformed to 4326 wraps at the
        // antimeridian and would cover none of the tile.
        search_box = fmt::format("ST_Expand(ST_Transform({}, 4326), ({} * 360.0) / 2^($1::integer))",
                                 envelope, margin);
    } else {
        search_box = fmt::format("ST_Transform({}, {})", envelope, table.srid);
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

    std::string properties;
    for (auto const& [name, type] : table.properties) {
        properties += ", ";
        properties += quote_ident(name);
    }

    return fmt::format("SELECT ST_AsMVT(tile, {layer}, {extent}, 'geom') FROM ("
                       "SELECT ST_AsMVTGeom(ST_Transform(ST_CurveToLine({col}::geometry), 3857), {env}, "
                       "{extent}, {buffer}, {clip}) AS geom{props} "
                       "FROM {rel} WHERE {filter}) AS tile",
                       fmt::arg("layer", quote_literal(layer)), fmt::arg("extent", params.extent),
                       fmt::arg("col", column), fmt::arg("env", envelope), fmt::arg("buffer", params.buffer),
                       fmt::arg("clip", params.clip_geom ? "true" : "false"), fmt::arg("props", properties),
                       fmt::arg("rel", relation), fmt::arg("filter", filter));
}

std::string table_bounds_sql(table_info const& table, bool quick) {
    // A single point or a horizontal/vertical line has a degenerate extent: widen it by one unit.
    std::string const extent =
        quick
            ? fmt::format("SELECT ST_SetSRID(ST_EstimatedExtent($1, $2, $3)::geometry, {}) AS e", table.srid)
            : fmt::format("SELECT ST_SetSRID(ST_Extent({}::geometry)::geometry, {}) AS e FROM {}.{}",
                          quote_ident(table.geometry_column), table.srid, quote_ident(table.schema),
                          quote_ident(table.table));
    return fmt::format(
        "SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM ("
        "SELECT ST_Transform(CASE WHEN GeometryType(e) IN ('POINT', 'LINESTRING') "
        "THEN ST_Expand(e, 1) ELSE e END, 4326) AS b FROM ({}) AS ext) AS t WHERE b IS NOT NULL",
        extent);
}

} // namespace kachel::postgres
