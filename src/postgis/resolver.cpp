#include "postgis/resolver.hpp"

#include "core/text.hpp"
#include "postgis/row_filter.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <tuple>

namespace kachel::postgis {

namespace {

/// The candidate equal to `wanted`, else the one equal ignoring case; an ambiguous
/// case-insensitive match is reported through `ambiguous`.
template <typename Range, typename Key>
std::optional<std::string> match_name(Range const& candidates, Key key, std::string_view wanted,
                                      bool& ambiguous) {
    ambiguous = false;
    std::optional<std::string> folded;
    std::size_t folded_count = 0;
    std::set<std::string> seen;
    for (auto const& c : candidates) {
        auto const& name = key(c);
        if (name == wanted) {
            return name;
        }
        if (iequals(name, wanted) && seen.insert(name).second) {
            folded = name;
            ++folded_count;
        }
    }
    ambiguous = folded_count > 1;
    return folded_count == 1 ? folded : std::nullopt;
}

/// The same over plain names.
std::optional<std::string> match_name(std::set<std::string> const& names, std::string_view wanted,
                                      bool& ambiguous) {
    return match_name(
        names, [](std::string const& n) -> std::string const& { return n; }, wanted, ambiguous);
}

/// Pointers to the items in `less` order (the inputs stay as given).
template <typename T, typename Less>
std::vector<T const*> sorted(std::vector<T> const& items, Less less) {
    std::vector<T const*> out;
    out.reserve(items.size());
    for (auto const& item : items) {
        out.push_back(&item);
    }
    std::sort(out.begin(), out.end(), [&](T const* a, T const* b) { return less(*a, *b); });
    return out;
}

std::set<std::string> schemas_of(auto const& items) {
    std::set<std::string> out;
    for (auto const& item : items) {
        out.insert(item.schema);
    }
    return out;
}

std::string list_or_none(std::set<std::string> const& names) {
    return names.empty() ? std::string{"(none)"} : fmt::format("{}", fmt::join(names, ", "));
}

/// Schema filter of auto-publishing: empty = all; else each listed name matched exactly, then
/// case-insensitively.
bool schema_selected(std::vector<std::string> const& listed, std::string const& schema,
                     std::set<std::string> const& present) {
    if (listed.empty()) {
        return true;
    }
    for (auto const& wanted : listed) {
        bool ambiguous = false;
        auto const m = match_name(present, wanted, ambiguous);
        if (m && *m == schema) {
            return true;
        }
    }
    return false;
}

class resolver {
  public:
    resolver(publish_config const& config, std::vector<table_info> const& tables,
             std::vector<function_info> const& functions, std::vector<std::string> const& all_schemas,
             std::string const& identity, tiles::id_resolver& ids)
        : m_config(config), m_tables(tables), m_functions(functions),
          m_all_schemas(all_schemas.begin(), all_schemas.end()), m_table_schemas(schemas_of(tables)),
          m_function_schemas(schemas_of(functions)), m_identity(identity), m_ids(ids) {}

    resolution run() {
        auto const by_id = [](auto const& a, auto const& b) { return a.id < b.id; };
        for (auto const* t : sorted(m_config.tables, by_id)) {
            configure_table(*t);
        }
        if (m_config.auto_publish.tables) {
            auto_tables();
        }
        for (auto const* f : sorted(m_config.functions, by_id)) {
            configure_function(*f);
        }
        if (m_config.auto_publish.functions) {
            auto_functions();
        }
        return std::move(m_out);
    }

  private:
    void problem(std::string text) { m_out.problems.push_back(std::move(text)); }

    [[nodiscard]] std::string table_signature(table_info const& t) const {
        return fmt::format("{}.{}.{}.{}", m_identity, t.schema, t.table, t.geometry_column);
    }

