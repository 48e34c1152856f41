#pragma once

#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>

namespace kachel::tiles {

/// Martin's tile ETag value: XXH3-128 of the bytes, its 16 bytes in little-endian order,
/// URL-safe base64 without padding (22 characters). Empty data gives 22 `A`s.
/// Bytes 01 02 03 give `O3OuMnabzuvUuMTLiOt3rA`.
[[nodiscard]] std::string etag_value(std::string_view data);

/// The ETag value of the bytes of `pieces` one after the other.
[[nodiscard]] std::string etag_value(std::span<std::string_view const> pieces);

/// ETags (etag_value) of bytes that cannot change (a tile in an archive nothing can write), by
/// where they are: hashed once, not on every request. Bounded; emptied when full. Thread-safe.
class etag_memo {
  public:
    /// The ETag of the bytes of `pieces`, which are always the same for `key`.
    [[nodiscard]] std::string get(std::uint64_t key, std::span<std::string_view const> pieces);

  private:
    static constexpr std::size_t limit = 16'384;
    std::mutex m_mutex;
    std::unordered_map<std::uint64_t, std::string> m_etags;
};

/// URL-safe base64 without padding.
[[nodiscard]] std::string base64url(std::string_view bytes);

} // namespace kachel::tiles
