#include "http/handler.hpp"

#include "core/metrics.hpp"
#include "http/conditional.hpp"
#include "http/cors.hpp"
#include "http/disconnect_watch.hpp"
#include "http/public_url.hpp"
#include "http/purge.hpp"
#include "http/query_params.hpp"
#include "http/router.hpp"
#include "http/tile_errors.hpp"
#include "http/tile_fetch.hpp"
#include "tiles/etag.hpp"
#include "tiles/tile_format.hpp"
#include "tiles/tilejson.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/container/small_vector.hpp>
#include <fmt/ranges.h>

#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace kachel::http {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;
using namespace boost::asio::experimental::awaitable_operators;

/// What is left once answer_at_once found that the answer needs waiting: the readiness checks,
/// or a tile that the cache does not hold (every field is set for tiles).
struct deferred_answer {
    route target;
    boost::container::small_vector<tiles::tile_source const*, 4> serving;
    std::string_view content_type;
    std::string query_json;
    std::optional<encoding> chosen;
    bool compressible = false;
};

void deferred_answer_deleter::operator()(deferred_answer* work) const noexcept {
    delete work;
}

namespace {

/// Server-Timing of a tile made now: the sources' time (`db`: queries, archive reads) and the
/// compression's (`encode`), in milliseconds.
response with_timing(response res, tile_fetch const& fetch) {
    auto const ms = [](std::chrono::microseconds t) { return static_cast<double>(t.count()) / 1000.0; };
    res.set("Server-Timing", fmt::format("db;dur={:.1f}, encode;dur={:.1f}", ms(fetch.source_time()),
                                         ms(fetch.encode_time())));
    return res;
}

/// Server-Timing of a tile the cache held as sent, with the time its sources took to make it.
response cache_hit(response res, float made_ms) {
    std::array<char, 64> text{};
    auto* const end =
        fmt::format_to_n(text.data(), text.size(), "cache;desc=hit, made;dur={:.1f}", made_ms).out;
    res.set("Server-Timing", std::string_view{text.data(), static_cast<std::size_t>(end - text.data())});
    return res;
}

/// "a supports zoom 3-5" and its variants, for the 404 when no source serves a zoom.
std::string zoom_support(tiles::tile_source const& source) {
    auto const z = source.zooms();
    if (z.min && z.max) {
        return fmt::format("{} supports zoom {}-{}", source.id(), *z.min, *z.max);
    }
    if (z.min) {
        return fmt::format("{} supports zoom {} and above", source.id(), *z.min);
    }
    if (z.max) {
        return fmt::format("{} supports zoom up to {}", source.id(), *z.max);
    }
    return source.id();
}

/// Headers every response gets: CORS, the default Cache-Control.
void finalize(request const& req, response& res, http_options const& options) {
    add_cors_headers(req, res, options.cors);
    if (options.cache_control && res.find(bhttp::field::cache_control) == res.end()) {
        res.set(bhttp::field::cache_control, *options.cache_control);
    }
}

/// The part of answering that needs no waiting: every route but `/_/ready`, tiles the cache
/// holds, and every refusal. Returns the answer, or what remains to be awaited.
std::variant<response, deferred_answer> answer_at_once(request const& req, tiles::catalog const& catalog,
                                                       request_context const& ctx, request_report& report) {
    auto const& options = *ctx.options;
    auto route =
        parse_route(std::string_view{req.target().data(), req.target().size()}, options.route_prefix);
    if (auto res = preflight(req, options.cors)) {
        return std::move(*res);
    }
    if (route.type == route::kind::purge) {
        report.endpoint = "/cache/{source_ids}";
        return answer_purge(req, route, catalog, ctx);
    }
    if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) {
        auto res = text_response(req, bhttp::status::method_not_allowed, "Only GET and HEAD are supported");
        res.set(bhttp::field::allow, "GET, HEAD");
        return res;
    }
    switch (route.type) {
    case route::kind::root:
        report.endpoint = "/";
        if (webui_enabled_for(options.webui, ctx.remote)) {
            if (auto const* page = find_webui_asset("index.html")) {
                auto res = make_response(req, bhttp::status::ok, std::string{page->data}, page->content_type);
                res.set(bhttp::field::cache_control, "no-cache");
                return res;
            }
        }
        return text_response(req, bhttp::status::ok,
                             "kachel server is running. See /catalog for the available sources.\n");
    case route::kind::ui_asset: {
        report.endpoint = "/_/ui/{file}";
        auto const* asset =
            webui_enabled_for(options.webui, ctx.remote) ? find_webui_asset(route.asset) : nullptr;
        if (asset == nullptr) {
            return text_response(req, bhttp::status::not_found, "Not found");
        }
        auto res = make_response(req, bhttp::status::ok, std::string{asset->data}, asset->content_type);
        res.set(bhttp::field::cache_control, "no-cache");
        return res;
    }
    case route::kind::health: {
        report.endpoint = "/health";
        auto res = text_response(req, bhttp::status::ok, "OK");
        res.set(bhttp::field::cache_control, "no-cache");
        return res;
    }
    case route::kind::ready:
        report.endpoint = "/_/ready";
        return deferred_answer{std::move(route), {}, {}, {}, {}, false};
    case route::kind::metrics: {
        report.endpoint = "/_/metrics";
        auto res = make_response(req, bhttp::status::ok, global_metrics().render(),
                                 "text/plain; version=0.0.4; charset=utf-8");
        res.set(bhttp::field::cache_control, "no-cache");
        return res;
    }
    case route::kind::changes: {
        report.endpoint = "/_/changes";
        if (ctx.changes == nullptr) {
            return text_response(req, bhttp::status::not_found, "Not found");
        }
        // The head only: the server writes the events after it, until the client or the server
        // goes away.
        auto res = make_response(req, bhttp::status::ok, {}, "text/event-stream");
        res.set(bhttp::field::cache_control, "no-store");
        res.set("X-Accel-Buffering", "no"); // nginx: pass each event on at once
        report.event_stream = true;
        return res;
    }
    case route::kind::catalog: {
        report.endpoint = "/catalog";
        auto body = catalog.to_json().dump();
        auto const etag = tiles::etag_value(body);
        return content_response(req, std::move(body), "application/json", etag, true,
                                options.preferred_encoding);
    }
    case route::kind::redirect: {
        auto res = make_response(req, bhttp::status::moved_permanently, {}, {});
        res.set(bhttp::field::location, route.location);
        return res;
    }
    case route::kind::not_found:
        return text_response(req, bhttp::status::not_found, route.message);
    case route::kind::bad_request:
        return text_response(req, bhttp::status::bad_request, route.message);
    case route::kind::purge: // answered above
        break;
    case route::kind::tilejson:
        report.endpoint = "/{source_ids}";
        break;
    case route::kind::tile:
        report.endpoint = "/{source_ids}/{z}/{x}/{y}";
        break;
    }

