#pragma once

#include "core/tile_coord.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kachel::http {

/// Most source ids one request may combine (martin-compat 1.3).
inline constexpr std::size_t max_composite_sources = 128;

/// What a request path asks for. Produced by parse_route without touching any source.
struct route {
    enum class kind {
        root,        ///< `/`
        health,      ///< `/health`
        catalog,     ///< `/catalog`
        tilejson,    ///< `/{ids}`
        tile,        ///< `/{ids}/{z}/{x}/{y}`
        ready,       ///< `/_/ready`: readiness
        metrics,     ///< `/_/metrics`: Prometheus text
        ui_asset,    ///< `/_/ui/{name}`: a file of the web UI
        redirect,    ///< legacy `/{ids}/{z}/{x}/{y}.ext` or `/tiles/...`: 301 to `location`
        not_found,   ///< no route matches
        bad_request, ///< a route matches but its values are invalid; `message` says why
    };
    kind type = kind::not_found;
    std::vector<std::string> source_ids; ///< percent-decoded, in URL order
    tile_coord coord;
    std::string path;     ///< the normalised path, still percent-encoded (for TileJSON URLs)
    std::string query;    ///< the raw query string, without `?`
    std::string location; ///< redirect target
    std::string asset;    ///< web UI file name
    std::string message;  ///< why the request is bad or not found
};

/// Parses a request target (`/path?query`). Repeated slashes are merged; a trailing slash is kept
/// (so `/catalog/` is not `/catalog`). Non-numeric z/x/y do not match (404); numbers out of range
/// (z > 30, x or y >= 2^z) are a bad request (400), as are more than 128 ids, bad escapes, an
/// encoded NUL or a raw control character in the path.
/// With a `route_prefix` (normalised, e.g. `/tiles`), every route lives under it and other paths
/// are 404, except `/health`, which also answers at the root; `path` is then the part after the
/// prefix and redirects point inside the prefix.
[[nodiscard]] route parse_route(std::string_view target, std::string_view route_prefix = {});

/// Normalises a `route_prefix` / `base_path` value: must start with `/`; repeated and trailing
/// slashes are removed; `/` alone is the empty prefix. nullopt when invalid.
[[nodiscard]] std::optional<std::string> normalize_prefix(std::string_view path);

} // namespace kachel::http
