#include "http/handler.hpp"

#include "core/metrics.hpp"
#include "core/text.hpp"
#include "http/query_params.hpp"
#include "http/router.hpp"
#include "tiles/etag.hpp"
#include "tiles/tilejson.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/container/small_vector.hpp>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <initializer_list>
#include <optional>
#include <span>
#include <variant>

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

/// `parts` joined, in `buffer` when they fit (no allocation: this runs for every cached tile),
/// else in `fallback`.
template <std::size_t N>
std::string_view join_into(std::array<char, N>& buffer, std::string& fallback,
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

/// Strong comparison against an If-None-Match list (`*` matches anything).
bool matches_if_none_match(std::optional<std::string_view> header_value, std::string_view quoted_etag) {
    if (!header_value) {
        return false;
    }
    std::string_view rest = *header_value;
    while (!rest.empty()) {
        auto const comma = rest.find(',');
        auto const item = trim(rest.substr(0, comma));
        rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        if (item == "*" || item == quoted_etag) {
            return true;
        }
    }
    return false;
}

/// A 200 with an ETag: 304 when If-None-Match matches, 406 when no encoding is acceptable,
/// otherwise the body encoded as negotiated (Vary: Accept-Encoding when compressible).
response content_response(request const& req, std::string body, std::string_view content_type,
                          std::string const& etag, bool compressible, encoding preferred) {
    auto const quoted = "\"" + etag + "\"";
    if (matches_if_none_match(header(req, bhttp::field::if_none_match), quoted)) {
        auto res = make_response(req, bhttp::status::not_modified, {}, {});
        res.set(bhttp::field::etag, quoted);
        if (compressible) {
            add_vary(res, "Accept-Encoding");
        }
        return res;
    }
    auto const chosen = negotiate_encoding(header(req, bhttp::field::accept_encoding), encoding::identity,
                                           compressible, preferred);
    if (!chosen) {
        return text_response(req, bhttp::status::not_acceptable, "No supported encoding found");
    }
    if (*chosen != encoding::identity) {
        body = compress(body, *chosen);
    }
    auto res = make_response(req, bhttp::status::ok, std::move(body), content_type);
    res.set(bhttp::field::etag, quoted);
    if (*chosen != encoding::identity) {
        res.set(bhttp::field::content_encoding, encoding_token(*chosen));
    }
    if (compressible) {
        add_vary(res, "Accept-Encoding");
    }
    return res;
}

bool is_compressible(std::string_view content_type) noexcept {
    return content_type == "application/x-protobuf" || content_type.starts_with("application/json");
}

/// Logs the details of a failed tile and answers with the status, never with the details.
response tile_error_response(request const& req, tiles::fetched_tile const& result, std::string_view ids,
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
    if (result.error == tiles::tile_errc::timeout) {
        spdlog::warn("request {}: tile {}/{}/{}/{}: {}", rid, ids, coord.z, coord.x, coord.y, result.detail);
        return text_response(
            req, status,
            fmt::format("The tile took too long to produce and was cancelled (request {})", rid));
    }
    spdlog::error("request {}: tile {}/{}/{}/{} failed: {}", rid, ids, coord.z, coord.x, coord.y,
                  result.detail);
    return text_response(req, status, fmt::format("Could not produce the tile (request {})", rid));
}

struct scheme_and_host {
    std::string scheme = "http";
    std::string host;
};

/// The value of `name` in a `Forwarded` header (RFC 7239), first element only, unquoted.
std::optional<std::string> forwarded_param(std::string_view header_value, std::string_view name) {
    auto const element = header_value.substr(0, header_value.find(','));
    std::string_view rest = element;
    while (!rest.empty()) {
        auto const semi = rest.find(';');
        auto const pair = trim(rest.substr(0, semi));
        rest = semi == std::string_view::npos ? std::string_view{} : rest.substr(semi + 1);
        auto const eq = pair.find('=');
        if (eq == std::string_view::npos) {
            continue;
        }
        if (!iequals(trim(pair.substr(0, eq)), name)) {
            continue;
        }
        auto value = trim(pair.substr(eq + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
            value = value.substr(1, value.size() - 2);
        }
        return std::string{value};
    }
    return std::nullopt;
}

/// Scheme and host of the URL the client used: `Forwarded`, then `X-Forwarded-Proto` /
/// `X-Forwarded-Host`, then `Host`.
scheme_and_host request_authority(request const& req) {
    scheme_and_host out;
    std::optional<std::string> proto;
    std::optional<std::string> host;
    if (auto const fwd = header(req, bhttp::field::forwarded)) {
        proto = forwarded_param(*fwd, "proto");
        host = forwarded_param(*fwd, "host");
    }
    if (auto const it = req.find("X-Forwarded-Proto"); !proto && it != req.end() && !it->value().empty()) {
        proto = std::string{it->value()};
    }
    if (auto const it = req.find("X-Forwarded-Host"); !host && it != req.end() && !it->value().empty()) {
        host = std::string{it->value()};
    }
    if (!host) {
        if (auto const h = header(req, bhttp::field::host)) {
            host = std::string{*h};
        }
    }
    if (proto) {
        out.scheme = std::move(*proto);
    }
    out.host = host.value_or("");
    return out;
}

/// The path component of a URL or path (`http://h/a/b?q` -> `/a/b`).
std::string_view url_path(std::string_view url) {
    if (auto const scheme = url.find("://"); scheme != std::string_view::npos) {
        auto const slash = url.find('/', scheme + 3);
        url = slash == std::string_view::npos ? std::string_view{"/"} : url.substr(slash);
    }
    return url.substr(0, url.find_first_of("?#"));
}

/// The TileJSON path clients should use (martin-compat 1.2 with decision D10): base_path or
/// route_prefix + ids; else the path of X-Rewrite-URL; else X-Forwarded-Prefix + the path;
/// else the request's path.
std::string tilejson_path(request const& req, http_options const& options, std::string_view path) {
    if (options.base_path) {
        return *options.base_path + std::string{path};
    }
    if (!options.route_prefix.empty()) {
        return options.route_prefix + std::string{path};
    }
    if (auto const it = req.find("X-Rewrite-URL"); it != req.end() && !it->value().empty()) {
        auto p = url_path(std::string_view{it->value().data(), it->value().size()});
        if (!p.empty() && p.front() == '/') {
            while (p.size() > 1 && p.back() == '/') {
                p.remove_suffix(1);
            }
            return std::string{p};
        }
    }
    if (auto const it = req.find("X-Forwarded-Prefix"); it != req.end() && !it->value().empty()) {
        if (auto prefix =
                normalize_prefix(url_path(std::string_view{it->value().data(), it->value().size()}))) {
            return *prefix + std::string{path};
        }
    }
    return std::string{path};
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

bool is_vector_format(std::string_view content_type) noexcept {
    return content_type == "application/x-protobuf" || content_type == "application/vnd.maplibre-tile";
}

/// Completes when the peer closes the connection (or it fails); never when the peer merely sends
/// more data (a pipelined request).
asio::awaitable<void> async_wait_disconnect(asio::ip::tcp::socket& socket) {
    auto [ec] =
        co_await socket.async_wait(asio::ip::tcp::socket::wait_read, asio::as_tuple(asio::use_awaitable));
    if (!ec) {
        std::array<char, 1> probe{};
        ssize_t const n = ::recv(socket.native_handle(), probe.data(), probe.size(), MSG_PEEK | MSG_DONTWAIT);
        if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))) {
            // Data, not a close: wait until the handler finishes (which cancels this wait).
            asio::steady_timer forever{socket.get_executor(), asio::steady_timer::time_point::max()};
            co_await forever.async_wait(asio::as_tuple(asio::use_awaitable));
        }
    }
}

