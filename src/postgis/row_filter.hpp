#pragma once

#include "postgis/cql2.hpp"
#include "postgis/table_info.hpp"

#include <string>
#include <vector>

namespace kachel::postgis {

/// A CQL2 filter compiled for one table: a boolean SQL expression in which every literal of the
/// filter is a bound parameter (`$first`, `$first+1`...) and every property a quoted column.
struct row_filter {
    std::string sql;
    std::vector<std::string> params; ///< the parameters' values, as text, in order
};

/// Compiles `filter` against the columns of `table`, whose geometry is taken in `srid` (the
/// effective SRID: the column's, or the configured one for SRID 0). Spatial literals are EPSG:4326
/// and are transformed to `srid`, so the GiST index on the column stays usable.
/// \throws cql2::filter_error with the position of a property the table does not have, or of a
/// condition its column's type cannot take.
[[nodiscard]] row_filter compile_filter(cql2::node const& filter, table_info const& table, int srid,
                                        int first_param);

} // namespace kachel::postgis
