#include "http/purge.hpp"

#include "core/error.hpp"
#include "http/query_params.hpp"
#include "http/response.hpp"
#include "http/webui.hpp"
#include "tiles/tile_cache.hpp"
#include "tiles/tile_ranges.hpp"

#include <boost/beast/http/field.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace kachel::http {

namespace bhttp = boost::beast::http;

namespace {

/// Compares in a time that does not depend on where the texts differ.
bool same_secret(std::string_view given, std::string_view expected) noexcept {
    unsigned char diff = given.size() == expected.size() ? 0 : 1;
    for (std::size_t i = 0; i < given.size(); ++i) {
        diff |=
            static_cast<unsigned char>(given[i] ^ expected[i % std::max<std::size_t>(expected.size(), 1)]);
    }
    return diff == 0 && !expected.empty();
}

/// A zoom parameter: a whole number 0..max_zoom. \throws config_error naming it.
std::optional<std::uint32_t> zoom_param(nlohmann::json const& params, char const* name) {
    auto const it = params.find(name);
    if (it == params.end()) {
        return std::nullopt;
    }
    if (!it->is_number_integer() || it->get<std::int64_t>() < 0 || it->get<std::int64_t>() > max_zoom) {
        throw config_error{fmt::format("{} must be a zoom from 0 to {}", name, max_zoom)};
    }
    return it->get<std::uint32_t>();
}

/// What a purge names, from `bbox`, `minzoom` and `maxzoom` (the sources are set by the caller).
/// \throws config_error for bad ones.
change_event purge_of(std::string_view query) {
    auto const params = query_to_json(query);
    change_event out;
    if (auto const it = params.find("bbox"); it != params.end()) {
        if (!it->is_string()) {
            throw config_error{"bbox must be west,south,east,north in degrees"};
        }
        out.boxes.push_back(tiles::parse_box(it->get<std::string>(), "bbox"));
    }
    out.minzoom = zoom_param(params, "minzoom");
    out.maxzoom = zoom_param(params, "maxzoom");
    if (out.minzoom && out.maxzoom && *out.minzoom > *out.maxzoom) {
        throw config_error{fmt::format("minzoom {} is above maxzoom {}", *out.minzoom, *out.maxzoom)};
    }
    return out;
}

} // namespace

response answer_purge(request const& req, route const& target, tiles::catalog const& catalog,
                      request_context const& ctx) {
    auto const& options = *ctx.options;
    if (!options.purge_endpoint) {
        return text_response(req, bhttp::status::not_found, "Not found");
    }
    if (req.method() != bhttp::verb::delete_) {
        auto res = text_response(req, bhttp::status::method_not_allowed, "The purge route takes DELETE");
        res.set(bhttp::field::allow, "DELETE");
        return res;
    }
    if (options.purge_token) {
        auto const auth = req[bhttp::field::authorization];
        std::string_view const given{auth.data(), auth.size()};
        if (!given.starts_with("Bearer ") || !same_secret(given.substr(7), *options.purge_token)) {
            auto res = text_response(req, bhttp::status::unauthorized,
                                     "The purge route needs the header Authorization: Bearer <purge token>");
            res.set(bhttp::field::www_authenticate, "Bearer realm=\"kachel\"");
            return res;
        }
    } else if (!is_loopback(ctx.remote)) {
        return text_response(
            req, bhttp::status::forbidden,
            "Without a purge token the purge route answers clients on this machine only; set "
            "KACHEL_PURGE_TOKEN or purge_token_file to let others in with a bearer token");
    }
    std::optional<change_event> purged;
    std::string problem;
    try {
        purged = purge_of(target.query);
    } catch (config_error const& e) {
        problem = e.what();
    }
    if (!purged) {
        return text_response(req, bhttp::status::bad_request, problem);
    }
    for (auto const id : target.source_ids) {
        if (catalog.find(id) == nullptr) {
            return text_response(req, bhttp::status::not_found, fmt::format("Source {} does not exist", id));
        }
    }
    tiles::tile_area const area{purged->boxes, 0, purged->minzoom, purged->maxzoom};
    std::size_t dropped = 0;
    for (auto const id : target.source_ids) {
        dropped += ctx.cache != nullptr ? ctx.cache->drop(id, area) : 0;
        purged->sources.emplace_back(id);
    }
    if (ctx.changes != nullptr) {
        ctx.changes->publish(*purged);
    }
    spdlog::info("Purged {} cached tile(s) of {}{}{}", dropped, fmt::join(target.source_ids, ","),
                 target.query.empty() ? "" : "?", target.query);
    auto res = make_response(req, bhttp::status::ok,
                             nlohmann::json{{"sources", purged->sources}, {"dropped", dropped}}.dump(),
                             "application/json");
    res.set(bhttp::field::cache_control, "no-store");
    return res;
}

} // namespace kachel::http
