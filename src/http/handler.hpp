#pragma once

#include "http/field_allocator.hpp"
#include "http/http_options.hpp"
#include "http/tile_body.hpp"
#include "tiles/catalog.hpp"
#include "tiles/readiness_check.hpp"
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

#include <memory>
#include <variant>

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
    boost::asio::ip::address remote;               ///< the client's address
    http_options const* options = nullptr;         ///< \pre not null
    tiles::readiness_check const* ready = nullptr; ///< databases for `/_/ready` (none: always ready)
    std::string_view endpoint = "UNKNOWN";         ///< set by the handler: the route pattern, for metrics
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

/// What handle_request leaves to async_finish_request: the readiness checks or a tile to make
/// (opaque; defined in handler.cpp).
struct deferred_answer;
struct deferred_answer_deleter {
    void operator()(deferred_answer* work) const noexcept;
};
using deferred_answer_ptr = std::unique_ptr<deferred_answer, deferred_answer_deleter>;

/// Answers one request from the catalog, at once when that needs no waiting: every route but
/// `/_/ready`, tiles the cache holds, and every refusal. Cache hits take this path without a
/// coroutine frame: nothing is allocated for them but the response's header fields, which come
/// from per-thread pools. Otherwise returns the work left, for async_finish_request.
/// Never throws for bad input: every failure becomes a response with a plain-text reason
/// (details of internal errors go to the log only).
[[nodiscard]] std::variant<response, deferred_answer_ptr>
handle_request(request const& req, tiles::catalog const& catalog, request_context& context);

/// Finishes a request that handle_request could not answer at once (same rules).
/// \pre `work` is what handle_request returned for `req` and `context`.
boost::asio::awaitable<response> async_finish_request(request const& req, request_context& context,
                                                      deferred_answer_ptr work);

} // namespace kachel::http
