#pragma once

#include "postgis/function_info.hpp"
#include "postgis/table_info.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace kachel::postgis {

/// `"name"` with embedded quotes doubled.
[[nodiscard]] std::string quote_ident(std::string_view name);

/// `'text'` with embedded quotes doubled (standard_conforming_strings is on since PostgreSQL 9.1).
[[nodiscard]] std::string quote_literal(std::string_view text);

/// The column as a geometry with each value in its own SRID: for a column declared without one
/// (srid_per_value), `srid` is set on the values that carry none; otherwise `column::geometry`.
[[nodiscard]] std::string own_srid_geometry(table_info const& table, int srid);

/// A tile budget's values at one zoom: tile queries of zooms with equal ones are the same.
struct zoom_budget {
    std::optional<std::uint64_t> max_feature_count;
    std::optional<double> thin_points;
    std::optional<double> simplify;
    friend bool operator==(zoom_budget const&, zoom_budget const&) = default;
};

[[nodiscard]] zoom_budget budget_at(tile_budget const& budget, int zoom);

/// The tile query for a table source, taking `$1` z, `$2` x, `$3` y, returning one bytea
/// (ST_AsMVT of every feature in the tile with the layout's id column and attributes), with the
/// layout's budget at `zoom` (a query for one zoom serves every zoom whose budget_at is equal).
/// `margin_supported`: PostGIS >= 3.1 accepts ST_TileEnvelope(..., margin => m).
/// `row_filter`: a compiled filter (postgis/row_filter.hpp) ANDed to the tile's box, or empty.
[[nodiscard]] std::string table_tile_sql(table_info const& table, table_layout const& layout,
                                         bool margin_supported, std::string_view row_filter = {},
                                         int zoom = 0);

/// The tile query for a function source: `$1` z, `$2` x, `$3` y (and `$4` the query object),
/// returning the function's columns (tile bytes, then the ETag text when it has one).
[[nodiscard]] std::string function_tile_sql(function_info const& function);

/// The bounds query (EPSG:4326 xmin, ymin, xmax, ymax) for a table in `srid`; `quick` uses
/// ST_EstimatedExtent with `$1` schema, `$2` table, `$3` column, the exact form ST_Extent.
[[nodiscard]] std::string table_bounds_sql(table_info const& table, int srid, bool quick);

/// The exact bounds (EPSG:4326 xmin, ymin, xmax, ymax) of the rows of `table` that `row_filter`
/// keeps: a compiled filter whose parameters start at `$1`.
[[nodiscard]] std::string filtered_bounds_sql(table_info const& table, int srid, std::string_view row_filter);

/// For a column declared without an SRID (srid_per_value), the SRIDs its values carry. Rows, by
/// SRID: the SRID (0 for none, taken as `srid`), the number of values, whether spatial_ref_sys
/// knows it, and when it does the extent in EPSG:4326 (xmin, ymin, xmax, ymax) of the values
/// `row_filter` keeps (parameters from `$1`; empty for every row), NULL when it keeps none; then
/// that extent again, widened by one unit when it is a point or a line.
[[nodiscard]] std::string value_srids_sql(table_info const& table, int srid, std::string_view row_filter);

/// A statement that only checks that `row_filter` (parameters from `$1`) is valid SQL for `table`
/// and that its values fit the columns' types; it reads no row.
[[nodiscard]] std::string filter_check_sql(table_info const& table, std::string_view row_filter);

/// The exact bounds of several tables in one statement (ST_Extent of each, UNION ALL). Rows: the
/// 0-based position in `tables`, then xmin, ymin, xmax, ymax in EPSG:4326, for non-empty tables.
[[nodiscard]] std::string exact_bounds_sql(std::span<bounds_request const> tables);

/// The estimated bounds of many tables in one statement: `$1` schemas, `$2` tables, `$3` columns
/// (text arrays), `$4` SRIDs (an integer array) and `$5` whether the column has a spatial index
/// (a boolean array), in the same order. A column with neither statistics nor an index is not
/// estimated. Rows: the 1-based position
/// in the arrays, then xmin, ymin, xmax, ymax in EPSG:4326, for the tables that have statistics.
[[nodiscard]] std::string estimated_bounds_sql();

/// A PostgreSQL array literal of `items` (`{"a","b\"c"}`), to pass as one text parameter.
[[nodiscard]] std::string array_literal(std::span<std::string const> items);

} // namespace kachel::postgis