/// Where a tile request's bytes come from: each source's tile through the cache when it covers
/// the zoom, else straight from the source.
struct tile_fetch {
    tile_coord coord;
    std::string const& query_json; ///< for the sources (`{}` when none takes a query)
    std::string_view raw_query;    ///< the cache key part for sources that take a query
    tiles::tile_cache* cache;      ///< null: no cache
    bool any_miss = false;
    bool any_hit = false;

    /// True when `source`'s tile goes through the cache: the cache is on, covers the zoom, and
    /// the source allows it.
    [[nodiscard]] bool cached(tiles::tile_source const& source) const noexcept {
        return cache != nullptr && cache->covers(coord.z) && source.cache_policy().allows(coord.z);
    }

    [[nodiscard]] tiles::tile_key_view key_view(tiles::tile_source const& source, encoding e) const noexcept {
        return tiles::tile_key_view{source.id(), coord,
                                    source.accepts_query() ? raw_query : std::string_view{}, e};
    }

    [[nodiscard]] tiles::tile_key key(tiles::tile_source const& source, encoding e) const {
        auto const view = key_view(source, e);
        return tiles::tile_key{std::string{view.source}, coord, std::string{view.query}, view.encoding};
    }

    /// One source's uncompressed tile.
    asio::awaitable<tiles::fetched_tile> get(tiles::tile_source const* source) {
        auto compute = [source, this]() -> asio::awaitable<tiles::fetched_tile> {
            auto result = co_await source->async_get_tile(coord, query_json);
            if (result.error != tiles::tile_errc::none) {
                co_return tiles::fetched_tile{nullptr, result.error, std::move(result.detail)};
            }
            auto bytes = std::make_shared<tiles::tile_bytes>();
            bytes->etag = result.etag ? std::move(*result.etag) : tiles::etag_value(result.data);
            bytes->data = std::move(result.data);
            co_return tiles::fetched_tile{std::move(bytes), tiles::tile_errc::none, {}};
        };
        if (!cached(*source)) {
            co_return co_await compute();
        }
        bool hit = false;
        auto out = co_await cache->get_or_compute(key(*source, encoding::identity), compute, &hit);
        (hit ? any_hit : any_miss) = true;
        global_metrics().count_cache_lookup(coord.z, hit);
        co_return out;
    }

