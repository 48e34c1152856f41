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

std::string_view detect_tile_type(std::string_view data) noexcept {
    auto const starts = [data](std::string_view magic, std::size_t at = 0) {
        return data.size() >= at + magic.size() && data.substr(at, magic.size()) == magic;
    };
    if (starts("\x89PNG\r\n\x1a\n")) {
        return "image/png";
    }
    if (starts("\xff\xd8\xff")) {
        return "image/jpeg";
    }
    if (starts("GIF87a") || starts("GIF89a")) {
        return "image/gif";
    }
    if (starts("RIFF") && starts("WEBP", 8)) {
        return "image/webp";
    }
    if (starts("ftypavif", 4) || starts("ftypavis", 4)) {
        return "image/avif";
    }
    if (starts("{") || starts("[")) {
        return "application/json";
    }
    return mvt_type;
}

namespace {

/// MBTiles `format` names and the MIME types they mean; the first name of a type is its own.
constexpr std::array<std::pair<std::string_view, std::string_view>, 10> formats{{
    {"pbf", mvt_type},
    {"mvt", mvt_type},
    {"mlt", "application/vnd.maplibre-tile"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"json", "application/json"},
}};

} // namespace

std::string_view format_name(std::string_view mime) noexcept {
    for (auto const& [name, type] : formats) {
        if (mime == type) {
            return name;
        }
    }
    return "pbf";
}

std::optional<std::string_view> format_tile_type(std::string_view format) noexcept {
    for (auto const& [name, type] : formats) {
        if (format == name) {
            return type;
        }
    }
    return std::nullopt;
}

} // namespace kachel::tiles