    /// The schema a configured source names, or nullopt after reporting why not.
    std::optional<std::string> find_schema(std::string const& id, std::string const& wanted,
                                           std::set<std::string> const& with_sources, char const* what) {
        bool ambiguous = false;
        auto m = match_name(with_sources, wanted, ambiguous);
        if (m) {
            return m;
        }
        if (ambiguous) {
            problem(
                fmt::format("Unable to configure source {} because schema '{}' matches several schemas that "
                            "differ only in case; write it exactly",
                            id, wanted));
            return std::nullopt;
        }
        bool exists_ambiguous = false;
        if (match_name(m_all_schemas, wanted, exists_ambiguous)) {
            problem(fmt::format("Unable to configure source {} because schema '{}' exists but has no {}. "
                                "Schemas with some: {}",
                                id, wanted, what, list_or_none(with_sources)));
        } else {
            problem(fmt::format("Unable to configure source {} because schema '{}' does not exist. Available "
                                "schemas: {}",
                                id, wanted, list_or_none(with_sources)));
        }
        return std::nullopt;
    }

    void configure_table(table_config const& cfg) {
        auto const schema = find_schema(cfg.id, cfg.schema, m_table_schemas, "tables with a geometry column");
        if (!schema) {
            return;
        }
        std::set<std::string> tables_in_schema;
        for (auto const& t : m_tables) {
            if (t.schema == *schema) {
                tables_in_schema.insert(t.table);
            }
        }
        bool ambiguous = false;
        auto const table_name = match_name(tables_in_schema, cfg.table, ambiguous);
        if (!table_name) {
            problem(fmt::format(
                "Unable to configure source {} because schema '{}' has no table or view '{}' with a "
                "geometry column the role can read{}. Available: {}",
                cfg.id, *schema, cfg.table, ambiguous ? " (several differ only in case)" : "",
                list_or_none(tables_in_schema)));
            return;
        }
        std::vector<table_info const*> columns;
        for (auto const& t : m_tables) {
            if (t.schema == *schema && t.table == *table_name) {
                columns.push_back(&t);
            }
        }
        table_info const* info = nullptr;
        if (cfg.geometry_column) {
            auto const m = match_name(
                columns, [](table_info const* t) { return t->geometry_column; }, *cfg.geometry_column,
                ambiguous);
            for (auto const* c : columns) {
                if (m && c->geometry_column == *m) {
                    info = c;
                }
            }
        } else if (columns.size() == 1) {
            info = columns.front();
        }
        if (info == nullptr) {
            std::set<std::string> names;
            for (auto const* c : columns) {
                names.insert(c->geometry_column);
            }
            problem(fmt::format("Unable to configure source {} because {}.{} {}. Geometry columns: {}",
                                cfg.id, *schema, *table_name,
                                cfg.geometry_column
                                    ? fmt::format("has no geometry column '{}'", *cfg.geometry_column)
                                    : std::string{"has several geometry columns: set geometry_column"},
                                list_or_none(names)));
            return;
        }

        auto srid = effective_srid(*info, cfg.srid, cfg.id);
        if (!srid) {
            return;
        }
        if (cfg.geometry_type && !iequals(*cfg.geometry_type, info->geometry_type)) {
            spdlog::warn("Source {}: geometry_type is {} in the config but {} in the database", cfg.id,
                         *cfg.geometry_type, info->geometry_type);
        }
        table_layout layout;
        layout.layer = cfg.layer_id.value_or(cfg.id);
        layout.srid = *srid;
        layout.budget.max_feature_count =
            cfg.max_feature_count.value_or(per_zoom<std::uint64_t>::everywhere(m_config.max_feature_count));
        layout.geometry.extent = cfg.extent.value_or(layout.geometry.extent);
        layout.geometry.buffer = cfg.buffer.value_or(layout.geometry.buffer);
        layout.geometry.clip_geom = cfg.clip_geom.value_or(layout.geometry.clip_geom);
        auto const column_for = [&](std::string const& name, char const* what) -> std::optional<std::string> {
            bool amb = false;
            auto m = match_name(
                info->properties, [](auto const& p) { return p.first; }, name, amb);
            if (!m) {
                std::set<std::string> available;
                for (auto const& [n, type] : info->properties) {
                    available.insert(n);
                }
                problem(
                    fmt::format("Unable to configure source {} because {} '{}' is not a column of {}.{}{}. "
                                "Columns: {}",
                                cfg.id, what, name, info->schema, info->table,
                                amb ? " (several differ only in case)" : "", list_or_none(available)));
            }
            return m;
        };
        if (cfg.id_column) {
            auto const column = column_for(*cfg.id_column, "id_column");
            if (!column) {
                return;
            }
            auto const& type = info->properties.at(*column);
            if (!is_integer_type(type)) {
                problem(fmt::format(
                    "Unable to configure source {} because id_column '{}' is of type {}; a feature "
                    "id must be int2, int4 or int8",
                    cfg.id, *cfg.id_column, type));
                return;
            }
            layout.id_column = published_column{*column, *cfg.id_column, type};
        }
        if (cfg.properties) {
            for (auto const& [name, type] : *cfg.properties) {
                auto const column = column_for(name, "property");
                if (!column) {
                    return;
                }
                layout.properties.push_back({*column, name, type});
            }
            std::sort(layout.properties.begin(), layout.properties.end(),
                      [](auto const& a, auto const& b) { return a.name < b.name; });
        }
        if (!budget_for(cfg, *info, layout.budget)) {
            return;
        }
        cql2::node_ptr filter;
        if (cfg.filter) {
            try {
                filter = cql2::parse(*cfg.filter);
                // Compiled here only to check it against the columns; the source compiles it again.
                (void)compile_filter(*filter, *info, layout.srid, 1);
            } catch (cql2::filter_error const& e) {
                m_out.fatal_problems.push_back(fmt::format(
                    "The filter of source {} is not valid for {}.{}: {}\n{}", cfg.id, info->schema,
                    info->table, e.what(), cql2::point_at(*cfg.filter, e.position())));
                return;
            }
        }
        add_table(cfg.id, *info, std::move(layout), tilejson_extras{cfg.bounds, cfg.minzoom, cfg.maxzoom},
                  cfg.statement_timeout.value_or(m_config.statement_timeout),
                  cfg.cache.value_or(tiles::cache_gate{}));
        if (filter) {
            m_out.tables.back().filter_text = *cfg.filter;
            m_out.tables.back().filter = std::move(filter);
        }
        m_out.tables.back().notify_changes = cfg.notify_changes.value_or(m_config.notify_changes);
    }

