#include "config/postgres_section.hpp"

#include "config/martin_keys.hpp"
#include "config/setting.hpp"
#include "config/value_text.hpp"
#include "core/error.hpp"
#include "core/text.hpp"
#include "postgis/cql2.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace kachel::config {

namespace {

using postgis::function_config;
using postgis::table_config;

std::optional<int> int_in(YAML::Node const& node, std::string const& key, yaml_context const& ctx,
                          std::int64_t min, std::int64_t max) {
    auto v = integer_in(node, key, ctx, min, max);
    return v ? std::optional<int>{static_cast<int>(*v)} : std::nullopt;
}

void check_zooms(std::optional<int> minzoom, std::optional<int> maxzoom, std::string const& path,
                 yaml_context const& ctx) {
    if (minzoom && maxzoom && *minzoom > *maxzoom) {
        throw config_error{
            fmt_error("{}: '{}' has minzoom {} above maxzoom {}", ctx.file, path, *minzoom, *maxzoom)};
    }
}

/// A table's or function's `cache`: `disable`, or `{minzoom, maxzoom}` (tiles outside bypass it).
tiles::cache_gate cache_gate(YAML::Node const& node, std::string const& dotted, yaml_context const& ctx) {
    tiles::cache_gate gate;
    gate.disabled = cache_disabled(node, dotted, ctx, "minzoom, maxzoom, idle_timeout");
    if (gate.disabled) {
        return gate;
    }
    for (auto const& entry : node) {
        auto const key = entry.first.as<std::string>();
        if (key == "minzoom") {
            gate.minzoom = zoom(entry.second, child_key(dotted, key), ctx);
        } else if (key == "maxzoom") {
            gate.maxzoom = zoom(entry.second, child_key(dotted, key), ctx);
        } else if (key == "idle_timeout") {
            gate.idle_timeout = duration(entry.second, child_key(dotted, key), ctx);
        } else {
            warn_unknown_key(child_key(dotted, key), ctx);
        }
    }
    return gate;
}

/// `filter`: CQL2 Text, checked for syntax here (against the columns once the table is found).
std::string row_filter_text(YAML::Node const& node, std::string const& dotted, yaml_context const& ctx) {
    auto text = scalar(node, dotted, ctx);
    if (!text) {
        throw config_error{fmt_error("{}: '{}' is empty: remove it to serve every row, or write a CQL2 "
                                     "condition such as population > 1000",
                                     ctx.file, dotted)};
    }
    try {
        (void)postgis::cql2::parse(*text);
    } catch (postgis::cql2::filter_error const& e) {
        throw config_error{fmt_error("{}: '{}' is not a valid CQL2 filter: {} (at character {})\n{}",
                                     ctx.file, dotted, e.what(), e.position() + 1,
                                     postgis::cql2::point_at(*text, e.position()))};
    }
    return std::move(*text);
}

/// `a-b`, `a` or `a-` (up to the highest zoom): the zooms a per-zoom value covers.
std::pair<int, int> zoom_range(std::string const& text, std::string const& key, yaml_context const& ctx) {
    auto const bad = [&] {
        return config_error{fmt_error("{}: '{}': '{}' is not a zoom range; write one zoom (7), a range (0-4) "
                                      "or an open range (10-), with zooms 0 to {}",
                                      ctx.file, key, text, postgis::max_zoom_level)};
    };
    auto const number = [&](std::string_view part) {
        int value = -1;
        auto const [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), value);
        if (part.empty() || ec != std::errc{} || ptr != part.data() + part.size() || value < 0 ||
            value > postgis::max_zoom_level) {
            throw bad();
        }
        return value;
    };
    auto const dash = text.find('-');
    if (dash == std::string::npos) {
        int const z = number(text);
        return {z, z};
    }
    std::string_view const rest = std::string_view{text}.substr(dash + 1);
    int const low = number(std::string_view{text}.substr(0, dash));
    int const high = rest.empty() ? postgis::max_zoom_level : number(rest);
    if (low > high) {
        throw bad();
    }
    return {low, high};
}