    /// A source's tile compressed with `e`, made once per cache entry.
    asio::awaitable<std::shared_ptr<tiles::tile_bytes const>>
    encoded(tiles::tile_source const& source, std::shared_ptr<tiles::tile_bytes const> plain, encoding e) {
        auto compute = [plain, e]() -> asio::awaitable<tiles::fetched_tile> {
            auto bytes = std::make_shared<tiles::tile_bytes>();
            bytes->data = compress(plain->data, e);
            bytes->etag = plain->etag;
            co_return tiles::fetched_tile{std::move(bytes), tiles::tile_errc::none, {}};
        };
        if (!cached(source)) {
            co_return (co_await compute()).bytes;
        }
        co_return (co_await cache->get_or_compute(key(source, e), compute)).bytes;
    }

    /// Every constituent's tile at once; results in the sources' order.
    asio::awaitable<std::vector<tiles::fetched_tile>>
    get_all(std::span<tiles::tile_source const* const> sources) {
        std::vector<tiles::fetched_tile> results;
        if (sources.size() == 1) {
            results.push_back(co_await get(sources.front()));
            co_return results;
        }
        auto const executor = co_await asio::this_coro::executor;
        using operation = decltype(asio::co_spawn(executor, get(sources.front()), asio::deferred));
        std::vector<operation> operations;
        operations.reserve(sources.size());
        for (auto const* source : sources) {
            operations.push_back(asio::co_spawn(executor, get(source), asio::deferred));
        }
        auto [order, exceptions, values] =
            co_await asio::experimental::make_parallel_group(std::move(operations))
                .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
        for (std::size_t i = 0; i < values.size(); ++i) {
            if (exceptions[i]) {
                std::rethrow_exception(exceptions[i]); // get() does not throw; a bug if it did
            }
            results.push_back(std::move(values[i]));
        }
        co_return results;
    }
};

