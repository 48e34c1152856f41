#pragma once

#include "tiles/content_encoding.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace kachel::http {

// The encodings belong to the tiles (a cache entry is one encoding of a tile); HTTP negotiates them.
using tiles::compress;
using tiles::decompress;
using tiles::encoding;
using tiles::encoding_token;
using tiles::parse_encoding;

/// Chooses the response encoding for an `Accept-Encoding` header (nullopt = header absent),
/// after martin-compat 1.6:
/// - no header: identity;
/// - bytes already encoded with an encoding the client lists explicitly: sent as they are;
/// - not compressible (raster): identity;
/// - gzip and br both acceptable: the highest q among gzip, br, zstd (0 = identity); a tie goes
///   to `preferred` when it is among the best, else to br, then zstd (Martin gives such ties to
///   `preferred` even when it scored lower; kachel honours the client);
/// - otherwise ordinary q-value negotiation over gzip, br, zstd and identity, ties preferring
///   compression.
/// \returns nullopt when nothing acceptable remains (HTTP 406).
[[nodiscard]] std::optional<encoding> negotiate_encoding(std::optional<std::string_view> accept_encoding,
                                                         encoding stored, bool compressible,
                                                         encoding preferred) noexcept;

} // namespace kachel::http
