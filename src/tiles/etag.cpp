#include "tiles/etag.hpp"

#include <xxhash.h>
#if defined(__x86_64__)
#include <xxh_x86dispatch.h>
#endif

#include <array>
#include <cstdint>
#include <memory>
#include <new>

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

namespace {

/// The ETag value of a hash.
std::string etag_of(XXH128_hash_t h) {
    std::array<char, 16> bytes{};
    for (std::size_t i = 0; i < 8; ++i) {
        bytes[i] = static_cast<char>((h.low64 >> (8 * i)) & 0xFFU);
        bytes[8 + i] = static_cast<char>((h.high64 >> (8 * i)) & 0xFFU);
    }
    return base64url(std::string_view{bytes.data(), bytes.size()});
}

} // namespace

std::string etag_value(std::string_view data) {
    if (data.empty()) {
        return etag_of({0, 0});
    }
#if defined(__x86_64__)
    // The same hash, with the widest vector unit this CPU has (AVX2 over SSE2 doubles the
    // speed: tiles from archives are hashed on every request).
    return etag_of(XXH3_128bits_dispatch(data.data(), data.size()));
#else
    return etag_of(XXH3_128bits(data.data(), data.size()));
#endif
}

std::string etag_value(std::span<std::string_view const> pieces) {
    if (pieces.size() == 1) {
        return etag_value(pieces.front());
    }
    std::size_t size = 0;
    for (auto const piece : pieces) {
        size += piece.size();
    }
    if (size == 0) {
        return etag_value(std::string_view{});
    }
    // XXH3's streaming form gives the hash of the bytes in one piece.
    std::unique_ptr<XXH3_state_t, XXH_errorcode (*)(XXH3_state_t*)> const state{XXH3_createState(),
                                                                                XXH3_freeState};
    if (state == nullptr) {
        throw std::bad_alloc{};
    }
    XXH3_128bits_reset(state.get());
    for (auto const piece : pieces) {
#if defined(__x86_64__)
        XXH3_128bits_update_dispatch(state.get(), piece.data(), piece.size());
#else
        XXH3_128bits_update(state.get(), piece.data(), piece.size());
#endif
    }
    return etag_of(XXH3_128bits_digest(state.get()));
}

std::string etag_memo::get(std::uint64_t key, std::span<std::string_view const> pieces) {
    {
        std::lock_guard const lock{m_mutex};
        if (auto const it = m_etags.find(key); it != m_etags.end()) {
            return it->second;
        }
    }
    auto etag = etag_value(pieces); // outside the lock: hashing a large tile takes microseconds
    std::lock_guard const lock{m_mutex};
    if (m_etags.size() >= limit) {
        m_etags.clear();
    }
    m_etags.emplace(key, etag);
    return etag;
}

} // namespace kachel::tiles
