#include "config/martin_keys.hpp"

#include "core/error.hpp"
#include "core/text.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>

namespace kachel::config {

namespace {

using enum key_status;

constexpr std::string_view archives = "this source kind is not served yet";
constexpr std::string_view resources = "styles, fonts and sprites are not served yet";
constexpr std::string_view transcoding =
    "MVT/MLT transcoding changes the tiles served and is not implemented";

// clang-format off
constexpr std::array keys{
    martin_key{"listen_addresses", implemented, {}, "'127.0.0.1:3001'", {}},
    martin_key{"keep_alive", implemented, {}, "30", {}},
    martin_key{"worker_processes", implemented, {}, "2", {}},
    martin_key{"route_prefix", implemented, {}, "/tiles", {}},
    martin_key{"base_path", implemented, {}, "/tiles", {}},
    martin_key{"preferred_encoding", implemented, {}, "brotli", {}},
    martin_key{"cache_control", implemented, {}, "'public, max-age=60'", {}},
    martin_key{"cors", implemented, {}, "{origin: ['https://a.example'], max_age: 60}", {}},
    martin_key{"web_ui", implemented, {}, "enable-for-all", {}},
    martin_key{"on_invalid", implemented, {}, "warn", {}},
    martin_key{"cache_size_mb", implemented, {}, "64", "deprecated: cache.size_mb"},
    martin_key{"tile_cache_size_mb", implemented, {}, "32", "deprecated: cache.tile_size_mb"},
    martin_key{"cache", implemented, {}, "disable", {}},
    martin_key{"cache.size_mb", implemented, {}, "64", {}},
    martin_key{"cache.tile_size_mb", implemented, {}, "32", {}},
    martin_key{"cache.expiry", implemented, {}, "1h", {}},
    martin_key{"cache.tile_expiry", implemented, {}, "10m", {}},
    martin_key{"cache.minzoom", implemented, {}, "2", {}},
    martin_key{"cache.maxzoom", implemented, {}, "12", {}},
    martin_key{"cache.idle_timeout", implemented, {}, "10m", {}},
    martin_key{"cache.tile_idle_timeout", implemented, {}, "10m", {}},
    martin_key{"tilejson_url_version_param", warned, {}, "v", "only adds a version parameter to TileJSON tile URLs"},
    martin_key{"observability.metrics.add_labels", implemented, {}, "{region: eu}", {}},
    martin_key{"purge_endpoint", implemented, {}, "true", {}},
    martin_key{"convert_to_mlt", refused, "disabled", "auto", transcoding},
    martin_key{"convert_to_mvt", refused, "disabled", "auto", transcoding},
    martin_key{"mbtiles", implemented, {}, "{paths: [/data]}", {}},
    martin_key{"mbtiles.paths", implemented, {}, "[/data]", {}},
    martin_key{"mbtiles.sources", implemented, {}, "{world: /data/world.mbtiles}", {}},
    martin_key{"pmtiles", implemented, {}, "{paths: [/data]}", {}},
    martin_key{"pmtiles.paths", implemented, {}, "[/data]", {}},
    martin_key{"pmtiles.sources", implemented, {}, "{world: /data/world.pmtiles}", {}},
    martin_key{"pmtiles.directory_cache", implemented, {}, "32", {}},
    martin_key{"pmtiles.allow_http", implemented, {}, "false", {}},
    martin_key{"pmtiles.allow_invalid_certificates", implemented, {}, "false", {}},
    martin_key{"pmtiles.timeout", implemented, {}, "30s", {}},
    martin_key{"pmtiles.connect_timeout", implemented, {}, "5s", {}},
    martin_key{"pmtiles.pool_idle_timeout", implemented, {}, "30s", {}},
    martin_key{"pmtiles.pool_max_idle_per_host", implemented, {}, "8", {}},
    martin_key{"pmtiles.reload_interval", implemented, {}, "10m", {}},
    martin_key{"cog", refused, {}, "{paths: [/data]}", archives},
    martin_key{"geojson", refused, {}, "{paths: [/data]}", archives},
    martin_key{"passthrough", refused, {}, "{sources: {a: 'https://a.example'}}", archives},
    martin_key{"sprites", refused, {}, "{paths: [/data]}", resources},
    martin_key{"fonts", refused, {}, "[/data]", resources},
    martin_key{"styles", refused, {}, "{paths: [/data]}", resources},
    martin_key{"postgres", implemented, {}, "{connection_string: 'host=h'}", {}},
    martin_key{"postgres.connection_string", implemented, {}, "'host=h dbname=d'", {}},
    martin_key{"postgres.ssl_root_cert", implemented, {}, "/ca.crt", {}},
    martin_key{"postgres.ssl_cert", implemented, {}, "/c.crt", {}},
    martin_key{"postgres.ssl_key", implemented, {}, "/c.key", {}},
    martin_key{"postgres.default_srid", implemented, {}, "4326", {}},
    martin_key{"postgres.auto_bounds", implemented, {}, "calc", {}},
    martin_key{"postgres.max_feature_count", implemented, {}, "1000", {}},
    martin_key{"postgres.pool_size", implemented, {}, "4", {}},
    martin_key{"postgres.retry_timeout", implemented, {}, "5s", {}},
    martin_key{"postgres.reload_interval", implemented, {}, "1m", {}},
    martin_key{"postgres.convert_to_mlt", refused, "disabled", "auto", transcoding},
    martin_key{"postgres.convert_to_mvt", refused, "disabled", "auto", transcoding},
    martin_key{"postgres.auto_publish", implemented, {}, "{from_schemas: [public]}", {}},
    martin_key{"postgres.tables", implemented, {}, "{}", {}},
    martin_key{"postgres.functions", implemented, {}, "{}", {}},
    martin_key{"postgres.tables.*.schema", implemented, {}, "public", {}},
    martin_key{"postgres.tables.*.table", implemented, {}, "t", {}},
    martin_key{"postgres.tables.*.srid", implemented, {}, "4326", {}},
    martin_key{"postgres.tables.*.geometry_column", implemented, {}, "geom", {}},
    martin_key{"postgres.tables.*.layer_id", implemented, {}, "l", {}},
    martin_key{"postgres.tables.*.id_column", implemented, {}, "id", {}},
    martin_key{"postgres.tables.*.minzoom", implemented, {}, "2", {}},
    martin_key{"postgres.tables.*.maxzoom", implemented, {}, "14", {}},
    martin_key{"postgres.tables.*.bounds", implemented, {}, "[-10, -10, 10, 10]", {}},
    martin_key{"postgres.tables.*.extent", implemented, {}, "8192", {}},
    martin_key{"postgres.tables.*.buffer", implemented, {}, "16", {}},
    martin_key{"postgres.tables.*.clip_geom", implemented, {}, "false", {}},
    martin_key{"postgres.tables.*.geometry_type", implemented, {}, "POINT", {}},
    martin_key{"postgres.tables.*.properties", implemented, {}, "{name: text}", {}},
    martin_key{"postgres.tables.*.cache", implemented, {}, "disable", {}},
    martin_key{"postgres.tables.*.filter", implemented, {}, "'pop > 1000'", {}},
    martin_key{"postgres.tables.*.convert_to_mlt", refused, "disabled", "auto", transcoding},
    martin_key{"postgres.tables.*.convert_to_mvt", refused, "disabled", "auto", transcoding},
    martin_key{"postgres.functions.*.schema", implemented, {}, "public", {}},
    martin_key{"postgres.functions.*.function", implemented, {}, "f", {}},
    martin_key{"postgres.functions.*.minzoom", implemented, {}, "2", {}},
    martin_key{"postgres.functions.*.maxzoom", implemented, {}, "14", {}},
    martin_key{"postgres.functions.*.bounds", implemented, {}, "[-10, -10, 10, 10]", {}},
    martin_key{"postgres.functions.*.cache", implemented, {}, "disable", {}},
    martin_key{"postgres.functions.*.convert_to_mlt", refused, "disabled", "auto", transcoding},
    martin_key{"postgres.functions.*.convert_to_mvt", refused, "disabled", "auto", transcoding},
};
// clang-format on

martin_key const* find_key(std::string_view pattern) noexcept {
    for (auto const& k : keys) {
        if (k.path == pattern) {
            return &k;
        }
    }
    return nullptr;
}

} // namespace

std::span<martin_key const> martin_keys() noexcept {
    return keys;
}

std::string key_pattern(std::string_view dotted) {
    std::string out;
    out.reserve(dotted.size());
    std::string_view previous;
    while (!dotted.empty()) {
        auto const dot = dotted.find('.');
        auto part = dotted.substr(0, dot);
        dotted = dot == std::string_view::npos ? std::string_view{} : dotted.substr(dot + 1);
        if (auto const bracket = part.find('['); bracket != std::string_view::npos) {
            part = part.substr(0, bracket);
        }
        if (!out.empty()) {
            out += '.';
        }
        // The component after `tables`/`functions` of a connection is a source id.
        bool const is_id = (previous == "tables" || previous == "functions") &&
                           out.starts_with("postgres.") && std::count(out.begin(), out.end(), '.') == 2;
        out += is_id ? std::string_view{"*"} : part;
        previous = part;
    }
    return out;
}

void unhandled_key(std::string const& dotted, YAML::Node const& value, yaml_context const& ctx) {
    auto const pattern = key_pattern(dotted);
    auto const* key = find_key(pattern);
    if (key == nullptr || key->status == key_status::implemented) {
        bool const in_source =
            pattern.starts_with("postgres.tables.*.") || pattern.starts_with("postgres.functions.*.");
        if (in_source) {
            throw config_error{
                fmt_error("{}: '{}' is not a key of a {} source: check its spelling (an unknown "
                          "key could be a filter or a limit that would not apply); see "
                          "docs/config.md for the keys",
                          ctx.file, dotted, pattern.starts_with("postgres.tables") ? "table" : "function")};
        }
        warn_unknown_key(dotted, ctx);
        return;
    }
    if (key->status == key_status::warned) {
        spdlog::warn("{}: configuration key '{}' is not supported by kachel yet and is ignored: {}", ctx.file,
                     dotted, key->note);
        return;
    }
    if (!key->off_value.empty() && value.IsScalar() && iequals(value.Scalar(), key->off_value)) {
        return;
    }
    throw config_error{
        fmt_error("{}: '{}' is not supported by kachel yet ({}); it decides what is served, so "
                  "kachel stops instead of ignoring it: remove it{}",
                  ctx.file, dotted, key->note,
                  key->off_value.empty() ? std::string{} : fmt::format(" or set it to {}", key->off_value))};
}

} // namespace kachel::config
