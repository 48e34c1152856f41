#pragma once

#include <string>
#include <string_view>

namespace kachel::tiles {

/// Martin's tile ETag value: XXH3-128 of the bytes, its 16 bytes in little-endian order,
/// URL-safe base64 without padding (22 characters). Empty data gives 22 `A`s.
/// Bytes 01 02 03 give `O3OuMnabzuvUuMTLiOt3rA`.
[[nodiscard]] std::string etag_value(std::string_view data);

/// URL-safe base64 without padding.
[[nodiscard]] std::string base64url(std::string_view bytes);

} // namespace kachel::tiles
