#pragma once

#include "http/http_options.hpp"
#include "http/response.hpp"

#include <optional>

namespace kachel::http {

/// The answer to a CORS preflight (OPTIONS with Origin and Access-Control-Request-Method), or
/// nullopt when the request is not one or CORS is off.
[[nodiscard]] std::optional<response> preflight(request const& req, cors_options const& cors);

/// The CORS headers of an ordinary response: `Vary` always (when CORS is on), and
/// `Access-Control-Allow-Origin` for an allowed origin.
void add_cors_headers(request const& req, response& res, cors_options const& cors);

} // namespace kachel::http