    /// The configured budget's ranking and thinning/simplification, checked against the table.
    /// A mistake stops startup whatever `on_invalid` says: the source would serve other tiles than
    /// configured. false when it does.
    bool budget_for(table_config const& cfg, table_info const& info, tile_budget& budget) {
        auto const fatal = [&](std::string text) {
            m_out.fatal_problems.push_back(fmt::format("Source {}: {}", cfg.id, text));
            return false;
        };
        for (auto const& term : cfg.order_by) {
            bool ambiguous = false;
            auto const column = match_name(
                info.properties, [](auto const& p) { return p.first; }, term.column, ambiguous);
            if (!column) {
                std::set<std::string> available;
                for (auto const& [n, type] : info.properties) {
                    available.insert(n);
                }
                return fatal(fmt::format(
                    "tables.{}.order_by names '{}', which is not a column of {}.{}{}. Columns: {}", cfg.id,
                    term.column, info.schema, info.table, ambiguous ? " (several differ only in case)" : "",
                    list_or_none(available)));
            }
            budget.order_by.push_back({*column, term.descending});
        }
        bool const points = is_point_type(info.geometry_type);
        bool const mixed = to_lower(info.geometry_type).starts_with("geometry");
        if (cfg.thin_points) {
            if (!points && !mixed) {
                return fatal(
                    fmt::format("tables.{}.thin_points thins points, but {}.{}.{} holds {}; remove it, "
                                "or use simplify for lines and polygons",
                                cfg.id, info.schema, info.table, info.geometry_column, info.geometry_type));
            }
            budget.thin_points = *cfg.thin_points;
        }
        if (cfg.simplify) {
            if (points) {
                return fatal(
                    fmt::format("tables.{}.simplify simplifies lines and polygons, but {}.{}.{} holds {}; "
                                "remove it, or use thin_points for points",
                                cfg.id, info.schema, info.table, info.geometry_column, info.geometry_type));
            }
            budget.simplify = *cfg.simplify;
        }
        return true;
    }

