#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kachel::tiles {

/// How tile bytes are encoded: as made, or compressed for transfer. A cache entry holds one
/// encoding of a tile; the HTTP layer negotiates which one a client gets.
enum class encoding : std::uint8_t { identity, gzip, brotli, zstd };

/// The HTTP token: `gzip`, `br`, `zstd`; empty for identity.
[[nodiscard]] std::string_view encoding_token(encoding e) noexcept;

/// `gzip` -> gzip; `brotli` and `br` -> brotli; `zstd` -> zstd; `identity`; nullopt otherwise.
[[nodiscard]] std::optional<encoding> parse_encoding(std::string_view name) noexcept;

/// True when `data` starts with gzip's magic bytes. No tile format kachel serves starts with
/// them (an MVT starts with a field tag, 0x1a), so such bytes are a compressed tile.
[[nodiscard]] constexpr bool is_gzip(std::string_view data) noexcept {
    return data.size() >= 2 && static_cast<unsigned char>(data[0]) == 0x1f &&
           static_cast<unsigned char>(data[1]) == 0x8b;
}

/// True when `data` starts with a zlib header (RFC 1950: deflate, a 32 KiB window, no preset
/// dictionary), as some MBTiles files store their tiles. No tile format kachel recognises starts
/// so; decompress(data, encoding::gzip) inflates it.
[[nodiscard]] constexpr bool is_zlib(std::string_view data) noexcept {
    if (data.size() < 2 || static_cast<unsigned char>(data[0]) != 0x78) {
        return false;
    }
    auto const flags = static_cast<unsigned char>(data[1]);
    return ((0x78U << 8U) | flags) % 31U == 0 && (flags & 0x20U) == 0;
}

/// Compresses at kachel's levels (gzip through libdeflate, zstd, brotli quality 6 as Martin),
/// with compressor state kept per thread: only the returned string is allocated.
/// \throws std::runtime_error if the library fails.
[[nodiscard]] std::string compress(std::string_view data, encoding e);

/// Decompresses; refuses output larger than 256 MiB. `gzip` inflates zlib streams too.
/// \throws std::runtime_error on bad data.
[[nodiscard]] std::string decompress(std::string_view data, encoding e);

} // namespace kachel::tiles