    accepted_formats accepted;
    if (route.type == route::kind::tile) {
        accepted = parse_accept(header(req, bhttp::field::accept));
        if (!accepted.any && accepted.types.empty()) {
            return text_response(req, bhttp::status::not_acceptable,
                                 "Accept header does not contain any supported tile format");
        }
    }
    // Most requests name one source: these lists live in the coroutine's frame then.
    boost::container::small_vector<tiles::tile_source const*, 4> sources;
    for (auto const& id : route.source_ids) {
        auto const* source = catalog.find(id);
        if (source == nullptr) {
            return text_response(req, bhttp::status::not_found, fmt::format("Source {} does not exist", id));
        }
        if (!sources.empty() && source->content_type() != sources.front()->content_type()) {
            return text_response(req, bhttp::status::not_found,
                                 fmt::format("Cannot merge sources with {} with {}",
                                             sources.front()->content_type(), source->content_type()));
        }
        sources.push_back(source);
    }
    auto const content_type = sources.front()->content_type();

    if (route.type == route::kind::tilejson) {
        auto const authority = request_authority(req);
        auto const path = tilejson_path(req, options, route.path);
        tiles::request_origin const origin{authority.scheme, authority.host, path, route.query};
        auto body = tiles::make_tilejson(sources, origin).dump();
        auto const etag = tiles::etag_value(body);
        return content_response(req, std::move(body), "application/json", etag, true,
                                options.preferred_encoding);
    }
    if (!accepted.allows(content_type)) {
        return text_response(
            req, bhttp::status::not_acceptable,
            fmt::format("Source produces {}, which does not match the Accept header", content_type));
    }

