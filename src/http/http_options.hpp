#pragma once

#include "http/compression.hpp"
#include "http/webui.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kachel::http {

/// CORS as in Martin (`cors: true|false|{origin: [...], max_age: N}`); on by default for any origin.
struct cors_options {
    bool enabled = true;
    std::vector<std::string> origins; ///< empty or containing "*" = any origin
    std::optional<unsigned> max_age;

    [[nodiscard]] bool allows(std::string_view origin) const noexcept;
};

/// HTTP behaviour settings shared by every request.
struct http_options {
    webui_mode webui = webui_mode::loopback_only;
    cors_options cors;
    /// `cache_control`: added to responses that set no Cache-Control of their own.
    std::optional<std::string> cache_control;
    /// Breaks ties in Accept-Encoding negotiation (`preferred_encoding`, `--preferred-encoding`).
    encoding preferred_encoding = encoding::gzip;
    /// Tiles a source makes bigger than this are warned about (`tile_size_warning`); 0: never.
    std::size_t tile_size_warning = 500'000;
    /// One info line per request.
    bool access_log = true;
    /// `route_prefix`: every route is mounted under it (normalised, empty = none).
    std::string route_prefix;
    /// `base_path`: the path written into TileJSON `tiles` URLs instead of the route prefix.
    std::optional<std::string> base_path;
    /// `purge_endpoint`: `DELETE /cache/{ids}` drops cached tiles.
    bool purge_endpoint = false;
    /// The bearer token the purge route asks for (KACHEL_PURGE_TOKEN or `purge_token_file`); without
    /// one it answers loopback clients only. Secret: never logged.
    std::optional<std::string> purge_token;
};

/// True for a comma-separated list of Cache-Control directives (`name` or `name=value`).
[[nodiscard]] bool is_valid_cache_control(std::string_view value) noexcept;

/// What an `Accept` header allows for tiles: any format, or a set of canonical MIME types.
struct accepted_formats {
    bool any = true;
    std::vector<std::string> types;

    [[nodiscard]] bool allows(std::string_view content_type) const noexcept;
};

/// Parses `Accept` as martin-compat 1.4: absent, empty or `*/*` = any; `image/*` = every image
/// type; aliases (`application/vnd.mapbox-vector-tile`, `image/jpg`) are canonicalised; entries
/// with q=0 are ignored; unknown types are dropped (so the result may be empty: 406).
[[nodiscard]] accepted_formats parse_accept(std::optional<std::string_view> header);

} // namespace kachel::http
