#include "postgis/change_notify.hpp"

#include "postgis/sql.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

namespace kachel::postgis {

namespace {

/// The trigger function, the same for every table: its arguments name the geometry columns.
/// One notification per statement, whatever the number of rows: the boxes of the old and new
/// geometries, gathered into at most 8 × 8 cells of the area that changed, rounded outwards to
/// 1e-6 degrees (about 0.1 m) and sent in EPSG:4326. A box that cannot be computed, or a payload
/// over NOTIFY's limit, becomes a change anywhere in the table; nothing makes the writer's
/// statement fail.
constexpr std::string_view trigger_function = R"sql(CREATE SCHEMA IF NOT EXISTS kachel_notify;
GRANT USAGE ON SCHEMA kachel_notify TO PUBLIC;

CREATE OR REPLACE FUNCTION kachel_notify.notify_change() RETURNS trigger
LANGUAGE plpgsql AS $kachel$
DECLARE
    boxes jsonb := '[]';
    part jsonb;
    envelope text;
    to_wgs84 text;
    payload text;
    i int := 0;
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        boxes := NULL;
    ELSE
        BEGIN
            -- TG_ARGV: for each geometry column, its name, its SRID, and 'fixed' or 'per_value'
            WHILE i + 2 < TG_NARGS LOOP
                IF TG_ARGV[i + 2] = 'per_value' THEN
                    envelope := format('ST_Transform(ST_SetSRID(ST_Envelope(%1$I::geometry), '
                                       'CASE ST_SRID(%1$I::geometry) WHEN 0 THEN %2$s ELSE ST_SRID(%1$I::geometry) END), 4326)',
                                       TG_ARGV[i], TG_ARGV[i + 1]::int);
                    to_wgs84 := 'b';
                ELSE
                    envelope := format('ST_Envelope(%I::geometry)', TG_ARGV[i]);
                    to_wgs84 := CASE WHEN TG_ARGV[i + 1]::int = 4326 THEN 'b' ELSE format(
                        'Box2D(ST_Transform(ST_Segmentize(ST_SetSRID(b::geometry, %s), '
                        'greatest(ST_XMax(b) - ST_XMin(b), ST_YMax(b) - ST_YMin(b), 1e-9) / 8), 4326))',
                        TG_ARGV[i + 1]::int) END;
                END IF;
                EXECUTE format($q$
                    WITH changed AS (%s),
                    whole AS (SELECT ST_Extent(g) AS e FROM changed),
                    cells AS (
                        SELECT ST_Extent(g) AS b FROM changed, whole
                        WHERE g IS NOT NULL
                        GROUP BY least(7, floor(8 * (ST_XMin(g) - ST_XMin(e)) / greatest(ST_XMax(e) - ST_XMin(e), 1e-9))),
                                 least(7, floor(8 * (ST_YMin(g) - ST_YMin(e)) / greatest(ST_YMax(e) - ST_YMin(e), 1e-9)))),
                    wgs84 AS (SELECT %s AS b FROM cells)
                    SELECT coalesce(jsonb_agg(jsonb_build_array(
                        floor(ST_XMin(b) * 1e6) / 1e6, floor(ST_YMin(b) * 1e6) / 1e6,
                        ceil(ST_XMax(b) * 1e6) / 1e6, ceil(ST_YMax(b) * 1e6) / 1e6)), '[]')
                    FROM wgs84$q$,
                    concat_ws(' UNION ALL ',
                        CASE WHEN TG_OP <> 'INSERT' THEN format('SELECT %s AS g FROM kachel_old', envelope) END,
                        CASE WHEN TG_OP <> 'DELETE' THEN format('SELECT %s AS g FROM kachel_new', envelope) END),
                    to_wgs84) INTO part;
                boxes := boxes || part;
                i := i + 3;
            END LOOP;
        EXCEPTION WHEN OTHERS THEN
            boxes := NULL;
        END;
        IF boxes = '[]' THEN
            RETURN NULL; -- no row with a geometry changed
        END IF;
    END IF;
    payload := json_build_object('schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME, 'boxes', boxes)::text;
    IF boxes IS NULL OR octet_length(payload) > 7900 THEN
        payload := json_build_object('schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME)::text;
    END IF;
    PERFORM pg_notify('kachel_changes', payload);
    RETURN NULL;
END
$kachel$;
)sql";

/// The event triggers that tell kachel of schema changes at once (catalog_payload). Only a
/// superuser may create event triggers: for others the DO block says so and does nothing.
constexpr std::string_view catalog_triggers =
    R"sql(-- Schema changes (tables and functions created, altered or dropped; grants; comments)
-- notify kachel at once, so that it reloads its catalog. Temporary objects do not.
CREATE OR REPLACE FUNCTION kachel_notify.notify_catalog() RETURNS event_trigger
LANGUAGE plpgsql AS $kachel$
BEGIN
    IF TG_EVENT = 'sql_drop' THEN
        IF NOT EXISTS (SELECT 1 FROM pg_event_trigger_dropped_objects() WHERE NOT is_temporary) THEN
            RETURN;
        END IF;
    ELSIF NOT EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands()
                      WHERE schema_name IS NULL OR schema_name NOT LIKE 'pg\_temp%') THEN
        RETURN;
    END IF;
    PERFORM pg_notify('kachel_changes', '{"catalog":true}');
END
$kachel$;
DO $kachel$
BEGIN
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RAISE NOTICE 'kachel: only a superuser can create event triggers; without them kachel sees '
            'schema changes every reload_interval. Run this file as a superuser to have them seen at once.';
        RETURN;
    END IF;
    DROP EVENT TRIGGER IF EXISTS kachel_notify_ddl;
    DROP EVENT TRIGGER IF EXISTS kachel_notify_drop;
    CREATE EVENT TRIGGER kachel_notify_ddl ON ddl_command_end EXECUTE FUNCTION kachel_notify.notify_catalog();
    CREATE EVENT TRIGGER kachel_notify_drop ON sql_drop EXECUTE FUNCTION kachel_notify.notify_catalog();
END
$kachel$;
)sql";

std::string relation_name(notified_table const& t) {
    return quote_ident(t.schema) + "." + quote_ident(t.table);
}

/// The statement that notifies a change anywhere in `t`, for relations without triggers.
std::string manual_notify(notified_table const& t) {
    nlohmann::json const payload{{"schema", t.schema}, {"table", t.table}};
    return fmt::format("SELECT pg_notify('{}', {});", change_channel, quote_literal(payload.dump()));
}

std::string triggers_of(notified_table const& t) {
    auto const name = relation_name(t);
    switch (t.relkind) {
    case 'v':
        return fmt::format(
            "-- {} is a view, which cannot have these triggers. Give them to the tables it reads\n"
            "-- (publish those with notify_changes), or after changing them run:\n--   {}\n",
            name, manual_notify(t));
    case 'm':
        return fmt::format("-- {} is a materialized view: REFRESH fires no trigger. After each refresh run:\n"
                           "--   {}\n",
                           name, manual_notify(t));
    case 'f':
        return fmt::format("-- {} is a foreign table, which cannot have these triggers. After a change run:\n"
                           "--   {}\n",
                           name, manual_notify(t));
    default:
        break;
    }
    std::string args;
    for (auto const& c : t.columns) {
        args += fmt::format("{}{}, '{}', '{}'", args.empty() ? "" : ", ", quote_literal(c.name), c.srid,
                            c.per_value ? "per_value" : "fixed");
    }
    std::string out;
    if (t.relkind == 'p') {
        out += fmt::format("-- {} is partitioned: changes made through it notify; a statement that names a "
                           "partition directly does not.\n",
                           name);
    }
    struct event {
        std::string_view name;
        std::string_view keyword;
        std::string_view referencing;
    };
    for (auto const& e :
         {event{"insert", "INSERT", " REFERENCING NEW TABLE AS kachel_new"},
          event{"update", "UPDATE", " REFERENCING OLD TABLE AS kachel_old NEW TABLE AS kachel_new"},
          event{"delete", "DELETE", " REFERENCING OLD TABLE AS kachel_old"}}) {
        out += fmt::format("DROP TRIGGER IF EXISTS kachel_notify_{0} ON {1};\n"
                           "CREATE TRIGGER kachel_notify_{0} AFTER {2} ON {1}{3}\n"
                           "    FOR EACH STATEMENT EXECUTE FUNCTION kachel_notify.notify_change({4});\n",
                           e.name, name, e.keyword, e.referencing, args);
    }
    out += fmt::format("DROP TRIGGER IF EXISTS kachel_notify_truncate ON {0};\n"
                       "CREATE TRIGGER kachel_notify_truncate AFTER TRUNCATE ON {0}\n"
                       "    FOR EACH STATEMENT EXECUTE FUNCTION kachel_notify.notify_change();\n",
                       name);
    return out;
}

/// A number of a box, or nullopt.
std::optional<double> coordinate(nlohmann::json const& v) {
    if (!v.is_number()) {
        return std::nullopt;
    }
    auto const d = v.get<double>();
    return std::isfinite(d) ? std::optional<double>{d} : std::nullopt;
}

} // namespace

