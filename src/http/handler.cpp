#include "http/handler.hpp"

#include "http/router.hpp"
#include "tiles/tilejson.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/version.hpp>
#include <spdlog/spdlog.h>

#include <atomic>

namespace kachel::http {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

namespace {

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

/// Logs the details of a failed tile and answers with the status, never with the details.
response tile_error_response(request const& req, tiles::tile_result const& result, std::string_view ids,
                             tile_coord coord) {
    auto const status = status_for(result.error);
    auto const rid = next_request_id();
    if (result.error == tiles::tile_errc::unavailable) {
        spdlog::warn("request {}: tile {}/{}/{}/{}: database unavailable: {}", rid, ids, coord.z, coord.x,
                     coord.y, result.detail);
        auto res =
            text_response(req, status, fmt::format("Database unavailable, retry later (request {})", rid));
        res.set(bhttp::field::retry_after, "5");
        return res;
    }
    spdlog::error("request {}: tile {}/{}/{}/{} failed: {}", rid, ids, coord.z, coord.x, coord.y,
                  result.detail);
    return text_response(req, status, fmt::format("Could not produce the tile (request {})", rid));
}

struct scheme_and_host {
    std::string_view scheme = "http";
    std::string_view host;
};

scheme_and_host request_authority(request const& req) {
    scheme_and_host out;
    if (auto const it = req.find("X-Forwarded-Proto"); it != req.end() && !it->value().empty()) {
        out.scheme = it->value();
    }
    if (auto const it = req.find("X-Forwarded-Host"); it != req.end() && !it->value().empty()) {
        out.host = it->value();
    } else if (auto const host = req.find(bhttp::field::host); host != req.end()) {
        out.host = host->value();
    }
    return out;
}

} // namespace

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
    case tiles::tile_errc::internal:
        break;
    }
    return bhttp::status::internal_server_error;
}

asio::awaitable<response> async_handle_request(request const& req, tiles::catalog const& catalog,
                                               request_context const& context) {
    if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) {
        auto res = text_response(req, bhttp::status::method_not_allowed, "Only GET and HEAD are supported");
        res.set(bhttp::field::allow, "GET, HEAD");
        co_return res;
    }
    auto const route = parse_route(req.target());
    switch (route.type) {
    case route::kind::root:
        if (webui_enabled_for(context.webui, context.remote)) {
            if (auto const* page = find_webui_asset("index.html")) {
                auto res = make_response(req, bhttp::status::ok, std::string{page->data}, page->content_type);
                res.set(bhttp::field::cache_control, "no-cache");
                co_return res;
            }
        }
        co_return text_response(req, bhttp::status::ok,
                                "kachel server is running. See /catalog for the available sources.\n");
    case route::kind::ui_asset: {
        auto const* asset =
            webui_enabled_for(context.webui, context.remote) ? find_webui_asset(route.message) : nullptr;
        if (asset == nullptr) {
            co_return text_response(req, bhttp::status::not_found, "Not found");
        }
        auto res = make_response(req, bhttp::status::ok, std::string{asset->data}, asset->content_type);
        res.set(bhttp::field::cache_control, "no-cache");
        co_return res;
    }
    case route::kind::health: {
        auto res = text_response(req, bhttp::status::ok, "OK");
        res.set(bhttp::field::cache_control, "no-cache");
        co_return res;
    }
    case route::kind::catalog:
        co_return make_response(req, bhttp::status::ok, catalog.to_json().dump(), "application/json");
    case route::kind::redirect: {
        auto res = make_response(req, bhttp::status::moved_permanently, {}, {});
        res.set(bhttp::field::location, route.location);
        co_return res;
    }
    case route::kind::not_found:
        co_return text_response(req, bhttp::status::not_found, route.message);
    case route::kind::bad_request:
        co_return text_response(req, bhttp::status::bad_request, route.message);
    case route::kind::tilejson:
    case route::kind::tile:
        break;
    }

    std::vector<tiles::tile_source const*> sources;
    sources.reserve(route.source_ids.size());
    for (auto const& id : route.source_ids) {
        auto const* source = catalog.find(id);
        if (source == nullptr) {
            co_return text_response(req, bhttp::status::not_found,
                                    fmt::format("Source {} does not exist", id));
        }
        if (!sources.empty() && source->content_type() != sources.front()->content_type()) {
            co_return text_response(req, bhttp::status::not_found,
                                    fmt::format("Cannot merge sources with {} with {}",
                                                sources.front()->content_type(), source->content_type()));
        }
        sources.push_back(source);
    }

    if (route.type == route::kind::tilejson) {
        auto const authority = request_authority(req);
        tiles::request_origin const origin{authority.scheme, authority.host, route.path, route.query};
        co_return make_response(req, bhttp::status::ok, tiles::make_tilejson(sources, origin).dump(),
                                "application/json");
    }

    // Composite tiles are the concatenation of the constituents' MVT layers, in URL order.
    std::string body;
    for (auto const* source : sources) {
        auto result = co_await source->async_get_tile(route.coord);
        if (result.error != tiles::tile_errc::none) {
            co_return tile_error_response(
                req, result, route.source_ids.size() == 1 ? source->id() : route.path, route.coord);
        }
        if (body.empty()) {
            body = std::move(result.data);
        } else {
            body += result.data;
        }
    }
    if (body.empty()) {
        co_return make_response(req, bhttp::status::no_content, {}, {});
    }
    co_return make_response(req, bhttp::status::ok, std::move(body), sources.front()->content_type());
}

} // namespace kachel::http
