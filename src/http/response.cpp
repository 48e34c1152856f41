#include "http/response.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdint>

namespace kachel::http {

namespace bhttp = boost::beast::http;

response make_response(request const& req, bhttp::status status, std::string body,
                       std::string_view content_type) {
    response res{status, req.version()};
    res.set(bhttp::field::server, "kachel");
    if (!content_type.empty()) {
        res.set(bhttp::field::content_type, content_type);
    }
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

response text_response(request const& req, bhttp::status status, std::string body) {
    return make_response(req, status, std::move(body), "text/plain; charset=utf-8");
}

std::string next_request_id() {
    static std::atomic<std::uint64_t> counter{0};
    return fmt::format("{:08x}", ++counter);
}

/// Appends tokens to a Vary header, keeping what is there.
void add_vary(response& res, std::string_view tokens) {
    auto const it = res.find(bhttp::field::vary);
    if (it == res.end() || it->value().empty()) {
        res.set(bhttp::field::vary, tokens);
    } else {
        std::array<char, 256> buffer{};
        std::string fallback;
        auto const existing = it->value();
        res.set(
            bhttp::field::vary,
            join_into(buffer, fallback, {std::string_view{existing.data(), existing.size()}, ", ", tokens}));
    }
}

std::optional<std::string_view> header(request const& req, bhttp::field f) {
    auto const it = req.find(f);
    if (it == req.end()) {
        return std::nullopt;
    }
    return std::string_view{it->value().data(), it->value().size()};
}

response error_response(request const& req, bhttp::status status, std::string body, std::string_view id) {
    auto res = text_response(req, status, std::move(body));
    res.set(request_id_header, id);
    return res;
}

response internal_error(request const& req, std::string_view failure) {
    auto const rid = next_request_id();
    spdlog::error("request {}: {} {} failed: {}", rid, req.method_string(), req.target(), failure);
    return error_response(req, bhttp::status::internal_server_error,
                          fmt::format("Internal error (request {})", rid), rid);
}

} // namespace kachel::http