std::vector<notified_table> notified_tables(std::span<table_info const> tables, std::span<int const> srids) {
    std::vector<notified_table> out;
    for (std::size_t i = 0; i < tables.size(); ++i) {
        auto const& t = tables[i];
        auto const srid = i < srids.size() ? srids[i] : t.srid;
        auto it = std::find_if(out.begin(), out.end(), [&](notified_table const& n) {
            return n.schema == t.schema && n.table == t.table;
        });
        if (it == out.end()) {
            out.push_back(notified_table{t.schema, t.table, t.relkind, {}});
            it = std::prev(out.end());
        }
        auto const same = [&](notified_table::column const& c) { return c.name == t.geometry_column; };
        if (std::none_of(it->columns.begin(), it->columns.end(), same)) {
            it->columns.push_back({t.geometry_column, t.is_geography ? 4326 : srid, srid_per_value(t, srid)});
        }
    }
    return out;
}

std::string change_triggers_sql(std::span<notified_table const> tables) {
    std::string out = fmt::format(
        "-- Made by kachel --print-change-triggers. Makes the tables below notify kachel (channel {})\n"
        "-- of every change: one notification per statement with the area its rows changed in.\n"
        "-- Run it as the tables' owner; run it again after adding a geometry column. To remove it all:\n"
        "--   DROP SCHEMA kachel_notify CASCADE;\n"
        "BEGIN;\n\n{}\n",
        change_channel, trigger_function);
    for (auto const& t : tables) {
        out += triggers_of(t);
        out += '\n';
    }
    out += catalog_triggers;
    out += "\nCOMMIT;\n";
    return out;
}