/// One value for every zoom, or a map from zoom ranges to values (`{0-4: 16, 5-8: 4}`); zooms
/// the map leaves out have none. `parse` reads one value.
template <class T, class Parse>
postgis::per_zoom<T> per_zoom_value(YAML::Node const& node, std::string const& dotted,
                                    yaml_context const& ctx, Parse const& parse) {
    if (node && node.IsMap()) {
        postgis::per_zoom<T> out;
        for (auto const& entry : node) {
            auto const range = entry.first.as<std::string>();
            auto const key = child_key(dotted, range);
            auto const [low, high] = zoom_range(range, key, ctx);
            auto const text = scalar(entry.second, key, ctx);
            if (!text) {
                throw config_error{fmt_error("{}: '{}' has no value", ctx.file, key)};
            }
            T const value = parse(*text, value_origin{ctx.file, key});
            for (int z = low; z <= high; ++z) {
                auto& slot = out.values[static_cast<std::size_t>(z)];
                if (slot) {
                    throw config_error{fmt_error(
                        "{}: '{}': zoom {} is in two ranges; give each zoom one value", ctx.file, dotted, z)};
                }
                slot = value;
            }
        }
        return out;
    }
    auto const text = scalar(node, dotted, ctx);
    if (!text) {
        throw config_error{
            fmt_error("{}: '{}' is empty: remove it, or give one value or a map of zoom ranges "
                      "to values such as {{0-4: 16, 5-8: 4}}",
                      ctx.file, dotted)};
    }
    return postgis::per_zoom<T>::everywhere(parse(*text, value_origin{ctx.file, dotted}));
}

/// `order_by`: `population desc, name`, or a list of such terms; each a column, then optionally
/// `asc` or `desc`.
std::vector<postgis::order_term> order_by(YAML::Node const& node, std::string const& dotted,
                                          yaml_context const& ctx) {
    std::vector<std::string> pieces;
    for (auto const& item : string_list(node, dotted, ctx)) {
        std::size_t start = 0;
        while (start <= item.size()) {
            auto const comma = std::min(item.find(',', start), item.size());
            pieces.push_back(item.substr(start, comma - start));
            start = comma + 1;
        }
    }
    std::vector<postgis::order_term> out;
    for (auto const& piece : pieces) {
        auto term = trim(piece);
        postgis::order_term t;
        auto const space = term.find_last_of(" \t");
        if (space != std::string_view::npos) {
            auto const word = to_lower(term.substr(space + 1));
            if (word == "asc" || word == "desc") {
                t.descending = word == "desc";
                term = trim(term.substr(0, space));
            }
        }
        if (term.empty()) {
            throw config_error{
                fmt_error("{}: '{}' has an empty term; write columns, each optionally followed by "
                          "asc or desc, such as: population desc, name",
                          ctx.file, dotted)};
        }
        t.column = std::string{term};
        out.push_back(std::move(t));
    }
    if (out.empty()) {
        throw config_error{fmt_error("{}: '{}' is empty: remove it, or name columns such as: population desc",
                                     ctx.file, dotted)};
    }
    return out;
}

