#include "tiles/tilejson.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <string>
#include <vector>

namespace kachel::tiles {

namespace {

std::string tiles_url(request_origin const& origin) {
    std::string url = fmt::format("{}://{}{}/{{z}}/{{x}}/{{y}}", origin.scheme, origin.host, origin.path);
    if (!origin.query.empty()) {
        url += '?';
        url += origin.query;
    }
    return url;
}

/// Appends `value` to `out` unless already present.
void add_distinct(std::vector<std::string>& out, nlohmann::json const& doc, char const* key) {
    auto const it = doc.find(key);
    if (it == doc.end() || !it->is_string()) {
        return;
    }
    auto const& value = it->get_ref<std::string const&>();
    if (std::find(out.begin(), out.end(), value) == out.end()) {
        out.push_back(value);
    }
}

std::string join(std::vector<std::string> const& parts, std::string_view sep) {
    std::string out;
    for (auto const& p : parts) {
        if (!out.empty()) {
            out += sep;
        }
        out += p;
    }
    return out;
}

/// Composite TileJSON: layers concatenated, bounds united, zooms widened, texts joined.
nlohmann::json merge(std::span<tile_source const* const> sources) {
    nlohmann::json out{{"tilejson", "3.0.0"}};
    auto layers = nlohmann::json::array();
    std::vector<std::string> names;
    std::vector<std::string> descriptions;
    std::vector<std::string> attributions;
    std::optional<std::array<double, 4>> bounds;
    constexpr double unlimited = -1;
    std::optional<double> minzoom;
    std::optional<double> maxzoom;
    for (auto const* source : sources) {
        auto const& tj = source->tilejson();
        if (auto const it = tj.find("vector_layers"); it != tj.end() && it->is_array()) {
            layers.insert(layers.end(), it->begin(), it->end());
        }
        add_distinct(names, tj, "name");
        add_distinct(descriptions, tj, "description");
        add_distinct(attributions, tj, "attribution");
        if (auto const it = tj.find("bounds"); it != tj.end() && it->is_array() && it->size() == 4) {
            std::array<double, 4> b{(*it)[0].get<double>(), (*it)[1].get<double>(), (*it)[2].get<double>(),
                                    (*it)[3].get<double>()};
            if (!bounds) {
                bounds = b;
            } else {
                auto& u = *bounds;
                u = {std::min(u[0], b[0]), std::min(u[1], b[1]), std::max(u[2], b[2]), std::max(u[3], b[3])};
            }
        }
        // A source without a zoom limit makes the composite unlimited on that side.
        for (char const* key : {"minzoom", "maxzoom"}) {
            auto const it = tj.find(key);
            bool const is_min = std::string_view{key} == "minzoom";
            auto& bound = is_min ? minzoom : maxzoom;
            if (it == tj.end() || !it->is_number()) {
                bound = unlimited;
                continue;
            }
            double const v = it->get<double>();
            if (!bound) {
                bound = v;
            } else if (*bound != unlimited) {
                bound = is_min ? std::min(*bound, v) : std::max(*bound, v);
            }
        }
        if (!out.contains("center")) {
            if (auto const it = tj.find("center"); it != tj.end()) {
                out["center"] = *it;
            }
        }
    }
    if (!layers.empty()) {
        out["vector_layers"] = std::move(layers);
    }
    if (!names.empty()) {
        out["name"] = join(names, ",");
    }
    if (!descriptions.empty()) {
        out["description"] = join(descriptions, "\n");
    }
    if (!attributions.empty()) {
        out["attribution"] = join(attributions, "\n");
    }
    if (bounds) {
        out["bounds"] = *bounds;
    }
    if (minzoom && *minzoom != unlimited) {
        out["minzoom"] = static_cast<int>(*minzoom);
    }
    if (maxzoom && *maxzoom != unlimited) {
        out["maxzoom"] = static_cast<int>(*maxzoom);
    }
    return out;
}

} // namespace

nlohmann::json make_tilejson(std::span<tile_source const* const> sources, request_origin const& origin) {
    nlohmann::json out = sources.size() == 1 ? sources.front()->tilejson() : merge(sources);
    out["tiles"] = nlohmann::json::array({tiles_url(origin)});
    return out;
}

} // namespace kachel::tiles
