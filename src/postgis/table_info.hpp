#pragma once

#include "core/text.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kachel::postgis {

/// One (relation, geometry/geography column) pair found in geometry_columns / geography_columns.
struct table_info {
    std::string schema;
    std::string table;
    std::string geometry_column;
    std::string geometry_type; ///< as PostGIS reports it: POINT, MULTIPOLYGON, GEOMETRY, Geometry (geography)
    int srid = 0;
    bool is_geography = false;
    char relkind = 'r'; ///< r table, v view, m materialized view, p partitioned, f foreign
    bool has_spatial_index = false;
    std::optional<std::string> comment;
    /// Every other column that is not geometry/geography: name -> pg_type name without leading `_`.
    std::map<std::string, std::string> properties;
};

/// int2, int4 or int8: the types a feature id may have, and that compare exactly with integers.
[[nodiscard]] inline bool is_integer_type(std::string_view type) noexcept {
    return type == "int2" || type == "int4" || type == "int8";
}

/// A column as a tile shows it: the real column, the attribute name, the type shown in TileJSON.
struct published_column {
    std::string column;
    std::string name;
    std::string type;
};

/// Tile geometry settings (martin-compat 2.4 defaults).
struct tile_params {
    int extent = 4096;
    int buffer = 64;
    bool clip_geom = true;
};

/// The highest zoom a setting may name.
inline constexpr int max_zoom_level = 30;

/// A setting that may take its own value in each zoom range; zooms without one have none.
template <class T>
struct per_zoom {
    std::array<std::optional<T>, max_zoom_level + 1> values{};

    /// The same value at every zoom (none when `value` is empty).
    [[nodiscard]] static per_zoom everywhere(std::optional<T> value) {
        per_zoom out;
        out.values.fill(value);
        return out;
    }
    [[nodiscard]] std::optional<T> at(int z) const noexcept {
        return z >= 0 && z <= max_zoom_level ? values[static_cast<std::size_t>(z)] : std::nullopt;
    }
    [[nodiscard]] bool any() const noexcept {
        return std::ranges::any_of(values, [](auto const& v) { return v.has_value(); });
    }
    friend bool operator==(per_zoom const&, per_zoom const&) = default;
};

/// One `order_by` term: a column, biggest first when descending. NULLs always come last.
struct order_term {
    std::string column;
    bool descending = false;
    friend bool operator==(order_term const&, order_term const&) = default;
};

/// What a table tile may hold (`order_by`, `max_feature_count`, `thin_points`, `simplify`).
struct tile_budget {
    /// The ranking: which features a tile keeps first, and which point a thinned cell keeps.
    std::vector<order_term> order_by;
    per_zoom<std::uint64_t> max_feature_count; ///< the most features per tile (LIMIT)
    per_zoom<double> thin_points;              ///< at most one point per N x N tile pixels
    per_zoom<double> simplify;                 ///< simplification tolerance, in tile pixels
};

/// Tile pixels per tile side for `thin_points` and `simplify`: the 256-pixel tile that zoom
/// levels are defined by (MapLibre draws a vector tile on 512 screen pixels: 1 pixel = 2 of them).
inline constexpr int tile_pixels = 256;

/// How a table source builds its tiles, after the config (or auto-publish defaults) is applied.
struct table_layout {
    std::string layer;                         ///< MVT layer name: layer_id, else the source id
    int srid = 0;                              ///< effective SRID (the column's, or configured)
    std::optional<published_column> id_column; ///< the feature id (an integer column)
    std::vector<published_column> properties;  ///< attributes, sorted by name
    tile_params geometry;                      ///< extent, buffer, clip_geom
    tile_budget budget;                        ///< what a tile may hold, by zoom
    /// For a geometry column declared without an SRID: the SRIDs its values carry, found when
    /// the source is published (0: values without one, drawn as `srid`). Each value is drawn in
    /// its own SRID; empty when they could not be read, and the tile query then transforms every
    /// row instead of using the spatial index.
    std::vector<int> value_srids;
};

/// A geometry column declared without an SRID, published with `srid` standing in for values
/// that carry none: its values are drawn each in its own SRID.
[[nodiscard]] inline bool srid_per_value(table_info const& table, int srid) noexcept {
    return !table.is_geography && table.srid == 0 && srid != 0;
}

/// A column declared to hold points (POINT, MULTIPOINT, with Z or M), as PostGIS names the type.
[[nodiscard]] inline bool is_point_type(std::string_view type) noexcept {
    auto const starts = [type](std::string_view prefix) {
        return type.size() >= prefix.size() && iequals(type.substr(0, prefix.size()), prefix);
    };
    return starts("POINT") || starts("MULTIPOINT");
}

/// Every discovered column as an attribute under its own name (auto-publish without id column).
[[nodiscard]] inline std::vector<published_column> all_properties(table_info const& table) {
    std::vector<published_column> out;
    out.reserve(table.properties.size());
    for (auto const& [name, type] : table.properties) {
        out.push_back({name, name, type});
    }
    return out;
}

/// A table and the SRID its column is taken in, for the bounds queries.
struct bounds_request {
    table_info const* table;
    int srid;
};

} // namespace kachel::postgis
