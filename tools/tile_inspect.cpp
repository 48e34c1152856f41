// tile_inspect: prints what a Mapbox Vector Tile holds, one line per layer.
//   curl -s http://localhost:3000/countries/2/2/1 | tile_inspect
//   tile_inspect tile.pbf

#include "tiles/mvt_decoder.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <fstream>
#include <iostream>
#include <iterator>
#include <set>
#include <sstream>

int main(int argc, char** argv) {
    std::stringstream buffer;
    if (argc > 1) {
        std::ifstream in{argv[1], std::ios::binary};
        if (!in) {
            fmt::print(stderr, "tile_inspect: cannot read {}\n", argv[1]);
            return 1;
        }
        buffer << in.rdbuf();
    } else {
        buffer << std::cin.rdbuf();
    }
    auto const data = buffer.str();
    try {
        auto const layers = kachel::tiles::decode_mvt(data);
        fmt::print("{} bytes, {} layer(s)\n", data.size(), layers.size());
        for (auto const& layer : layers) {
            std::size_t by_type[4] = {0, 0, 0, 0};
            std::set<std::string> keys;
            for (auto const& f : layer.features) {
                ++by_type[f.geometry_type >= 1 && f.geometry_type <= 3 ? f.geometry_type : 0];
                for (auto const& [k, v] : f.tags) {
                    keys.insert(k);
                }
            }
            fmt::print("layer {:?}: v{} extent {} features {} (points {}, lines {}, polygons {}) keys [{}]\n",
                       layer.name, layer.version, layer.extent, layer.features.size(), by_type[1], by_type[2],
                       by_type[3], fmt::join(keys, ", "));
            if (!layer.features.empty()) {
                fmt::print("  first feature: {}\n", fmt::join(layer.features.front().tags, ", "));
            }
        }
    } catch (std::exception const& e) {
        fmt::print(stderr, "tile_inspect: not a valid vector tile: {}\n", e.what());
        return 1;
    }
    return 0;
}
