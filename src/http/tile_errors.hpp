#pragma once

#include "core/tile_coord.hpp"
#include "http/response.hpp"
#include "tiles/tile_cache.hpp"

#include <string_view>

namespace kachel::http {

/// The one place where a tile error becomes an HTTP status:
/// not_found 404, bad_request 400, unavailable 503, timeout 504, internal 500.
[[nodiscard]] boost::beast::http::status status_for(tiles::tile_errc error) noexcept;

/// The answer for a failed tile: its status with a short reason and a request id (503 adds
/// Retry-After). The details (the database's message) go to the log only, never to the client.
[[nodiscard]] response tile_error_response(request const& req, tiles::fetched_tile const& result,
                                           std::string_view ids, tile_coord coord);

} // namespace kachel::http
