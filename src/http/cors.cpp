#include "http/cors.hpp"

#include <string>

namespace kachel::http {

namespace bhttp = boost::beast::http;

std::optional<response> preflight(request const& req, cors_options const& cors) {
    auto const origin = header(req, bhttp::field::origin);
    auto const method = header(req, bhttp::field::access_control_request_method);
    if (req.method() != bhttp::verb::options || !cors.enabled || !origin || !method) {
        return std::nullopt;
    }
    if (!cors.allows(*origin) || (*method != "GET" && *method != "HEAD")) {
        return text_response(req, bhttp::status::bad_request,
                             "CORS preflight refused: origin or method not allowed");
    }
    auto res = make_response(req, bhttp::status::ok, {}, {});
    res.set(bhttp::field::access_control_allow_methods, "GET, HEAD");
    if (auto const requested = header(req, bhttp::field::access_control_request_headers)) {
        res.set(bhttp::field::access_control_allow_headers, *requested);
    }
    if (cors.max_age) {
        res.set(bhttp::field::access_control_max_age, std::to_string(*cors.max_age));
    }
    return res;
}

void add_cors_headers(request const& req, response& res, cors_options const& cors) {
    if (cors.enabled) {
        add_vary(res, "Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
        if (auto const origin = header(req, bhttp::field::origin); origin && cors.allows(*origin)) {
            res.set(bhttp::field::access_control_allow_origin, *origin);
        }
    }
}

} // namespace kachel::http