bool is_catalog_change(std::string_view payload) {
    auto const doc = nlohmann::json::parse(payload, nullptr, false);
    if (!doc.is_object()) {
        return false;
    }
    auto const it = doc.find("catalog");
    return it != doc.end() && it->is_boolean() && it->get<bool>();
}

std::optional<table_change> parse_change(std::string_view payload, std::string& why) {
    auto const doc = nlohmann::json::parse(payload, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
        why = "not a JSON object";
        return std::nullopt;
    }
    auto const schema = doc.find("schema");
    auto const table = doc.find("table");
    if (schema == doc.end() || !schema->is_string() || table == doc.end() || !table->is_string()) {
        why = "no schema and table strings";
        return std::nullopt;
    }
    table_change out{schema->get<std::string>(), table->get<std::string>(), {}};
    auto const boxes = doc.find("boxes");
    if (boxes == doc.end() || boxes->is_null()) {
        return out;
    }
    if (!boxes->is_array() || boxes->empty()) {
        why = "boxes is not a list of boxes";
        return std::nullopt;
    }
    for (auto const& box : *boxes) {
        if (!box.is_array() || box.size() != 4) {
            why = "a box is not [west, south, east, north]";
            return std::nullopt;
        }
        auto const w = coordinate(box[0]);
        auto const s = coordinate(box[1]);
        auto const e = coordinate(box[2]);
        auto const n = coordinate(box[3]);
        if (!w || !s || !e || !n || *w > *e || *s > *n) {
            why = "a box is not [west, south, east, north] in degrees";
            return std::nullopt;
        }
        out.boxes.push_back(tiles::lonlat_box{std::clamp(*w, -180.0, 180.0), std::clamp(*s, -90.0, 90.0),
                                              std::clamp(*e, -180.0, 180.0), std::clamp(*n, -90.0, 90.0)});
    }
    return out;
}

} // namespace kachel::postgis