/// A single-source tile from shared bytes (already encoded with `used`): 304 on a matching
/// If-None-Match, 204 when empty, else the bytes without a copy.
response shared_tile_response(request const& req, std::shared_ptr<tiles::tile_bytes const> bytes,
                              std::string_view content_type, encoding used, bool compressible) {
    if (bytes->data.empty()) {
        return make_response(req, bhttp::status::no_content, {}, {});
    }
    std::array<char, 128> buffer{};
    std::string fallback;
    auto const quoted = join_into(buffer, fallback, {"\"", bytes->etag, "\""});
    bool const not_modified = matches_if_none_match(header(req, bhttp::field::if_none_match), quoted);
    auto res = make_response(req, not_modified ? bhttp::status::not_modified : bhttp::status::ok, {},
                             not_modified ? std::string_view{} : content_type);
    res.set(bhttp::field::etag, quoted);
    if (!not_modified) {
        if (used != encoding::identity) {
            res.set(bhttp::field::content_encoding, encoding_token(used));
        }
        res.body().share(std::move(bytes));
        res.prepare_payload();
    }
    if (compressible) {
        add_vary(res, "Accept-Encoding");
    }
    return res;
}

/// CORS preflight (OPTIONS with Origin and Access-Control-Request-Method), or nullopt if the
/// request is not one.
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

/// Headers every response gets: CORS, the default Cache-Control.
void finalize(request const& req, response& res, http_options const& options) {
    if (options.cors.enabled) {
        add_vary(res, "Origin, Access-Control-Request-Method, Access-Control-Request-Headers");
        if (auto const origin = header(req, bhttp::field::origin); origin && options.cors.allows(*origin)) {
            res.set(bhttp::field::access_control_allow_origin, *origin);
        }
    }
    if (options.cache_control && res.find(bhttp::field::cache_control) == res.end()) {
        res.set(bhttp::field::cache_control, *options.cache_control);
    }
}

/// The part of answering that needs no waiting: every route but `/_/ready`, tiles the cache
/// holds, and every refusal. Returns the answer, or what remains to be awaited.
std::variant<response, deferred_answer> answer_at_once(request const& req, tiles::catalog const& catalog,
                                                       request_context& ctx) {
    auto const& options = *ctx.options;
    auto route =
        parse_route(std::string_view{req.target().data(), req.target().size()}, options.route_prefix);
    if (auto res = preflight(req, options.cors)) {
        return std::move(*res);
    }
    if (req.method() != bhttp::verb::get && req.method() != bhttp::verb::head) {
        auto res = text_response(req, bhttp::status::method_not_allowed, "Only GET and HEAD are supported");
        res.set(bhttp::field::allow, "GET, HEAD");
        return res;
    }
    switch (route.type) {
    case route::kind::root:
        ctx.endpoint = "/";
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
        ctx.endpoint = "/_/ui/{file}";
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
        ctx.endpoint = "/health";
        auto res = text_response(req, bhttp::status::ok, "OK");
        res.set(bhttp::field::cache_control, "no-cache");
        return res;
    }
    case route::kind::ready:
        ctx.endpoint = "/_/ready";
        return deferred_answer{std::move(route), {}, {}, {}, {}, false};
    case route::kind::metrics: {
        ctx.endpoint = "/_/metrics";
        auto res = make_response(req, bhttp::status::ok, global_metrics().render(),
                                 "text/plain; version=0.0.4; charset=utf-8");
        res.set(bhttp::field::cache_control, "no-cache");
        return res;
    }
    case route::kind::catalog: {
        ctx.endpoint = "/catalog";
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
    case route::kind::tilejson:
        ctx.endpoint = "/{source_ids}";
        break;
    case route::kind::tile:
        ctx.endpoint = "/{source_ids}/{z}/{x}/{y}";
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
        if (auto bytes = ctx.cache->find(fetch.key_view(*serving.front(), *chosen))) {
            ctx.cache_status = "hit";
            global_metrics().count_cache_lookup(route.coord.z, true);
            return shared_tile_response(req, std::move(bytes), content_type, *chosen, compressible);
        }
    }
    return deferred_answer{std::move(route),      serving, content_type,
                           std::move(query_json), chosen,  compressible};
}

