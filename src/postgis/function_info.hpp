#pragma once

#include <optional>
#include <string>
#include <vector>

namespace kachel::postgis {

/// A function that serves tiles: `(z|zoom integer, x integer, y integer[, query json|jsonb])`
/// returning `bytea`, a single bytea column, or `(bytea, text)` (martin-compat 3.1).
struct function_info {
    std::string schema;
    std::string function;
    /// "json" or "jsonb" when the function takes the URL query as a 4th argument.
    std::optional<std::string> query_type;
    /// True when the result has a second, text column: the tile's ETag (decision D9).
    bool has_etag_column = false;
    std::optional<std::string> comment;
    /// For logs: `schema.name(integer, integer, integer) -> bytea`.
    std::string signature;
};

} // namespace kachel::postgis
