#pragma once

#include "http/field_allocator.hpp"
#include "http/http_options.hpp"
#include "http/tile_body.hpp"
#include "postgres/readiness.hpp"
#include "tiles/catalog.hpp"
#include "tiles/tile_cache.hpp"
#include "tiles/tile_source.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>

#include <optional>

namespace kachel::http {

/// Header fields allocated from per-thread pools (http/field_allocator.hpp).
using fields = boost::beast::http::basic_fields<field_allocator<char>>;
using request = boost::beast::http::request<boost::beast::http::empty_body, fields>;
using response = boost::beast::http::response<tile_body, fields>;

/// The one place where a tile error becomes an HTTP status:
/// not_found 404, bad_request 400, unavailable 503, internal 500.
[[nodiscard]] boost::beast::http::status status_for(tiles::tile_errc error) noexcept;

/// Per-request facts the handler needs besides the request itself.
struct request_context {
    boost::asio::ip::address remote;            ///< the client's address
    http_options const* options = nullptr;      ///< \pre not null
    postgres::readiness const* ready = nullptr; ///< databases for `/_/ready` (none: always ready)
    std::string_view endpoint = "UNKNOWN";      ///< set by the handler: the route pattern, for metrics
    /// The client's socket, watched while tiles are made: a client that closes it cancels the
    /// work (and the database statements). May be null (nothing watched).
    boost::asio::ip::tcp::socket* client = nullptr;
    /// Set by the handler when the client went away before the answer was ready: do not answer.
    bool client_gone = false;
    /// The tile cache (null or disabled: none).
    tiles::tile_cache* cache = nullptr;
    /// Set by the handler for the access log: "hit", "miss" or "-" (not a cached request).
    std::string_view cache_status = "-";
};

/// Answers a request at once when that needs no waiting: every route but `/_/ready`, tiles the
/// cache holds, and every refusal. nullopt when the answer must be awaited: then call
/// async_handle_request. Never throws (as async_handle_request). Cache hits take this path
/// without a coroutine frame: nothing is allocated for them but the response's header fields,
/// which come from per-thread pools.
[[nodiscard]] std::optional<response>
handle_request_at_once(request const& req, tiles::catalog const& catalog, request_context& context);

/// Answers one request from the catalog. Never throws for bad input: every failure becomes a
/// response with a plain-text reason (details of internal errors go to the log only).
boost::asio::awaitable<response> async_handle_request(request const& req, tiles::catalog const& catalog,
                                                      request_context& context);

} // namespace kachel::http