    // Sources whose zoom range excludes z drop out of a composite; none left is a 404.
    boost::container::small_vector<tiles::tile_source const*, 4> serving;
    bool any_query = false;
    for (auto const* source : sources) {
        if (source->zooms().contains(route.coord.z)) {
            serving.push_back(source);
            any_query = any_query || source->accepts_query();
        }
    }
    if (serving.empty()) {
        std::vector<std::string> support;
        for (auto const* source : sources) {
            support.push_back(zoom_support(*source));
        }
        return text_response(req, bhttp::status::not_found,
                             fmt::format("Zoom {} is outside the supported range: {}", route.coord.z,
                                         fmt::join(support, ", ")));
    }
    std::string query_json;
    if (any_query) {
        auto const query = query_to_json(route.query);
        if (contains_nul(query)) {
            return text_response(req, bhttp::status::bad_request,
                                 "The query string holds a NUL character (%00), which PostgreSQL's "
                                 "JSON cannot take; remove it from the URL");
        }
        query_json = query.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
    bool const compressible = is_compressible(content_type);
    auto const chosen = negotiate_encoding(header(req, bhttp::field::accept_encoding), encoding::identity,
                                           compressible, options.preferred_encoding);
    tile_fetch fetch{route.coord, query_json, route.query, ctx.cache};
    if (chosen && serving.size() == 1 && route.source_ids.size() == 1 && fetch.cached(*serving.front())) {
        // The fast path: the encoded tile straight from the cache.
        if (auto bytes = ctx.cache->find(fetch.key_view(*serving.front(), *chosen),
                                         serving.front()->cache_policy().idle_timeout)) {
            report.cache_status = "hit";
            global_metrics().count_cache_lookup(route.coord.z, true);
            auto const made = bytes->made_ms;
            return cache_hit(shared_tile_response(req, std::move(bytes), content_type, *chosen, compressible),
                             made);
        }
    }
    if (chosen && route.source_ids.size() > 1 && tiles::is_vector_format(content_type) &&
        fetch.cached(serving)) {
        // A composite is cached like a single tile, encoded: a hit costs what a single one does.
        auto const name = tile_fetch::composite_name(serving);
        if (auto bytes = ctx.cache->find(fetch.composite_key_view(name, serving, *chosen))) {
            report.cache_status = "hit";
            global_metrics().count_cache_lookup(route.coord.z, true);
            auto const made = bytes->made_ms;
            return cache_hit(shared_tile_response(req, std::move(bytes), content_type, *chosen, compressible),
                             made);
        }
    }
    return deferred_answer{std::move(route),      serving, content_type,
                           std::move(query_json), chosen,  compressible};
}

/// A vector composite: its layers concatenated, through the cache as one tile, encoded once.
asio::awaitable<response> answer_composite(request const& req, request_context const& ctx,
                                           deferred_answer const& work, tile_fetch& fetch,
                                           request_report& report) {
    auto const& route = work.target;
    std::span<tiles::tile_source const* const> const serving{work.serving.data(), work.serving.size()};
    auto const name = tile_fetch::composite_name(serving);
    tiles::fetched_tile result;
    if (ctx.client != nullptr) {
        auto outcome = co_await (fetch.get_composite(serving, name) || async_wait_disconnect(*ctx.client));
        if (outcome.index() == 1) {
            report.client_gone = true;
            co_return response{};
        }
        result = std::move(std::get<0>(outcome));
    } else {
        result = co_await fetch.get_composite(serving, name);
    }
    if (fetch.cache_status() != "-") {
        report.cache_status = fetch.cache_status();
    }
    if (result.error != tiles::tile_errc::none) {
        co_return tile_error_response(req, result, route.path, route.coord);
    }
    auto bytes = std::move(result.bytes);
    if (*work.chosen != encoding::identity && !bytes->empty()) {
        bytes = co_await fetch.encoded_composite(serving, name, std::move(bytes), *work.chosen);
    }
    co_return with_timing(
        shared_tile_response(req, std::move(bytes), work.content_type, *work.chosen, work.compressible),
        fetch);
}

/// The part that waits: the readiness checks, or the tiles from the sources (through the cache).
asio::awaitable<response> answer_later(request const& req, request_context const& ctx, deferred_answer work,
                                       request_report& report) {
    auto const& route = work.target;
    if (route.type == route::kind::ready) {
        std::vector<std::string> problems;
        std::vector<std::string> details;
        if (ctx.ready != nullptr) {
            problems = co_await ctx.ready->async_problems();
            details = ctx.ready->details();
        }
        std::string body =
            problems.empty() ? std::string{"OK"} : fmt::format("{}", fmt::join(problems, "\n"));
        for (auto const& line : details) {
            body += '\n';
            body += line;
        }
        auto res = text_response(
            req, problems.empty() ? bhttp::status::ok : bhttp::status::service_unavailable, body);
        res.set(bhttp::field::cache_control, "no-cache");
        if (!problems.empty()) {
            res.set(bhttp::field::retry_after, "5");
        }
        co_return res;
    }
    auto const& serving = work.serving;
    auto const content_type = work.content_type;
    auto const& chosen = work.chosen;
    bool const compressible = work.compressible;
    tile_fetch fetch{route.coord, work.query_json, route.query,
                     ctx.cache,   ctx.blocking,    ctx.options->tile_size_warning};
    bool const single = serving.size() == 1 && route.source_ids.size() == 1;
    if (!single && chosen && tiles::is_vector_format(content_type)) {
        co_return co_await answer_composite(req, ctx, work, fetch, report);
    }
    std::vector<tiles::fetched_tile> results;
    if (ctx.client != nullptr) {
        // A client that disconnects while its tile is being made cancels the work (and the
        // database statements, see pg::pool::release).
        auto outcome = co_await (fetch.get_all(serving) || async_wait_disconnect(*ctx.client));
        if (outcome.index() == 1) {
            report.client_gone = true;
            co_return response{};
        }
        results = std::move(std::get<0>(outcome));
    } else {
        results = co_await fetch.get_all(serving);
    }
    if (fetch.cache_status() != "-") {
        report.cache_status = fetch.cache_status();
    }
    for (std::size_t i = 0; i < serving.size(); ++i) {
        if (results[i].error != tiles::tile_errc::none) {
            co_return tile_error_response(
                req, results[i], route.source_ids.size() == 1 ? serving[i]->id() : route.path, route.coord);
        }
    }
    if (single && chosen) {
        auto bytes = std::move(results.front().bytes);
        if (*chosen != encoding::identity && !bytes->empty()) {
            bytes = co_await fetch.encoded(*serving.front(), std::move(bytes), *chosen);
        }
        co_return with_timing(
            shared_tile_response(req, std::move(bytes), content_type, *chosen, compressible), fetch);
    }

    // Composite tiles are the concatenation of the constituents' MVT layers, in URL order; the
    // ETag is the one non-empty constituent's, or all constituents' ETags joined (Martin's rule).
    std::string body;
    std::string joined_etags;
    std::string const* single_etag = nullptr;
    std::size_t non_empty = 0;
    for (auto const& result : results) {
        joined_etags += result.bytes->etag;
        if (!result.bytes->empty()) {
            ++non_empty;
            single_etag = &result.bytes->etag;
            result.bytes->append_to(body);
        }
    }
    if (non_empty == 0) {
        co_return make_response(req, bhttp::status::no_content, {}, {});
    }
    if (non_empty > 1 && !tiles::is_vector_format(content_type)) {
        co_return text_response(
            req, bhttp::status::bad_request,
            fmt::format("Cannot merge non-vector-tile formats: {} tiles from several sources "
                        "cannot be combined; request them one by one",
                        content_type));
    }
    co_return with_timing(content_response(req, std::move(body), content_type,
                                           non_empty == 1 ? *single_etag : joined_etags, compressible,
                                           ctx.options->preferred_encoding),
                          fetch);
}

} // namespace

first_answer handle_request(request const& req, tiles::catalog const& catalog,
                            request_context const& context) {
    first_answer out;
    response res;
    try {
        auto step = answer_at_once(req, catalog, context, out.report);
        if (auto* work = std::get_if<deferred_answer>(&step)) {
            out.answer = deferred_answer_ptr{new deferred_answer{std::move(*work)}};
            return out;
        }
        res = std::move(std::get<response>(step));
    } catch (std::exception const& e) {
        res = internal_error(req, e.what());
    }
    finalize(req, res, *context.options);
    out.answer = std::move(res);
    return out;
}

asio::awaitable<final_answer> async_finish_request(request const& req, request_context const& context,
                                                   deferred_answer_ptr work, request_report report) {
    final_answer out{{}, report};
    std::string failure;
    try {
        out.res = co_await answer_later(req, context, std::move(*work), out.report);
    } catch (std::exception const& e) {
        failure = e.what();
    }
    if (!failure.empty()) {
        out.res = internal_error(req, failure);
    }
    finalize(req, out.res, *context.options);
    co_return out;
}

} // namespace kachel::http