    /// Martin's SRID rule (martin-compat 2.2); nullopt (reported for configured sources) when the
    /// table cannot be published.
    std::optional<int> effective_srid(table_info const& t, std::optional<int> configured,
                                      std::string const& id) {
        int const wanted = configured.value_or(0);
        if (t.srid == 0) {
            if (wanted != 0) {
                return wanted;
            }
            if (m_config.default_srid) {
                spdlog::info("Table {}.{}.{} has SRID 0: using default_srid {}", t.schema, t.table,
                             t.geometry_column, *m_config.default_srid);
                return m_config.default_srid;
            }
            auto const text =
                fmt::format("Table {}.{}.{} has SRID 0: give the column an SRID, or set srid for "
                            "the source or default_srid",
                            t.schema, t.table, t.geometry_column);
            if (id.empty()) {
                spdlog::warn("{}; skipping it", text);
            } else {
                problem(fmt::format("Unable to configure source {}: {}", id, text));
            }
            return std::nullopt;
        }
        if (wanted != 0 && wanted != t.srid) {
            problem(fmt::format(
                "Unable to configure source {}: table {}.{}.{} has SRID {}, but the source sets srid "
                "{}",
                id, t.schema, t.table, t.geometry_column, t.srid, wanted));
            return std::nullopt;
        }
        return t.srid;
    }

    void add_table(std::string const& name, table_info const& info, table_layout layout,
                   tilejson_extras extras, std::chrono::milliseconds statement_timeout,
                   tiles::cache_gate cache = {}) {
        m_claimed.insert(table_signature(info));
        auto id = m_ids.resolve(name, table_signature(info));
        if (layout.layer == name) {
            layout.layer = id;
        }
        bool const needs_bounds = !extras.bounds;
        m_out.tables.push_back(table_spec{std::move(id),
                                          info,
                                          std::move(layout),
                                          extras,
                                          statement_timeout,
                                          cache,
                                          {},
                                          {},
                                          m_config.notify_changes});
        m_out.needs_bounds.push_back(needs_bounds);
    }

    void auto_tables() {
        auto const& ap = m_config.auto_publish;
        auto const by_name = [](table_info const& a, table_info const& b) {
            return std::tie(a.schema, a.table, a.geometry_column) <
                   std::tie(b.schema, b.table, b.geometry_column);
        };
        for (auto const* entry : sorted(m_tables, by_name)) {
            auto const& t = *entry;
            if (m_claimed.contains(table_signature(t)) ||
                !schema_selected(ap.table_schemas, t.schema, m_table_schemas)) {
                continue;
            }
            auto srid = effective_srid(t, std::nullopt, {});
            if (!srid) {
                continue;
            }
            table_layout layout;
            layout.srid = *srid;
            layout.budget.max_feature_count = per_zoom<std::uint64_t>::everywhere(m_config.max_feature_count);
            layout.geometry.extent = ap.extent.value_or(layout.geometry.extent);
            layout.geometry.buffer = ap.buffer.value_or(layout.geometry.buffer);
            layout.geometry.clip_geom = ap.clip_geom.value_or(layout.geometry.clip_geom);
            auto properties = t.properties;
            for (auto const& candidate : ap.id_columns) {
                bool ambiguous = false;
                auto const m = match_name(
                    properties, [](auto const& p) { return p.first; }, candidate, ambiguous);
                if (ambiguous) {
                    spdlog::error(
                        "Table {}.{}: id column candidate '{}' matches several columns that differ only in "
                        "case; skipped",
                        t.schema, t.table, candidate);
                    continue;
                }
                if (!m) {
                    continue;
                }
                if (!is_integer_type(properties.at(*m))) {
                    spdlog::warn(
                        "Table {}.{}: column {} is of type {}, not an integer: not used as feature id",
                        t.schema, t.table, *m, properties.at(*m));
                    continue;
                }
                layout.id_column = published_column{*m, *m, properties.at(*m)};
                properties.erase(*m);
                break;
            }
            for (auto const& [name, type] : properties) {
                layout.properties.push_back({name, name, type});
            }
            auto const name =
                format_source_id(ap.table_id_format,
                                 {{"schema", t.schema}, {"table", t.table}, {"column", t.geometry_column}});
            layout.layer = name;
            add_table(name, t, std::move(layout), {}, m_config.statement_timeout);
        }
    }