table_config parse_table(std::string id, YAML::Node const& node, std::string const& path,
                         yaml_context const& ctx) {
    require_map(node, path, ctx);
    table_config t;
    t.id = std::move(id);
    for (auto const& entry : node) {
        auto const key = entry.first.as<std::string>();
        auto const dotted = child_key(path, key);
        auto const& value = entry.second;
        if (key == "schema") {
            t.schema = scalar(value, dotted, ctx).value_or("");
        } else if (key == "table") {
            t.table = scalar(value, dotted, ctx).value_or("");
        } else if (key == "geometry_column") {
            t.geometry_column = scalar(value, dotted, ctx);
        } else if (key == "srid") {
            t.srid = int_in(value, dotted, ctx, 0, 999999);
        } else if (key == "geometry_type") {
            t.geometry_type = scalar(value, dotted, ctx);
        } else if (key == "layer_id") {
            t.layer_id = scalar(value, dotted, ctx);
        } else if (key == "id_column") {
            t.id_column = scalar(value, dotted, ctx);
        } else if (key == "minzoom") {
            t.minzoom = zoom(value, dotted, ctx);
        } else if (key == "maxzoom") {
            t.maxzoom = zoom(value, dotted, ctx);
        } else if (key == "bounds") {
            t.bounds = bounds(value, dotted, ctx);
        } else if (key == "extent") {
            t.extent = int_in(value, dotted, ctx, 1, 1 << 20);
        } else if (key == "buffer") {
            t.buffer = int_in(value, dotted, ctx, 0, 1 << 20);
        } else if (key == "clip_geom") {
            t.clip_geom = boolean(value, dotted, ctx);
        } else if (key == "statement_timeout") {
            t.statement_timeout = duration(value, dotted, ctx);
        } else if (key == "cache") {
            t.cache = cache_gate(value, dotted, ctx);
        } else if (key == "filter") {
            t.filter = row_filter_text(value, dotted, ctx);
        } else if (key == "notify_changes") {
            t.notify_changes = boolean(value, dotted, ctx);
        } else if (key == "order_by") {
            t.order_by = order_by(value, dotted, ctx);
        } else if (key == "max_feature_count") {
            t.max_feature_count = per_zoom_value<std::uint64_t>(value, dotted, ctx, parse_positive);
        } else if (key == "thin_points") {
            t.thin_points =
                per_zoom_value<double>(value, dotted, ctx, [](std::string_view text, value_origin const& o) {
                    return parse_positive_number(text, o, "16 (pixels)");
                });
        } else if (key == "simplify") {
            t.simplify =
                per_zoom_value<double>(value, dotted, ctx, [](std::string_view text, value_origin const& o) {
                    return parse_positive_number(text, o, "1 or 0.5 (pixels)");
                });
        } else if (key == "properties") {
            std::vector<std::pair<std::string, std::string>> props;
            if (value && !value.IsNull()) {
                require_map(value, dotted, ctx);
                for (auto const& p : value) {
                    auto const name = p.first.as<std::string>();
                    props.emplace_back(name, scalar(p.second, child_key(dotted, name), ctx).value_or(""));
                }
            }
            t.properties = std::move(props);
        } else {
            unhandled_key(dotted, value, ctx);
        }
    }
    if (t.schema.empty() || t.table.empty()) {
        throw config_error{fmt_error("{}: '{}' needs 'schema' and 'table'", ctx.file, path)};
    }
    check_zooms(t.minzoom, t.maxzoom, path, ctx);
    return t;
}

function_config parse_function(std::string id, YAML::Node const& node, std::string const& path,
                               yaml_context const& ctx) {
    require_map(node, path, ctx);
    function_config f;
    f.id = std::move(id);
    for (auto const& entry : node) {
        auto const key = entry.first.as<std::string>();
        auto const dotted = child_key(path, key);
        auto const& value = entry.second;
        if (key == "schema") {
            f.schema = scalar(value, dotted, ctx).value_or("");
        } else if (key == "function") {
            f.function = scalar(value, dotted, ctx).value_or("");
        } else if (key == "minzoom") {
            f.minzoom = zoom(value, dotted, ctx);
        } else if (key == "maxzoom") {
            f.maxzoom = zoom(value, dotted, ctx);
        } else if (key == "bounds") {
            f.bounds = bounds(value, dotted, ctx);
        } else if (key == "statement_timeout") {
            f.statement_timeout = duration(value, dotted, ctx);
        } else if (key == "cache") {
            f.cache = cache_gate(value, dotted, ctx);
        } else {
            unhandled_key(dotted, value, ctx);
        }
    }
    if (f.schema.empty() || f.function.empty()) {
        throw config_error{fmt_error("{}: '{}' needs 'schema' and 'function'", ctx.file, path)};
    }
    check_zooms(f.minzoom, f.maxzoom, path, ctx);
    return f;
}

