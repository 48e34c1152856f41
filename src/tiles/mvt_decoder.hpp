#pragma once

#include <fmt/format.h>
#include <protozero/pbf_reader.hpp>

#include <iterator>
#include <stdexcept>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kachel::tiles {

/// One decoded MVT feature (used by tests and tools/tile_inspect, not on the request path); attribute values
/// rendered as text (ints as digits, bools as true/false).
struct mvt_feature {
    std::optional<std::uint64_t> id;
    int geometry_type = 0; ///< 1 point, 2 linestring, 3 polygon
    std::size_t geometry_commands = 0;
    std::vector<std::uint32_t> geometry; ///< the raw command integers
    std::map<std::string, std::string> tags;
};

/// The parts of an MVT geometry as absolute tile coordinates: each MoveTo starts a part
/// `[x0, y0, x1, y1, ...]`; ClosePath repeats the part's first point.
/// \throws std::runtime_error for a truncated command sequence.
inline std::vector<std::vector<std::int64_t>> decode_geometry(std::vector<std::uint32_t> const& commands) {
    std::vector<std::vector<std::int64_t>> parts;
    std::int64_t x = 0;
    std::int64_t y = 0;
    auto const zigzag = [](std::uint32_t v) {
        return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
    };
    for (std::size_t i = 0; i < commands.size();) {
        auto const id = commands[i] & 7;
        auto const count = commands[i] >> 3;
        ++i;
        if (id == 7) {
            if (parts.empty() || parts.back().size() < 2) {
                throw std::runtime_error{"ClosePath without a part"};
            }
            parts.back().push_back(parts.back()[0]);
            parts.back().push_back(parts.back()[1]);
            continue;
        }
        if ((id != 1 && id != 2) || i + 2 * std::size_t{count} > commands.size()) {
            throw std::runtime_error{"bad MVT geometry command"};
        }
        for (std::uint32_t c = 0; c < count; ++c) {
            x += zigzag(commands[i++]);
            y += zigzag(commands[i++]);
            if (id == 1 || parts.empty()) {
                parts.emplace_back();
            }
            parts.back().push_back(x);
            parts.back().push_back(y);
        }
    }
    return parts;
}

struct mvt_layer {
    std::string name;
    std::uint32_t version = 1;
    std::uint32_t extent = 4096;
    std::vector<mvt_feature> features;
};

/// Decodes a Mapbox Vector Tile (spec 2.1). \throws protozero::exception or std::runtime_error
/// when the bytes are not a valid tile (bad tag index, missing name...).
inline std::vector<mvt_layer> decode_mvt(std::string_view data) {
    std::vector<mvt_layer> layers;
    protozero::pbf_reader tile{data.data(), data.size()};
    while (tile.next(3)) { // Tile.layers
        protozero::pbf_reader layer_msg = tile.get_message();
        mvt_layer layer;
        std::vector<std::string> keys;
        std::vector<std::string> values;
        std::vector<protozero::pbf_reader> feature_msgs;
        while (layer_msg.next()) {
            switch (layer_msg.tag()) {
            case 15:
                layer.version = layer_msg.get_uint32();
                break;
            case 1:
                layer.name = layer_msg.get_string();
                break;
            case 2:
                feature_msgs.push_back(layer_msg.get_message());
                break;
            case 3:
                keys.push_back(layer_msg.get_string());
                break;
            case 4: {
                protozero::pbf_reader v = layer_msg.get_message();
                std::string text;
                while (v.next()) {
                    switch (v.tag()) {
                    case 1:
                        text = v.get_string();
                        break;
                    case 2:
                        text = fmt::format("{}", v.get_float());
                        break;
                    case 3:
                        text = fmt::format("{}", v.get_double());
                        break;
                    case 4:
                        text = std::to_string(v.get_int64());
                        break;
                    case 5:
                        text = std::to_string(v.get_uint64());
                        break;
                    case 6:
                        text = std::to_string(v.get_sint64());
                        break;
                    case 7:
                        text = v.get_bool() ? "true" : "false";
                        break;
                    default:
                        v.skip();
                    }
                }
                values.push_back(std::move(text));
                break;
            }
            case 5:
                layer.extent = layer_msg.get_uint32();
                break;
            default:
                layer_msg.skip();
            }
        }
        if (layer.name.empty()) {
            throw std::runtime_error{"MVT layer without a name"};
        }
        for (auto& f : feature_msgs) {
            mvt_feature feature;
            while (f.next()) {
                switch (f.tag()) {
                case 1:
                    feature.id = f.get_uint64();
                    break;
                case 2: {
                    auto const tags = f.get_packed_uint32();
                    std::vector<std::uint32_t> const t(tags.begin(), tags.end());
                    if (t.size() % 2 != 0) {
                        throw std::runtime_error{"odd number of feature tags"};
                    }
                    for (std::size_t i = 0; i < t.size(); i += 2) {
                        if (t[i] >= keys.size() || t[i + 1] >= values.size()) {
                            throw std::runtime_error{"feature tag index out of range"};
                        }
                        feature.tags[keys[t[i]]] = values[t[i + 1]];
                    }
                    break;
                }
                case 3:
                    feature.geometry_type = static_cast<int>(f.get_enum());
                    break;
                case 4: {
                    auto const geom = f.get_packed_uint32();
                    feature.geometry.assign(geom.begin(), geom.end());
                    feature.geometry_commands = feature.geometry.size();
                    break;
                }
                default:
                    f.skip();
                }
            }
            layer.features.push_back(std::move(feature));
        }
        layers.push_back(std::move(layer));
    }
    return layers;
}

} // namespace kachel::tiles
