#pragma once

#include "postgis/table_info.hpp"
#include "tiles/tile_ranges.hpp"

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kachel::postgis {

/// The channel kachel's change triggers notify on, and kachel listens to.
inline constexpr std::string_view change_channel = "kachel_changes";

/// A relation whose changes are to be notified, with the geometry columns kachel publishes.
struct notified_table {
    std::string schema;
    std::string table;
    char relkind = 'r';
    struct column {
        std::string name;
        int srid = 0;           ///< the SRID values are taken in (the source's effective SRID)
        bool per_value = false; ///< declared without an SRID: each value may carry its own
    };
    std::vector<column> columns;
};

/// Every notified relation of `tables` (one per relation, its geometry columns gathered), in
/// the order first seen.
[[nodiscard]] std::vector<notified_table> notified_tables(std::span<table_info const> tables,
                                                          std::span<int const> srids);

/// The SQL that makes `tables` notify kachel of their changes, for a DBA to read and run: the
/// trigger function (schema `kachel_notify`) and, per table, statement-level triggers after INSERT,
/// UPDATE, DELETE (with transition tables) and TRUNCATE. Idempotent. Relations that cannot have
/// such triggers (views, materialized views, foreign tables) get a comment saying what to do.
/// Then event triggers that notify schema changes (catalog_payload), made when a superuser runs
/// it; for others a NOTICE says they were left out.
[[nodiscard]] std::string change_triggers_sql(std::span<notified_table const> tables);

/// The payload of a schema change (the event triggers of change_triggers_sql): reload the catalog.
inline constexpr std::string_view catalog_payload = R"({"catalog":true})";

/// True for a payload `{"catalog": true}` (catalog_payload, or the same JSON written otherwise).
[[nodiscard]] bool is_catalog_change(std::string_view payload);

/// What one notification says changed.
struct table_change {
    std::string schema;
    std::string table;
    /// Where rows changed (old and new geometries, in EPSG:4326); empty = anywhere in the table.
    std::vector<tiles::lonlat_box> boxes;
};

/// Reads a notification's payload: `{"schema": s, "table": t, "boxes": [[w, s, e, n], ...]}`,
/// without `boxes` for a change anywhere. \returns nullopt and `why` for anything else.
[[nodiscard]] std::optional<table_change> parse_change(std::string_view payload, std::string& why);

} // namespace kachel::postgis
