#include "config/save_config.hpp"

#include "config/setting.hpp"
#include "config/value_text.hpp"
#include "core/error.hpp"
#include "core/secrets.hpp"

#include <spdlog/spdlog.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

namespace kachel::config {

namespace {

/// Names from the database may contain `$`, which a plain scalar would expand as `${VAR}` when
/// the file is read back: such values are written double-quoted.
struct text {
    std::string_view value;
};

YAML::Emitter& operator<<(YAML::Emitter& y, text t) {
    if (t.value.find('$') != std::string_view::npos) {
        y << YAML::DoubleQuoted;
    }
    return y << std::string{t.value};
}

void emit_bounds(YAML::Emitter& y, std::array<double, 4> const& b) {
    y << YAML::Key << "bounds" << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (double const v : b) {
        y << v;
    }
    y << YAML::EndSeq;
}

void emit_zooms(YAML::Emitter& y, postgis::tilejson_extras const& e) {
    if (e.minzoom) {
        y << YAML::Key << "minzoom" << YAML::Value << *e.minzoom;
    }
    if (e.maxzoom) {
        y << YAML::Key << "maxzoom" << YAML::Value << *e.maxzoom;
    }
    if (e.bounds) {
        emit_bounds(y, *e.bounds);
    }
}

/// A source's `cache` when it is not the default.
void emit_cache(YAML::Emitter& y, tiles::cache_gate const& gate) {
    if (gate.disabled) {
        y << YAML::Key << "cache" << YAML::Value << "disable";
    } else if (gate.minzoom || gate.maxzoom) {
        y << YAML::Key << "cache" << YAML::Value << YAML::BeginMap;
        if (gate.minzoom) {
            y << YAML::Key << "minzoom" << YAML::Value << *gate.minzoom;
        }
        if (gate.maxzoom) {
            y << YAML::Key << "maxzoom" << YAML::Value << *gate.maxzoom;
        }
        y << YAML::EndMap;
    }
}

void emit_timeout(YAML::Emitter& y, std::chrono::milliseconds timeout,
                  std::chrono::milliseconds connection_default) {
    if (timeout != connection_default) {
        y << YAML::Key << "statement_timeout" << YAML::Value
          << fmt::format("{}s", std::chrono::duration_cast<std::chrono::seconds>(timeout).count());
    }
}

/// A per-zoom value as the config reads it: one value when every zoom has it, else a map of
/// zoom ranges (`0-4`, `7`, `10-`); nothing when no zoom has one.
template <class T>
void emit_per_zoom(YAML::Emitter& y, std::string_view key, postgis::per_zoom<T> const& value) {
    if (!value.any()) {
        return;
    }
    y << YAML::Key << std::string{key} << YAML::Value;
    if (value == postgis::per_zoom<T>::everywhere(value.values[0])) {
        y << *value.values[0];
        return;
    }
    y << YAML::BeginMap;
    int const last = postgis::max_zoom_level;
    for (int z = 0; z <= last;) {
        auto const v = value.at(z);
        int end = z;
        while (end < last && value.at(end + 1) == v) {
            ++end;
        }
        if (v) {
            auto const range = z == end
                                   ? std::to_string(z)
                                   : (end == last ? fmt::format("{}-", z) : fmt::format("{}-{}", z, end));
            y << YAML::Key << range << YAML::Value << *v;
        }
        z = end + 1;
    }
    y << YAML::EndMap;
}

void emit_budget(YAML::Emitter& y, postgis::tile_budget const& budget,
                 postgis::publish_config const& publish) {
    if (!budget.order_by.empty()) {
        std::string terms;
        for (auto const& term : budget.order_by) {
            terms +=
                fmt::format("{}{}{}", terms.empty() ? "" : ", ", term.column, term.descending ? " desc" : "");
        }
        y << YAML::Key << "order_by" << YAML::Value << text{terms};
    }
    if (budget.max_feature_count != postgis::per_zoom<std::uint64_t>::everywhere(publish.max_feature_count)) {
        emit_per_zoom(y, "max_feature_count", budget.max_feature_count);
    }
    emit_per_zoom(y, "thin_points", budget.thin_points);
    emit_per_zoom(y, "simplify", budget.simplify);
}

void emit_table(YAML::Emitter& y, postgis::table_spec const& t, postgis::publish_config const& publish) {
    y << YAML::Key << text{t.id} << YAML::Value << YAML::BeginMap;
    y << YAML::Key << "schema" << YAML::Value << text{t.table.schema};
    y << YAML::Key << "table" << YAML::Value << text{t.table.table};
    y << YAML::Key << "srid" << YAML::Value << t.layout.srid;
    y << YAML::Key << "geometry_column" << YAML::Value << text{t.table.geometry_column};
    y << YAML::Key << "geometry_type" << YAML::Value << t.table.geometry_type;
    if (t.layout.layer != t.id) {
        y << YAML::Key << "layer_id" << YAML::Value << text{t.layout.layer};
    }
    if (t.layout.id_column) {
        y << YAML::Key << "id_column" << YAML::Value << text{t.layout.id_column->name};
    }
    emit_zooms(y, t.extras);
    y << YAML::Key << "extent" << YAML::Value << t.layout.geometry.extent;
    y << YAML::Key << "buffer" << YAML::Value << t.layout.geometry.buffer;
    y << YAML::Key << "clip_geom" << YAML::Value << t.layout.geometry.clip_geom;
    emit_timeout(y, t.statement_timeout, publish.statement_timeout);
    emit_cache(y, t.cache);
    emit_budget(y, t.layout.budget, publish);
    if (!t.filter_text.empty()) {
        y << YAML::Key << "filter" << YAML::Value << text{t.filter_text};
    }
    if (t.notify_changes != publish.notify_changes) {
        y << YAML::Key << "notify_changes" << YAML::Value << t.notify_changes;
    }
    y << YAML::Key << "properties" << YAML::Value << YAML::BeginMap;
    for (auto const& p : t.layout.properties) {
        y << YAML::Key << text{p.name} << YAML::Value << text{p.type};
    }
    y << YAML::EndMap << YAML::EndMap;
}

void emit_function(YAML::Emitter& y, postgis::function_spec const& f,
                   std::chrono::milliseconds default_timeout) {
    y << YAML::Key << text{f.id} << YAML::Value << YAML::BeginMap;
    y << YAML::Key << "schema" << YAML::Value << text{f.function.schema};
    y << YAML::Key << "function" << YAML::Value << text{f.function.function};
    emit_zooms(y, f.extras);
    emit_timeout(y, f.statement_timeout, default_timeout);
    emit_cache(y, f.cache);
    y << YAML::EndMap;
}

/// The table's server settings in table order: top-level keys, then each section (`cache`) as a
/// map; then `cors` and the metric labels.
void emit_server_settings(YAML::Emitter& y, settings const& s) {
    std::vector<std::pair<std::string_view, std::vector<std::pair<std::string_view, std::string>>>> sections;
    for (auto const& st : all_settings()) {
        if (st.scope != setting_scope::server) {
            continue;
        }
        auto value = st.show(s, 0);
        if (value.empty()) {
            continue;
        }
        auto const dot = st.key.find('.');
        if (dot == std::string_view::npos) {
            y << YAML::Key << std::string{st.key} << YAML::Value << text{value};
            continue;
        }
        auto const section = st.key.substr(0, dot);
        auto it =
            std::find_if(sections.begin(), sections.end(), [&](auto const& e) { return e.first == section; });
        if (it == sections.end()) {
            it = sections.insert(sections.end(), {section, {}});
        }
        it->second.emplace_back(st.key.substr(dot + 1), std::move(value));
    }
    for (auto const& [section, values] : sections) {
        y << YAML::Key << std::string{section} << YAML::Value << YAML::BeginMap;
        for (auto const& [key, value] : values) {
            y << YAML::Key << std::string{key} << YAML::Value << text{value};
        }
        y << YAML::EndMap;
    }
    auto const& cors = s.http.cors;
    y << YAML::Key << "cors" << YAML::Value;
    if (!cors.enabled || (cors.origins.empty() && !cors.max_age)) {
        y << cors.enabled;
    } else {
        y << YAML::BeginMap << YAML::Key << "origin" << YAML::Value << YAML::BeginSeq;
        for (auto const& origin : cors.origins) {
            y << text{origin};
        }
        y << YAML::EndSeq;
        if (cors.max_age) {
            y << YAML::Key << "max_age" << YAML::Value << *cors.max_age;
        }
        y << YAML::EndMap;
    }
    if (!s.metric_labels.empty()) {
        y << YAML::Key << "observability" << YAML::Value << YAML::BeginMap << YAML::Key << "metrics"
          << YAML::Value << YAML::BeginMap << YAML::Key << "add_labels" << YAML::Value << YAML::BeginMap;
        for (auto const& [name, value] : s.metric_labels) {
            y << YAML::Key << name << YAML::Value << text{value};
        }
        y << YAML::EndMap << YAML::EndMap << YAML::EndMap;
    }
}

void emit_postgres(YAML::Emitter& y, settings const& s, std::size_t i,
                   postgis::published_database const& db) {
    auto const& entry = s.postgres[i];
    auto const publish = s.publish_config_for(i);
    y << YAML::BeginMap;
    y << YAML::Key << "connection_string" << YAML::Value;
    if (entry.connection_string_reference) {
        y << *entry.connection_string_reference; // ${VAR} stays a reference
    } else {
        y << text{without_password(entry.connection_string)};
    }
    if (!entry.hosts.empty()) {
        y << YAML::Key << "hosts" << YAML::Value << YAML::BeginSeq;
        for (auto const& h : entry.hosts) {
            y << YAML::BeginMap << YAML::Key << "host" << YAML::Value << text{h.host};
            if (!h.port.empty()) {
                y << YAML::Key << "port" << YAML::Value << text{h.port};
            }
            if (!h.role.empty()) {
                y << YAML::Key << "role" << YAML::Value << text{h.role};
            }
            y << YAML::EndMap;
        }
        y << YAML::EndSeq;
    }
    for (auto const& st : all_settings()) {
        if (st.scope == setting_scope::connection) {
            if (auto const value = st.show(s, i); !value.empty()) {
                y << YAML::Key << std::string{st.key} << YAML::Value << text{value};
            }
        }
    }
    if (!entry.session_settings.empty()) {
        y << YAML::Key << "session_settings" << YAML::Value << YAML::BeginMap;
        for (auto const& setting : entry.session_settings) {
            y << YAML::Key << setting.name << YAML::Value << setting.value;
        }
        y << YAML::EndMap;
    }
    y << YAML::Key << "auto_publish" << YAML::Value;
    if (entry.auto_publish_yaml) {
        y << YAML::Load(*entry.auto_publish_yaml);
    } else {
        y << !entry.sources_listed;
    }
    // Sorted by id, so saving again from the saved file gives the same text.
    auto const by_id = [](auto const* a, auto const* b) { return a->id < b->id; };
    std::vector<postgis::table_spec const*> tables;
    for (auto const& t : db.tables) {
        tables.push_back(&t);
    }
    std::sort(tables.begin(), tables.end(), by_id);
    std::vector<postgis::function_spec const*> functions;
    for (auto const& f : db.functions) {
        functions.push_back(&f);
    }
    std::sort(functions.begin(), functions.end(), by_id);
    y << YAML::Key << "tables" << YAML::Value << YAML::BeginMap;
    for (auto const* t : tables) {
        emit_table(y, *t, publish);
    }
    y << YAML::EndMap;
    y << YAML::Key << "functions" << YAML::Value << YAML::BeginMap;
    for (auto const* f : functions) {
        emit_function(y, *f, publish.statement_timeout);
    }
    y << YAML::EndMap << YAML::EndMap;
}

/// `mbtiles:` / `pmtiles:` as given (files and directories, named sources, the directory cache).
void emit_archives(YAML::Emitter& y, std::string const& key, tiles::archive_config const& given) {
    auto const& remote = given.remote;
    bool const remote_given = !remote.allow_http || remote.allow_invalid_certificates ||
                              remote.ssl_root_cert || remote.timeout || remote.connect_timeout ||
                              remote.pool_idle_timeout || remote.pool_max_idle_per_host ||
                              remote.reload_interval;
    if (given.paths.empty() && given.sources.empty() && !given.directory_cache_mb && !remote_given) {
        return;
    }
    y << YAML::Key << key << YAML::Value << YAML::BeginMap;
    if (!given.paths.empty()) {
        y << YAML::Key << "paths" << YAML::Value << YAML::BeginSeq;
        for (auto const& path : given.paths) {
            y << text{path};
        }
        y << YAML::EndSeq;
    }
    if (!given.sources.empty()) {
        y << YAML::Key << "sources" << YAML::Value << YAML::BeginMap;
        for (auto const& source : given.sources) {
            y << YAML::Key << source.id << YAML::Value << text{source.path};
        }
        y << YAML::EndMap;
    }
    if (given.directory_cache_mb) {
        y << YAML::Key << "directory_cache" << YAML::Value << *given.directory_cache_mb;
    }
    if (!remote.allow_http) {
        y << YAML::Key << "allow_http" << YAML::Value << false;
    }
    if (remote.allow_invalid_certificates) {
        y << YAML::Key << "allow_invalid_certificates" << YAML::Value << true;
    }
    if (remote.ssl_root_cert) {
        y << YAML::Key << "ssl_root_cert" << YAML::Value << text{*remote.ssl_root_cert};
    }
    for (auto const& [name, value] :
         {std::pair{"timeout", remote.timeout}, std::pair{"connect_timeout", remote.connect_timeout},
          std::pair{"pool_idle_timeout", remote.pool_idle_timeout},
          std::pair{"reload_interval", remote.reload_interval}}) {
        if (value) {
            y << YAML::Key << name << YAML::Value << duration_text(*value);
        }
    }
    if (remote.pool_max_idle_per_host) {
        y << YAML::Key << "pool_max_idle_per_host" << YAML::Value << *remote.pool_max_idle_per_host;
    }
    y << YAML::EndMap;
}

} // namespace

std::string render_saved_config(settings const& s,
                                std::vector<postgis::published_database> const& published) {
    YAML::Emitter y;
    y << YAML::BeginMap;
    emit_server_settings(y, s);
    y << YAML::Key << "postgres" << YAML::Value << YAML::BeginSeq;
    for (std::size_t i = 0; i < s.postgres.size(); ++i) {
        emit_postgres(y, s, i, published.at(i));
    }
    y << YAML::EndSeq;
    emit_archives(y, "mbtiles", s.mbtiles);
    emit_archives(y, "pmtiles", s.pmtiles);
    y << YAML::EndMap;
    return std::string{y.c_str()} + "\n";
}

void save_config(std::string const& path, settings const& s,
                 std::vector<postgis::published_database> const& published) {
    auto const text = render_saved_config(s, published);
    if (path == "-") {
        if (std::fwrite(text.data(), 1, text.size(), stdout) != text.size() || std::fflush(stdout) != 0) {
            throw config_error{"--save-config -: could not write the configuration to standard output"};
        }
        return;
    }
    std::ofstream out{path, std::ios::trunc};
    out << text;
    out.close();
    if (!out) {
        throw config_error{
            fmt_error("Cannot write the configuration to '{}' (--save-config): check the directory "
                      "exists and is writable",
                      path)};
    }
    spdlog::info("Saved the resolved configuration to {}", path);
}

} // namespace kachel::config
