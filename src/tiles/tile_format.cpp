#include "tiles/tile_format.hpp"

#include <array>
#include <utility>

namespace kachel::tiles {

namespace {

/// Tile MIME types, each with its canonical spelling.
constexpr std::array<std::pair<std::string_view, std::string_view>, 10> known_types{{
    {"application/x-protobuf", mvt_type},
    {"application/vnd.mapbox-vector-tile", mvt_type},
    {"application/vnd.maplibre-tile", "application/vnd.maplibre-tile"},
    {"application/vnd.maplibre-vector-tile", "application/vnd.maplibre-tile"},
    {"image/png", "image/png"},
    {"image/jpeg", "image/jpeg"},
    {"image/jpg", "image/jpeg"},
    {"image/gif", "image/gif"},
    {"image/webp", "image/webp"},
    {"image/avif", "image/avif"},
}};

} // namespace

std::optional<std::string_view> canonical_tile_type(std::string_view mime) noexcept {
    for (auto const& [name, canonical] : known_types) {
        if (mime == name) {
            return canonical;
        }
    }
    return std::nullopt;
}

} // namespace kachel::tiles