/// The part that waits: the readiness checks, or the tiles from the sources (through the cache).
asio::awaitable<response> answer_later(request const& req, request_context& ctx, deferred_answer work) {
    auto const& route = work.target;
    if (route.type == route::kind::ready) {
        std::vector<std::string> problems;
        if (ctx.ready != nullptr) {
            problems = co_await ctx.ready->async_problems();
        }
        auto res = problems.empty() ? text_response(req, bhttp::status::ok, "OK")
                                    : text_response(req, bhttp::status::service_unavailable,
                                                    fmt::format("{}", fmt::join(problems, "\n")));
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
    tile_fetch fetch{route.coord, work.query_json, route.query, ctx.cache};
    bool const single = serving.size() == 1 && route.source_ids.size() == 1;
    std::vector<tiles::fetched_tile> results;
    if (ctx.client != nullptr) {
        // A client that disconnects while its tile is being made cancels the work (and the
        // database statements, see pg::pool::release).
        auto outcome = co_await (fetch.get_all(serving) || async_wait_disconnect(*ctx.client));
        if (outcome.index() == 1) {
            ctx.client_gone = true;
            co_return response{};
        }
        results = std::move(std::get<0>(outcome));
    } else {
        results = co_await fetch.get_all(serving);
    }
    if (fetch.any_miss || fetch.any_hit) {
        ctx.cache_status = fetch.any_miss ? "miss" : "hit";
    }
    for (std::size_t i = 0; i < serving.size(); ++i) {
        if (results[i].error != tiles::tile_errc::none) {
            co_return tile_error_response(
                req, results[i], route.source_ids.size() == 1 ? serving[i]->id() : route.path, route.coord);
        }
    }
    if (single && chosen) {
        auto bytes = std::move(results.front().bytes);
        if (*chosen != encoding::identity && !bytes->data.empty()) {
            bytes = co_await fetch.encoded(*serving.front(), std::move(bytes), *chosen);
        }
        co_return shared_tile_response(req, std::move(bytes), content_type, *chosen, compressible);
    }

    // Composite tiles are the concatenation of the constituents' MVT layers, in URL order; the
    // ETag is the one non-empty constituent's, or all constituents' ETags joined (Martin's rule).
    std::string body;
    std::string joined_etags;
    std::string const* single_etag = nullptr;
    std::size_t non_empty = 0;
    for (auto const& result : results) {
        joined_etags += result.bytes->etag;
        if (!result.bytes->data.empty()) {
            ++non_empty;
            single_etag = &result.bytes->etag;
            body += result.bytes->data;
        }
    }
    if (non_empty == 0) {
        co_return make_response(req, bhttp::status::no_content, {}, {});
    }
    if (non_empty > 1 && !is_vector_format(content_type)) {
        co_return text_response(
            req, bhttp::status::bad_request,
            fmt::format("Cannot merge non-vector-tile formats: {} tiles from several sources "
                        "cannot be combined; request them one by one",
                        content_type));
    }
    co_return content_response(req, std::move(body), content_type,
                               non_empty == 1 ? *single_etag : joined_etags, compressible,
                               ctx.options->preferred_encoding);
}

/// A 500 with a request id for an exception (a bug, or a resource failure); the details go to the log.
response internal_error(request const& req, std::string_view failure) {
    auto const rid = next_request_id();
    spdlog::error("request {}: {} {} failed: {}", rid, req.method_string(), req.target(), failure);
    return text_response(req, bhttp::status::internal_server_error,
                         fmt::format("Internal error (request {})", rid));
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
    case tiles::tile_errc::timeout:
        return bhttp::status::gateway_timeout;
    case tiles::tile_errc::internal:
        break;
    }
    return bhttp::status::internal_server_error;
}

std::variant<response, deferred_answer_ptr> handle_request(request const& req, tiles::catalog const& catalog,
                                                           request_context& context) {
    response res;
    try {
        auto step = answer_at_once(req, catalog, context);
        if (auto* work = std::get_if<deferred_answer>(&step)) {
            return deferred_answer_ptr{new deferred_answer{std::move(*work)}};
        }
        res = std::move(std::get<response>(step));
    } catch (std::exception const& e) {
        res = internal_error(req, e.what());
    }
    finalize(req, res, *context.options);
    return res;
}

asio::awaitable<response> async_finish_request(request const& req, request_context& context,
                                               deferred_answer_ptr work) {
    response res;
    std::string failure;
    try {
        res = co_await answer_later(req, context, std::move(*work));
    } catch (std::exception const& e) {
        failure = e.what();
    }
    if (!failure.empty()) {
        res = internal_error(req, failure);
    }
    finalize(req, res, *context.options);
    co_return res;
}

} // namespace kachel::http
