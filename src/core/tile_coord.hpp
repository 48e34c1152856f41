#pragma once

#include <cstdint>

namespace kachel {

/// Highest zoom level kachel serves (decision D7: larger zooms are rejected with 400).
inline constexpr std::uint32_t max_zoom = 30;

/// A tile address in the XYZ scheme (y grows southwards), as in `/{source}/{z}/{x}/{y}`.
struct tile_coord {
    std::uint32_t z = 0;
    std::uint32_t x = 0;
    std::uint32_t y = 0;

    friend bool operator==(tile_coord const&, tile_coord const&) = default;
};

/// True when z <= max_zoom and x, y both lie in 0 .. 2^z - 1.
[[nodiscard]] constexpr bool is_valid(tile_coord c) noexcept {
    if (c.z > max_zoom) {
        return false;
    }
    auto const n = std::uint64_t{1} << c.z;
    return c.x < n && c.y < n;
}

} // namespace kachel
