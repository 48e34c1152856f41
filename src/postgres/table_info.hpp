#pragma once

#include <map>
#include <optional>
#include <string>

namespace kachel::postgres {

/// One (relation, geometry column) pair found in geometry_columns / geography_columns.
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

} // namespace kachel::postgres