    [[nodiscard]] std::string function_signature(function_info const& f) const {
        return fmt::format("{}.{}.{}", m_identity, f.schema, f.function);
    }

    void configure_function(function_config const& cfg) {
        auto const schema =
            find_schema(cfg.id, cfg.schema, m_function_schemas, "tile-serving functions (z, x, y) -> bytea");
        if (!schema) {
            return;
        }
        std::set<std::string> names;
        for (auto const& f : m_functions) {
            if (f.schema == *schema) {
                names.insert(f.function);
            }
        }
        bool ambiguous = false;
        auto const name = match_name(names, cfg.function, ambiguous);
        if (!name) {
            problem(
                fmt::format("Unable to configure source {} because schema '{}' has no tile-serving function "
                            "'{}' (z, x, y [, query json]) -> bytea{}. Available: {}",
                            cfg.id, *schema, cfg.function, ambiguous ? " (several differ only in case)" : "",
                            list_or_none(names)));
            return;
        }
        for (auto const& f : m_functions) {
            if (f.schema == *schema && f.function == *name) {
                m_claimed.insert(function_signature(f));
                auto id = m_ids.resolve(cfg.id, function_signature(f) + "#" + cfg.id);
                m_out.functions.push_back(
                    function_spec{std::move(id),
                                  f,
                                  {cfg.bounds, cfg.minzoom, cfg.maxzoom},
                                  cfg.statement_timeout.value_or(m_config.statement_timeout),
                                  cfg.cache.value_or(tiles::cache_gate{})});
            }
        }
    }

    void auto_functions() {
        auto const by_name = [](function_info const& a, function_info const& b) {
            return std::tie(a.schema, a.function) < std::tie(b.schema, b.function);
        };
        for (auto const* entry : sorted(m_functions, by_name)) {
            auto const& f = *entry;
            if (m_claimed.contains(function_signature(f)) ||
                !schema_selected(m_config.auto_publish.function_schemas, f.schema, m_function_schemas)) {
                continue;
            }
            auto const name = format_source_id(m_config.auto_publish.function_id_format,
                                               {{"schema", f.schema}, {"function", f.function}});
            auto id = m_ids.resolve(name, function_signature(f));
            m_out.functions.push_back(function_spec{std::move(id), f, {}, m_config.statement_timeout, {}});
        }
    }

    publish_config const& m_config;
    std::vector<table_info> const& m_tables;
    std::vector<function_info> const& m_functions;
    std::set<std::string> m_all_schemas;
    std::set<std::string> m_table_schemas;    ///< schemas with a publishable table
    std::set<std::string> m_function_schemas; ///< schemas with a tile function
    std::string const& m_identity;
    tiles::id_resolver& m_ids;
    std::set<std::string> m_claimed;
    resolution m_out;
};

} // namespace

std::string format_source_id(std::string_view format,
                             std::vector<std::pair<std::string_view, std::string_view>> const& values) {
    std::string out;
    out.reserve(format.size() + 16);
    for (std::size_t i = 0; i < format.size(); ++i) {
        if (format[i] == '{') {
            auto const close = format.find('}', i);
            if (close != std::string_view::npos) {
                auto const key = format.substr(i + 1, close - i - 1);
                auto const it =
                    std::find_if(values.begin(), values.end(), [&](auto const& v) { return v.first == key; });
                if (it != values.end()) {
                    out += it->second;
                    i = close;
                    continue;
                }
            }
        }
        out += format[i];
    }
    return out;
}

resolution resolve_sources(publish_config const& config, std::vector<table_info> const& tables,
                           std::vector<function_info> const& functions,
                           std::vector<std::string> const& all_schemas, std::string const& identity,
                           tiles::id_resolver& ids) {
    return resolver{config, tables, functions, all_schemas, identity, ids}.run();
}

} // namespace kachel::postgis
