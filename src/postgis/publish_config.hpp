#pragma once

#include "postgis/discovery.hpp"
#include "tiles/tile_source.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kachel::postgis {

/// A table published under a chosen id (`postgres.tables.<id>`, Martin's TableInfo).
struct table_config {
    std::string id;
    std::string schema;
    std::string table;
    std::optional<std::string> geometry_column; ///< may be omitted when the table has one
    std::optional<int> srid;
    std::optional<std::string> geometry_type; ///< informative; a mismatch is only warned
    std::optional<std::string> layer_id;
    std::optional<std::string> id_column;
    /// Attribute name -> type text shown in TileJSON, in file order. Absent = no attributes.
    std::optional<std::vector<std::pair<std::string, std::string>>> properties;
    std::optional<int> minzoom;
    std::optional<int> maxzoom;
    std::optional<std::array<double, 4>> bounds;
    std::optional<int> extent;
    std::optional<int> buffer;
    std::optional<bool> clip_geom;
    std::optional<std::chrono::milliseconds> statement_timeout;
    std::optional<tiles::cache_gate> cache;
    /// `filter`: CQL2 Text choosing the rows served (checked for syntax when the file is read).
    std::optional<std::string> filter;
    /// `notify_changes`: overrides the connection's.
    std::optional<bool> notify_changes;
    /// `order_by`: the ranking of features, columns as written (matched once the table is found).
    std::vector<order_term> order_by;
    /// `max_feature_count`: overrides the connection's; may differ by zoom.
    std::optional<per_zoom<std::uint64_t>> max_feature_count;
    /// `thin_points`: at most one point per N x N tile pixels, by zoom.
    std::optional<per_zoom<double>> thin_points;
    /// `simplify`: tolerance in tile pixels for lines and polygons, by zoom.
    std::optional<per_zoom<double>> simplify;
};

/// A function published under a chosen id (`postgres.functions.<id>`).
struct function_config {
    std::string id;
    std::string schema;
    std::string function;
    std::optional<int> minzoom;
    std::optional<int> maxzoom;
    std::optional<std::array<double, 4>> bounds;
    std::optional<std::chrono::milliseconds> statement_timeout;
    std::optional<tiles::cache_gate> cache;
};

/// `auto_publish` resolved to its two halves (martin-compat 6.2).
struct auto_publish_config {
    bool tables = true;
    bool functions = true;
    std::vector<std::string> table_schemas;        ///< empty = every schema
    std::vector<std::string> function_schemas;     ///< empty = every schema
    std::string table_id_format = "{table}";       ///< with {schema}, {table}, {column}
    std::string function_id_format = "{function}"; ///< with {schema}, {function}
    std::vector<std::string> id_columns;           ///< feature-id candidates, in order
    std::optional<int> extent;
    std::optional<int> buffer;
    std::optional<bool> clip_geom;
};

/// What to do with a configured source that cannot be published (`on_invalid`).
enum class invalid_policy { abort, warn };

/// The longest a tile query may run unless the config says otherwise.
inline constexpr std::chrono::milliseconds default_statement_timeout{30000};

/// Publishing settings of one `postgres` entry.
struct publish_config {
    std::vector<table_config> tables;
    std::vector<function_config> functions;
    auto_publish_config auto_publish;
    std::optional<int> default_srid;
    bounds_mode auto_bounds = bounds_mode::quick;
    std::optional<std::uint64_t> max_feature_count;
    invalid_policy on_invalid = invalid_policy::abort;
    /// Longest a tile query may run (`statement_timeout`); sources may set their own.
    std::chrono::milliseconds statement_timeout = default_statement_timeout;
    /// `notify_changes`: every published table's triggers notify kachel of changes (a table may
    /// say otherwise).
    bool notify_changes = false;
};

/// `{schema}`-style placeholders replaced; unknown ones are kept.
[[nodiscard]] std::string
format_source_id(std::string_view format,
                 std::vector<std::pair<std::string_view, std::string_view>> const& values);

} // namespace kachel::postgis
