#pragma once

#include "http/http_options.hpp"
#include "http/response.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace kachel::http {

/// Scheme and host of the URL a client used.
struct scheme_and_host {
    std::string scheme = "http";
    std::string host;
};

/// The value of `name` in a `Forwarded` header (RFC 7239), first element only, unquoted.
[[nodiscard]] std::optional<std::string> forwarded_param(std::string_view header_value,
                                                         std::string_view name);

/// Scheme and host of the URL the client used: `Forwarded`, then `X-Forwarded-Proto` /
/// `X-Forwarded-Host`, then `Host`.
[[nodiscard]] scheme_and_host request_authority(request const& req);

/// The path component of a URL or path (`http://h/a/b?q` -> `/a/b`).
[[nodiscard]] std::string_view url_path(std::string_view url);

/// The path clients should use for `path` (a TileJSON's tiles; martin-compat 1.2 with decision
/// D10): base_path or route_prefix + path; else the path of X-Rewrite-URL; else
/// X-Forwarded-Prefix + path; else path.
[[nodiscard]] std::string tilejson_path(request const& req, http_options const& options,
                                        std::string_view path);

} // namespace kachel::http
