#pragma once

#include <array>
#include <optional>
#include <string_view>

namespace kachel::tiles {

/// The canonical MIME type of a tile format kachel serves, for a type or one of its aliases:
/// `application/vnd.mapbox-vector-tile` -> `application/x-protobuf`, `image/jpg` -> `image/jpeg`,
/// `application/vnd.maplibre-vector-tile` -> `application/vnd.maplibre-tile`. nullopt for a type
/// that is no tile format. The views point at static strings.
[[nodiscard]] std::optional<std::string_view> canonical_tile_type(std::string_view mime) noexcept;

/// The image types among the tile formats (what `image/*` means in an Accept header).
inline constexpr std::array<std::string_view, 5> image_tile_types{"image/gif", "image/jpeg", "image/png",
                                                                  "image/webp", "image/avif"};

/// The MIME type of tile bytes, from their first bytes: PNG, JPEG, GIF, WebP, AVIF, JSON; anything
/// else is taken as a Mapbox Vector Tile. The bytes must be uncompressed.
[[nodiscard]] std::string_view detect_tile_type(std::string_view data) noexcept;

/// The MIME type of an archive's `format` name (MBTiles metadata): `pbf`/`mvt`, `mlt`, `png`,
/// `jpg`/`jpeg`, `gif`, `webp`, `avif`, `json`; nullopt for another name.
[[nodiscard]] std::optional<std::string_view> format_tile_type(std::string_view format) noexcept;

/// The MBTiles `format` name of a MIME type (`pbf` for MVT, `jpg`, `png`...); `pbf` for a type
/// it does not know.
[[nodiscard]] std::string_view format_name(std::string_view mime) noexcept;

/// The type of Mapbox Vector Tiles, the default of every source.
inline constexpr std::string_view mvt_type = "application/x-protobuf";

/// True for the vector tile types (MVT, MLT), whose tiles a composite joins by concatenation.
[[nodiscard]] constexpr bool is_vector_format(std::string_view content_type) noexcept {
    return content_type == mvt_type || content_type == "application/vnd.maplibre-tile";
}

} // namespace kachel::tiles