/// `auto_publish.tables` or `.functions`: true/false or an object. Returns whether it is on.
bool parse_auto_part(YAML::Node const& node, std::string const& path, yaml_context const& ctx, bool is_tables,
                     postgis::auto_publish_config& out) {
    if (!node || node.IsNull()) {
        return true;
    }
    if (node.IsScalar()) {
        return boolean(node, path, ctx).value_or(true);
    }
    require_map(node, path, ctx);
    for (auto const& entry : node) {
        auto const key = entry.first.as<std::string>();
        auto const dotted = child_key(path, key);
        auto const& value = entry.second;
        if (key == "from_schemas" || key == "from_schema") {
            auto list = string_list(value, dotted, ctx);
            auto& target = is_tables ? out.table_schemas : out.function_schemas;
            target.insert(target.end(), list.begin(), list.end());
        } else if (key == "source_id_format" || key == "id_format") {
            if (auto v = scalar(value, dotted, ctx)) {
                (is_tables ? out.table_id_format : out.function_id_format) = *v;
            }
        } else if (is_tables && (key == "id_columns" || key == "id_column")) {
            out.id_columns = string_list(value, dotted, ctx);
        } else if (is_tables && key == "extent") {
            out.extent = int_in(value, dotted, ctx, 1, 1 << 20);
        } else if (is_tables && key == "buffer") {
            out.buffer = int_in(value, dotted, ctx, 0, 1 << 20);
        } else if (is_tables && key == "clip_geom") {
            out.clip_geom = boolean(value, dotted, ctx);
        } else {
            warn_unknown_key(dotted, ctx);
        }
    }
    return true;
}

/// `auto_publish` in all its forms (martin-compat 6.2).
postgis::auto_publish_config parse_auto_publish(YAML::Node const& node, std::string const& path,
                                                yaml_context const& ctx) {
    postgis::auto_publish_config out;
    if (node.IsScalar()) {
        bool const on = boolean(node, path, ctx).value_or(true);
        out.tables = on;
        out.functions = on;
        return out;
    }
    require_map(node, path, ctx);
    std::vector<std::string> common;
    std::optional<YAML::Node> tables;
    std::optional<YAML::Node> functions;
    for (auto const& entry : node) {
        auto const key = entry.first.as<std::string>();
        auto const dotted = child_key(path, key);
        if (key == "from_schemas" || key == "from_schema") {
            common = string_list(entry.second, dotted, ctx);
        } else if (key == "tables") {
            tables = entry.second;
        } else if (key == "functions") {
            functions = entry.second;
        } else {
            warn_unknown_key(dotted, ctx);
        }
    }
    bool const tables_given = tables.has_value();
    bool const functions_given = functions.has_value();
    bool const tables_on = tables_given && parse_auto_part(*tables, path + ".tables", ctx, true, out);
    bool const functions_on =
        functions_given && parse_auto_part(*functions, path + ".functions", ctx, false, out);
    // A half that is not mentioned is on unless the other half is (martin-compat 6.2).
    out.tables = tables_given ? tables_on : !functions_on;
    out.functions = functions_given ? functions_on : !tables_on;
    if (!common.empty()) {
        out.table_schemas.insert(out.table_schemas.begin(), common.begin(), common.end());
        out.function_schemas.insert(out.function_schemas.begin(), common.begin(), common.end());
    }
    return out;
}

