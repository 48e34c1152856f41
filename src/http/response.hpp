#pragma once

#include "http/field_allocator.hpp"
#include "http/tile_body.hpp"

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/status.hpp>

#include <algorithm>
#include <array>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace kachel::http {

/// Header fields allocated from per-thread pools (http/field_allocator.hpp).
using fields = boost::beast::http::basic_fields<field_allocator<char>>;
using request = boost::beast::http::request<boost::beast::http::empty_body, fields>;
using response = boost::beast::http::response<tile_body, fields>;

/// A response to `req` (same version and keep-alive) with `Server: kachel`, the body, and its
/// Content-Type unless empty.
[[nodiscard]] response make_response(request const& req, boost::beast::http::status status, std::string body,
                                     std::string_view content_type);

/// A plain-text (UTF-8) response.
[[nodiscard]] response text_response(request const& req, boost::beast::http::status status, std::string body);

/// A 500 with a new request id; `failure` (never shown to the client) goes to the log with it.
[[nodiscard]] response internal_error(request const& req, std::string_view failure);

/// A new request id (8 hex digits) that ties a client's error to the log line with the details.
[[nodiscard]] std::string next_request_id();

/// The header an error answer names its request id in (the access log then uses the same id).
inline constexpr std::string_view request_id_header = "X-Request-Id";

/// A plain-text error naming request `id` (in the body and in X-Request-Id).
[[nodiscard]] response error_response(request const& req, boost::beast::http::status status, std::string body,
                                      std::string_view id);

/// The value of a request header, or nullopt. The view is valid while `req` is.
[[nodiscard]] std::optional<std::string_view> header(request const& req, boost::beast::http::field f);

/// Appends tokens to a Vary header, keeping what is there.
void add_vary(response& res, std::string_view tokens);

/// `parts` joined, in `buffer` when they fit (no allocation: this runs for every cached tile),
/// else in `fallback`. The view is valid while both are.
template <std::size_t N>
[[nodiscard]] std::string_view join_into(std::array<char, N>& buffer, std::string& fallback,
                                         std::initializer_list<std::string_view> parts) {
    std::size_t size = 0;
    for (auto const part : parts) {
        size += part.size();
    }
    char* out = buffer.data();
    if (size > N) {
        fallback.resize(size);
        out = fallback.data();
    }
    std::size_t at = 0;
    for (auto const part : parts) {
        std::copy(part.begin(), part.end(), out + at);
        at += part.size();
    }
    return {out, size};
}

} // namespace kachel::http
