#pragma once

#include "tiles/tile_source.hpp"

#include <nlohmann/json.hpp>

#include <span>
#include <string_view>

namespace kachel::tiles {

/// Where a TileJSON request came from, to build the `tiles` URL clients will call.
struct request_origin {
    std::string_view scheme = "http"; ///< from X-Forwarded-Proto, else http
    std::string_view host;            ///< from X-Forwarded-Host, else Host
    std::string_view path;            ///< the request path, e.g. `/countries` or `/a,b`
    std::string_view query;           ///< the raw query string without `?`, copied onto the URL
};

/// The TileJSON for one source or a composite of several (martin-compat 1.9, 1.10), with
/// `tiles` = `scheme://host/path/{z}/{x}/{y}[?query]`.
/// \pre !sources.empty()
[[nodiscard]] nlohmann::json make_tilejson(std::span<tile_source const* const> sources,
                                           request_origin const& origin);

} // namespace kachel::tiles