/// `session_settings: {name: value, ...}`: server settings the user wants on every tile
/// connection; names as PostgreSQL spells them (letters, digits, `_`, `.` for extensions').
std::vector<pg::session_setting> parse_session_settings(YAML::Node const& node, std::string const& path,
                                                        yaml_context const& ctx) {
    std::vector<pg::session_setting> out;
    if (!node || node.IsNull()) {
        return out;
    }
    require_map(node, path, ctx);
    for (auto const& entry : node) {
        auto const name = entry.first.as<std::string>();
        auto const dotted = child_key(path, name);
        bool const valid_name =
            !name.empty() && std::isdigit(static_cast<unsigned char>(name.front())) == 0 &&
            std::all_of(name.begin(), name.end(), [](char c) {
                return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '.';
            });
        if (!valid_name) {
            throw config_error{
                fmt_error("{}: '{}' is not a PostgreSQL setting name (letters, digits, '_' and '.', "
                          "as in max_parallel_workers_per_gather)",
                          ctx.file, dotted)};
        }
        auto value = scalar(entry.second, dotted, ctx);
        if (!value) {
            throw config_error{fmt_error("{}: '{}' needs a value (remove the line to keep kachel's default)",
                                         ctx.file, dotted)};
        }
        out.push_back(
            pg::session_setting{name, std::move(*value), fmt::format("{} in {}", dotted, ctx.file), true});
    }
    return out;
}

/// The host and port of a `hosts` item written as text: `db2.example`, `db2.example:5433`, or an
/// IPv6 address, which takes no port in this form.
std::pair<std::string, std::string> host_and_port(std::string const& text) {
    auto const colon = text.find(':');
    if (colon == std::string::npos || text.find(':', colon + 1) != std::string::npos) {
        return {text, {}};
    }
    return {text.substr(0, colon), text.substr(colon + 1)};
}

/// `hosts`: a list of `{host, port, role}` maps, or of `host[:port]` texts.
std::vector<postgres_host> parse_hosts(YAML::Node const& node, std::string const& path,
                                       yaml_context const& ctx) {
    if (!node.IsSequence() || node.size() == 0) {
        throw config_error{fmt_error("{}: '{}' must be a list of the primary and its standbys, each "
                                     "{{host: db1.example, port: 5432, role: primary}} (port and role "
                                     "optional) or \"db2.example:5432\"",
                                     ctx.file, path)};
    }
    std::vector<postgres_host> out;
    for (std::size_t i = 0; i < node.size(); ++i) {
        auto const item = node[i];
        auto const dotted = fmt::format("{}[{}]", path, i);
        postgres_host h;
        h.origin = fmt::format("{} {}", ctx.file, dotted);
        if (item.IsMap()) {
            for (auto const& entry : item) {
                auto const key = entry.first.as<std::string>();
                auto const child = child_key(dotted, key);
                auto text = scalar(entry.second, child, ctx).value_or("");
                if (key == "host") {
                    h.host = std::move(text);
                } else if (key == "port") {
                    h.port = std::move(text);
                } else if (key == "role") {
                    if (text != "primary" && text != "standby") {
                        throw config_error{fmt_error("{}: '{}' must be primary or standby; got '{}'",
                                                     ctx.file, child, text)};
                    }
                    h.role = std::move(text);
                } else {
                    warn_unknown_key(child, ctx);
                }
            }
        } else {
            std::tie(h.host, h.port) = host_and_port(scalar(item, dotted, ctx).value_or(""));
        }
        if (h.host.empty() || h.host.find_first_of(", ") != std::string::npos) {
            throw config_error{
                fmt_error("{}: '{}' needs one host name or address (host: db2.example)", ctx.file, dotted)};
        }
        if (!h.port.empty()) {
            h.port = std::to_string(parse_integer(h.port, {ctx.file, child_key(dotted, "port")}, 1, 65535));
        }
        for (auto const& earlier : out) {
            if (earlier.host == h.host && earlier.port == h.port) {
                throw config_error{fmt_error("{}: '{}' names {}{} again ({})", ctx.file, dotted, h.host,
                                             h.port.empty() ? "" : ":" + h.port, earlier.origin)};
            }
            if (earlier.role == "primary" && h.role == "primary") {
                throw config_error{fmt_error("{}: '{}' and {} are both role: primary; a replica set has one "
                                             "primary (the others are standbys)",
                                             ctx.file, dotted, earlier.origin)};
            }
        }
        out.push_back(std::move(h));
    }
    return out;
}

} // namespace

