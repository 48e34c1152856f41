#include "tiles/etag.hpp"

#include <xxhash.h>
#if defined(__x86_64__)
#include <xxh_x86dispatch.h>
#endif

#include <array>
#include <cstdint>

namespace kachel::tiles {

std::string base64url(std::string_view bytes) {
    constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    out.reserve((bytes.size() * 4 + 2) / 3);
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        auto const n = (std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16U) |
                       (std::uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8U) |
                       std::uint32_t{static_cast<unsigned char>(bytes[i + 2])};
        out += alphabet[(n >> 18U) & 63U];
        out += alphabet[(n >> 12U) & 63U];
        out += alphabet[(n >> 6U) & 63U];
        out += alphabet[n & 63U];
    }
    auto const rest = bytes.size() - i;
    if (rest == 1) {
        auto const n = std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16U;
        out += alphabet[(n >> 18U) & 63U];
        out += alphabet[(n >> 12U) & 63U];
    } else if (rest == 2) {
        auto const n = (std::uint32_t{static_cast<unsigned char>(bytes[i])} << 16U) |
                       (std::uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8U);
        out += alphabet[(n >> 18U) & 63U];
        out += alphabet[(n >> 12U) & 63U];
        out += alphabet[(n >> 6U) & 63U];
    }
    return out;
}

std::string etag_value(std::string_view data) {
    std::array<char, 16> bytes{};
    if (!data.empty()) {
#if defined(__x86_64__)
        // The same hash, with the widest vector unit this CPU has (AVX2 over SSE2 doubles the
        // speed: tiles from archives are hashed on every request).
        auto const h = XXH3_128bits_dispatch(data.data(), data.size());
#else
        auto const h = XXH3_128bits(data.data(), data.size());
#endif
        for (std::size_t i = 0; i < 8; ++i) {
            bytes[i] = static_cast<char>((h.low64 >> (8 * i)) & 0xFFU);
            bytes[8 + i] = static_cast<char>((h.high64 >> (8 * i)) & 0xFFU);
        }
    }
    return base64url(std::string_view{bytes.data(), bytes.size()});
}

std::string etag_memo::get(std::uint64_t key, std::string_view bytes) {
    {
        std::lock_guard const lock{m_mutex};
        if (auto const it = m_etags.find(key); it != m_etags.end()) {
            return it->second;
        }
    }
    auto etag = etag_value(bytes); // outside the lock: hashing a large tile takes microseconds
    std::lock_guard const lock{m_mutex};
    if (m_etags.size() >= limit) {
        m_etags.clear();
    }
    m_etags.emplace(key, etag);
    return etag;
}

} // namespace kachel::tiles
