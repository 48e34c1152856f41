#pragma once

#include "core/tile_coord.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace kachel::tiles {

/// An area in WGS84 degrees: west, south, east, north.
struct lonlat_box {
    double west = -180;
    double south = -85.0511287798066;
    double east = 180;
    double north = 85.0511287798066;
};

/// Parses `w,s,e,n` (degrees; spaces allowed). \throws config_error naming `what` for a text that
/// is not four numbers, a box with no area, or one outside the world.
[[nodiscard]] lonlat_box parse_box(std::string_view text, std::string_view what);

/// The tiles `[min_x, max_x] × [min_y, max_y]` of one zoom (XYZ rows).
struct tile_rect {
    std::uint32_t z = 0;
    std::uint32_t min_x = 0;
    std::uint32_t min_y = 0;
    std::uint32_t max_x = 0;
    std::uint32_t max_y = 0;

    [[nodiscard]] std::uint64_t count() const noexcept {
        return std::uint64_t{max_x - min_x + 1} * std::uint64_t{max_y - min_y + 1};
    }
};

/// The tiles of zoom `z` that `box` covers (a tile it only touches on an edge is left out; a box
/// smaller than a tile still gets its tile). \pre z <= max_zoom
[[nodiscard]] tile_rect rect_of(lonlat_box const& box, std::uint32_t z) noexcept;

/// The area `rect`'s tiles cover, edge to edge (the inverse of rect_of for a box on tile edges).
[[nodiscard]] lonlat_box box_of(tile_rect const& rect) noexcept;

/// The Hilbert index of (x, y) among the 4^z tiles of zoom z (the order PMTiles stores tiles in).
/// \pre x, y < 2^z
[[nodiscard]] std::uint64_t hilbert_index(std::uint32_t z, std::uint32_t x, std::uint32_t y) noexcept;

/// The tile at Hilbert index `d` of zoom z. \pre d < 4^z
[[nodiscard]] std::pair<std::uint32_t, std::uint32_t> hilbert_position(std::uint32_t z,
                                                                       std::uint64_t d) noexcept;

/// PMTiles' tile id of z/x/y: the tiles of every lower zoom, then the Hilbert index.
[[nodiscard]] std::uint64_t tile_id(tile_coord coord) noexcept;

/// The tile of a PMTiles tile id (the inverse of tile_id). \pre id is below the first id of zoom 31
[[nodiscard]] tile_coord tile_of_id(std::uint64_t id) noexcept;

/// A part of a source's tiles: those near some boxes, within some zooms. What a change to the
/// rows touches (the boxes of the old and new geometries, widened by the source's buffer) or what
/// a purge names. Tells of any tile whether it is inside, in constant time per box.
class tile_area {
  public:
    /// Every tile of every zoom.
    tile_area() = default;
    /// The tiles that `boxes` overlap or touch, each box widened by `margin` tiles on every side
    /// (the source's buffer / extent), within [minzoom, maxzoom] when given; no boxes = every tile.
    tile_area(std::vector<lonlat_box> const& boxes, double margin, std::optional<std::uint32_t> minzoom = {},
              std::optional<std::uint32_t> maxzoom = {});

    [[nodiscard]] bool contains(tile_coord coord) const noexcept;
    /// True when the area holds every tile of the zooms it covers.
    [[nodiscard]] bool whole() const noexcept { return m_boxes.empty(); }

  private:
    /// A box in Web Mercator, scaled to [0, 1] with y growing south (tile space at zoom 0).
    struct unit_box {
        double x0, y0, x1, y1;
    };
    std::vector<unit_box> m_boxes;
    double m_margin = 0;
    std::uint32_t m_minzoom = 0;
    std::uint32_t m_maxzoom = max_zoom;
};

/// The tiles of some boxes over some zooms, each tile once however many boxes cover it, in
/// tile-id order (zoom by zoom, along the Hilbert curve): a cursor that walks the quadtree and
/// skips every square no box reaches, so it holds no list of tiles whatever their number.
class tile_walk {
  public:
    /// \pre every zoom <= max_zoom; `boxes` not empty
    tile_walk(std::vector<lonlat_box> boxes, std::vector<std::uint32_t> zooms);

    /// The next tile, or nothing once every tile was given.
    [[nodiscard]] std::optional<tile_coord> next();

    /// How many tiles zoom `z` has in the walk (0 for a zoom not in it), counted without
    /// visiting them one by one.
    [[nodiscard]] std::uint64_t count_at(std::uint32_t z) const;
    /// How many tiles the whole walk gives.
    [[nodiscard]] std::uint64_t count() const;

    [[nodiscard]] std::span<std::uint32_t const> zooms() const noexcept { return m_zooms; }

  private:
    /// The boxes' tiles at zoom z, with the range of columns and rows of each.
    [[nodiscard]] std::vector<tile_rect> rects_at(std::uint32_t z) const;
    void start_zoom();

    struct square {
        std::uint32_t level;
        std::uint64_t index; ///< Hilbert index at `level`
    };

    std::vector<lonlat_box> m_boxes;
    std::vector<std::uint32_t> m_zooms; ///< ascending, each once
    std::size_t m_zoom_at = 0;          ///< the zoom being walked, an index into m_zooms
    std::vector<tile_rect> m_rects;     ///< of that zoom
    std::vector<square> m_stack;
};

} // namespace kachel::tiles