std::optional<postgis::invalid_policy> parse_invalid_policy(std::string_view text) {
    if (text == "abort") {
        return postgis::invalid_policy::abort;
    }
    if (text == "warn" || text == "warning" || text == "warnings" || text == "continue" || text == "ignore") {
        return postgis::invalid_policy::warn;
    }
    return std::nullopt;
}

std::optional<postgis::bounds_mode> parse_bounds_mode(std::string_view text) {
    if (text == "quick") {
        return postgis::bounds_mode::quick;
    }
    if (text == "calc") {
        return postgis::bounds_mode::calc;
    }
    if (text == "skip") {
        return postgis::bounds_mode::skip;
    }
    return std::nullopt;
}

postgres_settings parse_postgres(YAML::Node const& node, std::string const& path, yaml_context const& ctx) {
    if (!node.IsMap()) {
        throw config_error{
            fmt_error("{}: '{}' must be a map with connection_string (and optionally ssl_root_cert, "
                      "ssl_cert, ssl_key, pool_size, retry_timeout, tables, functions, auto_publish, ...)",
                      ctx.file, path)};
    }
    postgres_settings out;
    out.origin = fmt::format("{} {}", ctx.file, path);
    YAML::Node auto_publish;
    for (auto const& entry : node) {
        auto const key = entry.first.as<std::string>();
        auto const dotted = child_key(path, key);
        auto const& value = entry.second;
        if (key == "connection_string") {
            out.connection_string = scalar(value, dotted, ctx).value_or("");
            out.connection_string_reference = unexpanded(value, ctx);
        } else if (auto const* known = find_setting(key, setting_scope::connection)) {
            if (auto text = scalar(value, dotted, ctx)) {
                known->set_entry(out, *text, value_origin{ctx.file, dotted});
            }
        } else if (key == "session_settings") {
            out.session_settings = parse_session_settings(value, dotted, ctx);
        } else if (key == "hosts") {
            out.hosts = parse_hosts(value, dotted, ctx);
        } else if (key == "auto_publish") {
            auto_publish = value;
        } else if (key == "tables") {
            if (value && !value.IsNull()) {
                require_map(value, dotted, ctx);
                for (auto const& t : value) {
                    auto const id = t.first.as<std::string>();
                    out.publish.tables.push_back(parse_table(id, t.second, child_key(dotted, id), ctx));
                }
            }
            out.sources_listed = true;
        } else if (key == "functions") {
            if (value && !value.IsNull()) {
                require_map(value, dotted, ctx);
                for (auto const& f : value) {
                    auto const id = f.first.as<std::string>();
                    out.publish.functions.push_back(parse_function(id, f.second, child_key(dotted, id), ctx));
                }
            }
            out.sources_listed = true;
        } else {
            unhandled_key(dotted, value, ctx);
        }
    }
    if (out.connection_string.empty()) {
        throw config_error{fmt_error("{}: '{}.connection_string' is required", ctx.file, path)};
    }
    if (auto_publish.IsDefined() && !auto_publish.IsNull()) {
        out.publish.auto_publish = parse_auto_publish(auto_publish, path + ".auto_publish", ctx);
        out.auto_publish_yaml = YAML::Dump(auto_publish);
    } else if (out.sources_listed) {
        // Listing tables or functions without auto_publish publishes only those.
        out.publish.auto_publish.tables = false;
        out.publish.auto_publish.functions = false;
    }
    return out;
}

} // namespace kachel::config
