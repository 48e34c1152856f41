#include "tiles/tile_ranges.hpp"

#include "core/error.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numbers>
#include <string>

namespace kachel::tiles {

namespace {

constexpr double max_latitude = 85.0511287798066; // where Web Mercator's square ends

/// The column of longitude `lon` at zoom z, as a fraction of tiles.
double column_of(double lon, std::uint32_t z) noexcept {
    return (lon + 180.0) / 360.0 * std::ldexp(1.0, static_cast<int>(z));
}

/// The XYZ row of latitude `lat` at zoom z, as a fraction of tiles.
double row_of(double lat, std::uint32_t z) noexcept {
    auto const clamped = std::clamp(lat, -max_latitude, max_latitude) * std::numbers::pi / 180.0;
    auto const mercator = std::log(std::tan(clamped) + 1.0 / std::cos(clamped));
    return (1.0 - mercator / std::numbers::pi) / 2.0 * std::ldexp(1.0, static_cast<int>(z));
}

/// The longitude of column edge `x` at zoom z.
double lon_of(std::uint64_t x, std::uint32_t z) noexcept {
    return static_cast<double>(x) / std::ldexp(1.0, static_cast<int>(z)) * 360.0 - 180.0;
}

/// The latitude of row edge `y` at zoom z.
double lat_of(std::uint64_t y, std::uint32_t z) noexcept {
    auto const n = std::numbers::pi -
                   2.0 * std::numbers::pi * static_cast<double>(y) / std::ldexp(1.0, static_cast<int>(z));
    return std::atan(std::sinh(n)) * 180.0 / std::numbers::pi;
}

/// [first, last] tiles of the fractional range [from, to] on an axis of `n` tiles.
std::pair<std::uint32_t, std::uint32_t> tiles_between(double from, double to, std::uint64_t n) noexcept {
    auto const top = static_cast<double>(n - 1);
    auto const first = std::clamp(std::floor(from), 0.0, top);
    auto const last = std::clamp(std::ceil(to) - 1.0, first, top);
    return {static_cast<std::uint32_t>(first), static_cast<std::uint32_t>(last)};
}

bool overlaps(tile_rect const& r, std::uint64_t x0, std::uint64_t y0, std::uint64_t x1,
              std::uint64_t y1) noexcept {
    return x0 <= r.max_x && r.min_x <= x1 && y0 <= r.max_y && r.min_y <= y1;
}

bool holds(tile_rect const& r, std::uint64_t x0, std::uint64_t y0, std::uint64_t x1,
           std::uint64_t y1) noexcept {
    return r.min_x <= x0 && x1 <= r.max_x && r.min_y <= y0 && y1 <= r.max_y;
}

/// Tiles of zoom z in the union of `rects` inside the square (level, index).
std::uint64_t count_in(std::vector<tile_rect> const& rects, std::uint32_t z, std::uint32_t level,
                       std::uint32_t sx, std::uint32_t sy) {
    auto const span = std::uint64_t{1} << (z - level);
    std::uint64_t const x0 = sx * span;
    std::uint64_t const y0 = sy * span;
    auto const x1 = x0 + span - 1;
    auto const y1 = y0 + span - 1;
    bool any = false;
    for (auto const& r : rects) {
        if (holds(r, x0, y0, x1, y1)) {
            return span * span;
        }
        any = any || overlaps(r, x0, y0, x1, y1);
    }
    if (!any) {
        return 0;
    }
    std::uint64_t total = 0;
    for (std::uint32_t i = 0; i < 4; ++i) {
        total += count_in(rects, z, level + 1, 2 * sx + (i & 1U), 2 * sy + (i >> 1U));
    }
    return total;
}

} // namespace

tile_area::tile_area(std::vector<lonlat_box> const& boxes, double margin,
                     std::optional<std::uint32_t> minzoom, std::optional<std::uint32_t> maxzoom)
    : m_margin(std::max(margin, 0.0)), m_minzoom(minzoom.value_or(0)), m_maxzoom(maxzoom.value_or(max_zoom)) {
    m_boxes.reserve(boxes.size());
    for (auto const& b : boxes) {
        m_boxes.push_back(
            unit_box{column_of(std::min(b.west, b.east), 0), row_of(std::max(b.north, b.south), 0),
                     column_of(std::max(b.west, b.east), 0), row_of(std::min(b.north, b.south), 0)});
    }
}

bool tile_area::contains(tile_coord coord) const noexcept {
    if (coord.z < m_minzoom || coord.z > m_maxzoom) {
        return false;
    }
    if (m_boxes.empty()) {
        return true;
    }
    // In tiles of this zoom: tile (x, y) spans [x, x + 1] × [y, y + 1]; a box that only touches
    // it on an edge counts, since a geometry on that edge may be drawn in both tiles.
    auto const scale = std::ldexp(1.0, static_cast<int>(coord.z));
    auto const x = static_cast<double>(coord.x);
    auto const y = static_cast<double>(coord.y);
    return std::any_of(m_boxes.begin(), m_boxes.end(), [&](unit_box const& b) {
        return b.x0 * scale - m_margin <= x + 1 && x <= b.x1 * scale + m_margin &&
               b.y0 * scale - m_margin <= y + 1 && y <= b.y1 * scale + m_margin;
    });
}

lonlat_box parse_box(std::string_view text, std::string_view what) {
    double values[4] = {};
    std::size_t at = 0;
    for (int i = 0; i < 4; ++i) {
        while (at < text.size() && text[at] == ' ') {
            ++at;
        }
        auto const end = text.find(',', at);
        auto part = text.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
        while (!part.empty() && part.back() == ' ') {
            part.remove_suffix(1);
        }
        std::string const number{part};
        char* stop = nullptr;
        values[i] = std::strtod(number.c_str(), &stop);
        bool const last = i == 3;
        if (number.empty() || stop != number.c_str() + number.size() || !std::isfinite(values[i]) ||
            (end == std::string_view::npos) != last) {
            throw config_error{fmt_error("{} '{}' is not a box: give west,south,east,north in degrees, "
                                         "e.g. -10.5,35,5,44",
                                         what, text)};
        }
        at = end + 1;
    }
    lonlat_box const box{values[0], values[1], values[2], values[3]};
    if (box.west < -180 || box.east > 180 || box.south < -90 || box.north > 90) {
        throw config_error{fmt_error("{} '{}' reaches outside the world: longitudes go from -180 to 180, "
                                     "latitudes from -90 to 90",
                                     what, text)};
    }
    if (box.west >= box.east || box.south >= box.north) {
        throw config_error{fmt_error(
            "{} '{}' is empty: west must be below east and south below north (for an area across the "
            "antimeridian, give two boxes, one on each side)",
            what, text)};
    }
    return box;
}

tile_rect rect_of(lonlat_box const& box, std::uint32_t z) noexcept {
    auto const n = std::uint64_t{1} << z;
    auto const [min_x, max_x] = tiles_between(column_of(box.west, z), column_of(box.east, z), n);
    auto const [min_y, max_y] = tiles_between(row_of(box.north, z), row_of(box.south, z), n);
    return tile_rect{z, min_x, min_y, max_x, max_y};
}

lonlat_box box_of(tile_rect const& r) noexcept {
    return lonlat_box{lon_of(r.min_x, r.z), lat_of(std::uint64_t{r.max_y} + 1, r.z),
                      lon_of(std::uint64_t{r.max_x} + 1, r.z), lat_of(r.min_y, r.z)};
}

std::uint64_t hilbert_index(std::uint32_t z, std::uint32_t x_in, std::uint32_t y_in) noexcept {
    std::uint64_t const n = std::uint64_t{1} << z;
    std::uint64_t x = x_in;
    std::uint64_t y = y_in;
    std::uint64_t d = 0;
    for (std::uint64_t s = n / 2; s > 0; s /= 2) {
        std::uint64_t const rx = (x & s) > 0 ? 1 : 0;
        std::uint64_t const ry = (y & s) > 0 ? 1 : 0;
        d += s * s * ((3 * rx) ^ ry);
        // Rotate the quadrant so that the curve goes on.
        if (ry == 0) {
            if (rx == 1) {
                x = n - 1 - x;
                y = n - 1 - y;
            }
            std::swap(x, y);
        }
    }
    return d;
}

std::pair<std::uint32_t, std::uint32_t> hilbert_position(std::uint32_t z, std::uint64_t d) noexcept {
    std::uint64_t const n = std::uint64_t{1} << z;
    std::uint64_t x = 0;
    std::uint64_t y = 0;
    std::uint64_t t = d;
    for (std::uint64_t s = 1; s < n; s *= 2) {
        std::uint64_t const rx = 1 & (t / 2);
        std::uint64_t const ry = 1 & (t ^ rx);
        if (ry == 0) {
            if (rx == 1) {
                x = s - 1 - x;
                y = s - 1 - y;
            }
            std::swap(x, y);
        }
        x += s * rx;
        y += s * ry;
        t /= 4;
    }
    return {static_cast<std::uint32_t>(x), static_cast<std::uint32_t>(y)};
}

std::uint64_t tile_id(tile_coord coord) noexcept {
    // Tiles of the zooms below: (4^z - 1) / 3.
    return ((std::uint64_t{1} << (2 * coord.z)) - 1) / 3 + hilbert_index(coord.z, coord.x, coord.y);
}

tile_coord tile_of_id(std::uint64_t id) noexcept {
    std::uint32_t z = 0;
    std::uint64_t first = 0; // the first id of zoom z
    while (z < max_zoom && id >= first + (std::uint64_t{1} << (2U * z))) {
        first += std::uint64_t{1} << (2U * z);
        ++z;
    }
    auto const [x, y] = hilbert_position(z, id - first);
    return tile_coord{z, x, y};
}

tile_walk::tile_walk(std::vector<lonlat_box> boxes, std::vector<std::uint32_t> zooms)
    : m_boxes(std::move(boxes)), m_zooms(std::move(zooms)) {
    std::sort(m_zooms.begin(), m_zooms.end());
    m_zooms.erase(std::unique(m_zooms.begin(), m_zooms.end()), m_zooms.end());
    start_zoom();
}

std::vector<tile_rect> tile_walk::rects_at(std::uint32_t z) const {
    std::vector<tile_rect> out;
    out.reserve(m_boxes.size());
    for (auto const& box : m_boxes) {
        out.push_back(rect_of(box, z));
    }
    return out;
}

void tile_walk::start_zoom() {
    m_stack.clear();
    if (m_zoom_at < m_zooms.size()) {
        m_rects = rects_at(m_zooms[m_zoom_at]);
        m_stack.push_back(square{0, 0});
    }
}

std::optional<tile_coord> tile_walk::next() {
    while (m_zoom_at < m_zooms.size()) {
        auto const z = m_zooms[m_zoom_at];
        while (!m_stack.empty()) {
            auto const sq = m_stack.back();
            m_stack.pop_back();
            // A square's children at the next level are the indices 4i .. 4i+3, in curve order.
            auto const [sx, sy] = hilbert_position(sq.level, sq.index);
            auto const span = std::uint64_t{1} << (z - sq.level);
            std::uint64_t const x0 = sx * span;
            std::uint64_t const y0 = sy * span;
            bool const reached = std::any_of(m_rects.begin(), m_rects.end(), [&](tile_rect const& r) {
                return overlaps(r, x0, y0, x0 + span - 1, y0 + span - 1);
            });
            if (!reached) {
                continue;
            }
            if (sq.level == z) {
                return tile_coord{z, sx, sy};
            }
            for (std::uint64_t i = 4; i-- > 0;) {
                m_stack.push_back(square{sq.level + 1, 4 * sq.index + i});
            }
        }
        ++m_zoom_at;
        start_zoom();
    }
    return std::nullopt;
}

std::uint64_t tile_walk::count_at(std::uint32_t z) const {
    if (!std::binary_search(m_zooms.begin(), m_zooms.end(), z)) {
        return 0;
    }
    return count_in(rects_at(z), z, 0, 0, 0);
}

std::uint64_t tile_walk::count() const {
    std::uint64_t total = 0;
    for (auto const z : m_zooms) {
        total += count_at(z);
    }
    return total;
}

} // namespace kachel::tiles
