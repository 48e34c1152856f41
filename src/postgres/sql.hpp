#pragma once

#include "postgres/table_info.hpp"

#include <string>
#include <string_view>

namespace kachel::postgres {

/// `"name"` with embedded quotes doubled.
[[nodiscard]] std::string quote_ident(std::string_view name);

/// `'text'` with embedded quotes doubled (standard_conforming_strings is on since PostgreSQL 9.1).
[[nodiscard]] std::string quote_literal(std::string_view text);

/// Tile geometry settings (martin-compat 2.4 defaults).
struct tile_params {
    int extent = 4096;
    int buffer = 64;
    bool clip_geom = true;
};

/// The tile query for a table source, taking `$1` z, `$2` x, `$3` y, returning one bytea
/// (ST_AsMVT of every feature in the tile with all of `table.properties` as attributes).
/// `margin_supported`: PostGIS >= 3.1 accepts ST_TileEnvelope(..., margin => m).
[[nodiscard]] std::string table_tile_sql(table_info const& table, std::string_view layer,
                                         tile_params const& params, bool margin_supported);

/// The bounds query (EPSG:4326 xmin, ymin, xmax, ymax) for a table; `quick` uses
/// ST_EstimatedExtent with `$1` schema, `$2` table, `$3` column, the exact form ST_Extent.
[[nodiscard]] std::string table_bounds_sql(table_info const& table, bool quick);

} // namespace kachel::postgres
