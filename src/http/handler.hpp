#pragma once

#include "http/change_feed.hpp"
#include "http/http_options.hpp"
#include "http/response.hpp"
#include "tiles/catalog.hpp"
#include "tiles/readiness_check.hpp"
#include "tiles/tile_cache.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <memory>
#include <string_view>
#include <variant>

namespace kachel::http {

/// What the handler needs besides the request: every field is an input.
struct request_context {
    boost::asio::ip::address remote;               ///< the client's address
    http_options const* options = nullptr;         ///< \pre not null
    tiles::readiness_check const* ready = nullptr; ///< backends for `/_/ready` (none: always ready)
    /// The client's socket, watched while tiles are made: a client that closes it cancels the
    /// work (and the database statements). May be null (nothing watched).
    boost::asio::ip::tcp::socket* client = nullptr;
    /// The tile cache (null: none).
    tiles::tile_cache* cache = nullptr;
    /// Where purges are told and `/_/changes` subscribes (null: no change stream).
    change_feed* changes = nullptr;
    /// A thread pool for work too long for an event loop (compressing a big tile); none: the
    /// loop does it.
    boost::asio::any_io_executor blocking;
};

/// What the handler reports about a request besides the response, for metrics and the log.
struct request_report {
    std::string_view endpoint = "UNKNOWN"; ///< the route pattern (`/{source_ids}/{z}/{x}/{y}`)
    std::string_view cache_status = "-";   ///< "hit", "miss" or "-" (not a cached request)
    bool client_gone = false;              ///< the client went away first: do not answer
    /// The response is the head of `/_/changes`: the server streams the change events after it.
    bool event_stream = false;
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
/// handle_request's result: the response, or the work left; and the report so far.
struct first_answer {
    std::variant<response, deferred_answer_ptr> answer;
    request_report report;
};

[[nodiscard]] first_answer handle_request(request const& req, tiles::catalog const& catalog,
                                          request_context const& context);

/// async_finish_request's result: the response (empty when the client went away) and the report.
struct final_answer {
    response res;
    request_report report;
};

/// Finishes a request that handle_request could not answer at once (same rules).
/// \pre `work` and `report` are what handle_request returned for `req` and `context`.
[[nodiscard]] boost::asio::awaitable<final_answer> async_finish_request(request const& req,
                                                                        request_context const& context,
                                                                        deferred_answer_ptr work,
                                                                        request_report report);

} // namespace kachel::http
