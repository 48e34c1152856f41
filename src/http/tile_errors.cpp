#include "http/tile_errors.hpp"

#include <spdlog/spdlog.h>

namespace kachel::http {

namespace bhttp = boost::beast::http;

bhttp::status status_for(tiles::tile_errc error) noexcept {
    switch (error) {
    case tiles::tile_errc::none:
        return bhttp::status::ok;
    case tiles::tile_errc::not_found:
        return bhttp::status::not_found;
    case tiles::tile_errc::bad_request:
        return bhttp::status::bad_request;
    case tiles::tile_errc::unavailable:
        return bhttp::status::service_unavailable;
    case tiles::tile_errc::timeout:
        return bhttp::status::gateway_timeout;
    case tiles::tile_errc::upstream:
        return bhttp::status::bad_gateway;
    case tiles::tile_errc::internal:
        break;
    }
    return bhttp::status::internal_server_error;
}

response tile_error_response(request const& req, tiles::fetched_tile const& result, std::string_view ids,
                             tile_coord coord) {
    auto const status = status_for(result.error);
    auto const rid = next_request_id();
    if (result.error == tiles::tile_errc::unavailable) {
        spdlog::warn("request {}: tile {}/{}/{}/{}: database unavailable: {}", rid, ids, coord.z, coord.x,
                     coord.y, result.detail);
        auto res = error_response(req, status,
                                  fmt::format("Database unavailable, retry later (request {})", rid), rid);
        res.set(bhttp::field::retry_after, "5");
        return res;
    }
    if (result.error == tiles::tile_errc::upstream) {
        spdlog::warn("request {}: tile {}/{}/{}/{}: {}", rid, ids, coord.z, coord.x, coord.y, result.detail);
        auto res = error_response(
            req, status,
            fmt::format("The server holding the archive did not answer, retry later (request {})", rid), rid);
        res.set(bhttp::field::retry_after, "5");
        return res;
    }
    if (result.error == tiles::tile_errc::timeout) {
        spdlog::warn("request {}: tile {}/{}/{}/{}: {}", rid, ids, coord.z, coord.x, coord.y, result.detail);
        return error_response(
            req, status, fmt::format("The tile took too long to produce and was cancelled (request {})", rid),
            rid);
    }
    spdlog::error("request {}: tile {}/{}/{}/{} failed: {}", rid, ids, coord.z, coord.x, coord.y,
                  result.detail);
    return error_response(req, status, fmt::format("Could not produce the tile (request {})", rid), rid);
}

} // namespace kachel::http
