#pragma once

#include "core/tile_coord.hpp"

#include <boost/container/small_vector.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kachel::http {

/// Most source ids one request may combine (martin-compat 1.3).
inline constexpr std::size_t max_composite_sources = 128;

/// What a request path asks for. Produced by parse_route without touching any source.
/// The views (`source_ids`, `path`, `query`, `asset`) point into the target given to parse_route,
/// or into the route's own storage when the path had to be normalised or decoded: they are
/// valid while both the target and the route live (moving the route keeps them valid).
struct route {
    enum class kind {
        root,        ///< `/`
        health,      ///< `/health`
        catalog,     ///< `/catalog`
        tilejson,    ///< `/{ids}`
        tile,        ///< `/{ids}/{z}/{x}/{y}`
        ready,       ///< `/_/ready`: readiness
        metrics,     ///< `/_/metrics`: Prometheus text
        changes,     ///< `/_/changes`: the server-sent events of tile changes
        ui_asset,    ///< `/_/ui/{name}`: a file of the web UI
        purge,       ///< `/cache/{ids}`: drop cached tiles (DELETE, when purge_endpoint is on)
        redirect,    ///< legacy `/{ids}/{z}/{x}/{y}.ext` or `/tiles/...`: 301 to `location`
        not_found,   ///< no route matches
        bad_request, ///< a route matches but its values are invalid; `message` says why
    };
    kind type = kind::not_found;
    /// Percent-decoded, in URL order.
    boost::container::small_vector<std::string_view, 4> source_ids;
    tile_coord coord;
    std::string_view path;  ///< the normalised path, still percent-encoded (for TileJSON URLs)
    std::string_view query; ///< the raw query string, without `?`
    std::string_view asset; ///< web UI file name
    std::string location;   ///< redirect target
    std::string message;    ///< why the request is bad or not found

    /// The normalised path when it differs from the target's (repeated slashes), and the decoded
    /// ids when they differ from the path's (escapes); null otherwise, as for most requests.
    std::unique_ptr<std::string const> own_path;
    std::unique_ptr<std::string const> own_ids;
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
